"""d2l's recurrent encoder–decoder: Seq2SeqEncoder (embedding, GRU/LSTM), and a decoder whose input at each
step is the token's embedding beside a context: the encoder's final top-layer state (``none``, d2l's
Seq2SeqDecoder) or an attention-weighted average of the encoder's outputs queried by the decoder's top
state (``additive``: Bahdanau, d2l's Seq2SeqAttentionDecoder; ``dot``: scaled dot-product). The decoder
starts from the encoder's final state. Sources are packed, so padding changes nothing."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..config import ModelConfig
from ..encdec import EncoderDecoder, masked_softmax


class AdditiveAttention(nn.Module):
    """score(q, k) = w_v · tanh(W_q q + W_k k) (d2l's AdditiveAttention); the keys' projection is computed
    once per source (``keys``)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.W_k = nn.Linear(hidden, hidden, bias=False)
        self.W_q = nn.Linear(hidden, hidden, bias=False)
        self.w_v = nn.Linear(hidden, 1, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.W_k(memory)

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (B, H), keys (B, S, H) -> (B, S)."""
        return self.w_v(torch.tanh(self.W_q(query)[:, None, :] + keys)).squeeze(-1)


class DotAttention(nn.Module):
    """score(q, k) = q · k / sqrt(d) (d2l's DotProductAttention)."""

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory

    def scores(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bh,bsh->bs", query, keys) / math.sqrt(keys.shape[-1])


@dataclass
class State:
    """The decoder's state for a batch of sources: the recurrent state (h, or (h, c)), the encoder's
    outputs and their attention keys, the sources' lengths, and the fixed context (``none``)."""

    hidden: torch.Tensor | tuple[torch.Tensor, torch.Tensor]
    memory: torch.Tensor
    keys: torch.Tensor | None
    src_len: torch.Tensor
    context: torch.Tensor | None
    weights: torch.Tensor | None = None  # the last step's attention (B, S)

    def rows(self, index: torch.Tensor) -> "State":
        h = self.hidden
        h = tuple(x[:, index] for x in h) if isinstance(h, tuple) else h[:, index]
        pick = (lambda t: None if t is None else t[index])
        return State(h, self.memory[index], pick(self.keys), self.src_len[index], pick(self.context),
                     pick(self.weights))


def _top(hidden) -> torch.Tensor:
    """The top layer's h (B, H) of a GRU state or an LSTM's (h, c)."""
    return (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]


class Seq2Seq(EncoderDecoder):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        cell = nn.GRU if c.cell == "gru" else nn.LSTM
        drop = c.dropout if c.num_layers > 1 else 0.0
        self.src_embedding = nn.Embedding(c.vocab_size, c.embed)
        self.encoder = cell(c.embed, c.hidden, c.num_layers, dropout=drop, batch_first=True)
        self.tgt_embedding = nn.Embedding(c.vocab_size, c.embed)
        self.decoder = cell(c.embed + c.hidden, c.hidden, c.num_layers, dropout=drop, batch_first=True)
        self.attention = {"additive": lambda: AdditiveAttention(c.hidden), "dot": DotAttention,
                          "none": lambda: None}[c.attention]()
        self.head = nn.Linear(c.hidden, c.vocab_size)

    # ------------------------------------------------------------ the encoder
    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> State:
        S = src.shape[1]
        packed = pack_padded_sequence(self.src_embedding(src), src_len.cpu().clamp(min=1), batch_first=True,
                                      enforce_sorted=False)
        out, hidden = self.encoder(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=S)
        if self.attention is None:
            return State(hidden, memory, None, src_len, _top(hidden))
        return State(hidden, memory, self.attention.keys(memory), src_len, None)

    # ------------------------------------------------------------ the decoder
    def _context(self, state: State) -> State:
        if self.attention is None:
            return state
        w = masked_softmax(self.attention.scores(_top(state.hidden), state.keys), state.src_len)
        return replace(state, context=torch.einsum("bs,bsh->bh", w, state.memory), weights=w)

    def decode_step(self, token: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        state = self._context(state)
        x = torch.cat([self.tgt_embedding(token), state.context], -1)[:, None, :]
        out, hidden = self.decoder(x, state.hidden)
        return self.head(out[:, 0]), replace(state, hidden=hidden)

    def select_state(self, state: State, index: torch.Tensor) -> State:
        return state.rows(index)

    def fast_decoder(self):
        """The decoder step in numpy on the CPU (decoder.py), for a float32 model in eval mode."""
        from .decoder import choose
        return choose(self)

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        state = self.encode(src, src_len)
        if self.attention is None:  # the same context at every step: the whole target in one call
            emb = self.tgt_embedding(tgt_in)
            ctx = state.context[:, None, :].expand(-1, emb.shape[1], -1)
            out, _ = self.decoder(torch.cat([emb, ctx], -1), state.hidden)
            return self.head(out)
        logits = []
        for t in range(tgt_in.shape[1]):
            step, state = self.decode_step(tgt_in[:, t], state)
            logits.append(step)
        return torch.stack(logits, 1)

    def alignment(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> list[torch.Tensor]:
        """One layer, one head: (1, T, S) for the first source of the batch."""
        if self.attention is None:
            return super().alignment(src, src_len, tgt_in)
        state, rows = self.encode(src, src_len), []
        for t in range(tgt_in.shape[1]):
            _, state = self.decode_step(tgt_in[:, t], state)
            rows.append(state.weights[0])
        return [torch.stack(rows)[None]]
