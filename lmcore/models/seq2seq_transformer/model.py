"""d2l's transformer encoder-decoder (pre-LayerNorm blocks). The encoder's self-attention and the decoder's
cross-attention see only the source's valid length (``src_len``; padding after it changes nothing); the
decoder's self-attention is causal. Embeddings are scaled by sqrt(width) and positions added (d2l's
sinusoidal table, or learned).

Interface shared with the other encoder-decoder family (lmcore/generation/seq2seq_decode.py uses it):

- ``forward(src, src_len, tgt_in) -> logits`` (batch, target time, vocab): teacher forcing;
- ``encode(src, src_len) -> DecodeState``: the encoder once, and every layer's cross-attention keys and
  values computed from its output once per source;
- ``decode_step(token, state) -> (logits, state)``: one target token per row (batch,) -> (batch, vocab),
  with the self-attention keys/values of the tokens so far kept in the state (a key/value cache);
- ``select_state(state, index)``: the rows ``index`` of a state (beam search reorders and repeats rows);
- ``alignment(src, src_len, tgt_in)``: the attention maps of one pair (see the method)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..encdec import EncoderDecoder


def sinusoids(length: int, width: int) -> torch.Tensor:
    """d2l's positional encoding: P[i, 2j] = sin(i / 10000^(2j/d)), P[i, 2j+1] = cos(the same)."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    angle = pos / torch.pow(10000.0, torch.arange(0, width, 2, dtype=torch.float32) / width)
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : width // 2])
    return table


def key_mask(src_len: torch.Tensor, length: int) -> torch.Tensor:
    """(batch, 1, 1, length) bool: True on each row's first ``src_len`` positions (at least one)."""
    valid = src_len.clamp(min=1).to(torch.long)
    return (torch.arange(length, device=src_len.device)[None, :] < valid[:, None])[:, None, None, :]


class Attention(nn.Module):
    """Multi-head scaled dot-product attention: queries from one sequence, keys/values (``keys_values``)
    from the same or another."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, w = x.shape
        return x.view(b, t, self.heads, w // self.heads).transpose(1, 2)

    def keys_values(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.kv(x).chunk(2, -1)
        return self.split(k), self.split(v)

    def forward(self, x, k, v, mask=None, causal=False, weights=False):
        """x (batch, time, width) queries k/v (batch, heads, keys, head size); ``mask`` (bool, True where a
        key may be seen) or ``causal``. Returns the output and, if ``weights``, the attention weights
        (batch, heads, time, keys) written out (softmax of q·k / sqrt(head size))."""
        q = self.split(self.q(x))
        b, t, w = x.shape
        seen = None
        if weights:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            allowed = mask
            if causal:
                allowed = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(k.shape[2] - t)
            if allowed is not None:
                scores = scores.masked_fill(~allowed, float("-inf"))
            seen = torch.softmax(scores, -1)
            y = seen @ v
        else:
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=causal)
        return self.out(y.transpose(1, 2).reshape(b, t, w)), seen


class MLP(nn.Module):
    def __init__(self, width: int, ffn: int, dropout: float):
        super().__init__()
        self.fc, self.proj, self.drop = nn.Linear(width, ffn), nn.Linear(ffn, width), nn.Dropout(dropout)

    def forward(self, x):
        return self.drop(self.proj(F.relu(self.fc(x))))


class EncoderBlock(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.hidden), nn.LayerNorm(c.hidden)
        self.attn = Attention(c.hidden, c.heads, c.dropout)
        self.mlp = MLP(c.hidden, c.ffn, c.dropout)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, mask, weights=False):
        a = self.ln1(x)
        y, seen = self.attn(a, *self.attn.keys_values(a), mask=mask, weights=weights)
        x = x + self.drop(y)
        return x + self.mlp(self.ln2(x)), seen


class DecoderBlock(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(c.hidden) for _ in range(3))
        self.attn = Attention(c.hidden, c.heads, c.dropout)
        self.cross = Attention(c.hidden, c.heads, c.dropout)
        self.mlp = MLP(c.hidden, c.ffn, c.dropout)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, memory_kv, mask, past=None, weights=False):
        """x (batch, time, width); ``memory_kv`` this layer's cross-attention keys/values; ``past`` the
        self-attention keys/values of earlier target tokens (None: x is the whole target so far).
        Returns x, this layer's self-attention keys/values, and the two weights (or Nones)."""
        a = self.ln1(x)
        k, v = self.attn.keys_values(a)
        if past is not None:
            k, v = torch.cat([past[0], k], 2), torch.cat([past[1], v], 2)
        y, seen_self = self.attn(a, k, v, causal=x.shape[1] > 1, weights=weights)
        x = x + self.drop(y)
        y, seen_cross = self.cross(self.ln2(x), *memory_kv, mask=mask, weights=weights)
        x = x + self.drop(y)
        return x + self.mlp(self.ln3(x)), (k, v), (seen_self, seen_cross)


@dataclass
class DecodeState:
    """What decoding carries: per layer the cross-attention keys/values of the source (made once), the
    source's key mask, per layer the self-attention keys/values of the target tokens so far, and the next
    target position."""

    cross: list = field(default_factory=list)
    mask: torch.Tensor | None = None
    past: list = field(default_factory=list)
    pos: int = 0


class Seq2SeqTransformer(EncoderDecoder):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.src_emb, self.tgt_emb = nn.Embedding(c.vocab_size, c.hidden), nn.Embedding(c.vocab_size, c.hidden)
        for emb in (self.src_emb, self.tgt_emb):  # std 1/sqrt(width): scaled by sqrt(width), as large as the positions
            nn.init.normal_(emb.weight, std=c.hidden ** -0.5)
        if c.pos == "learned":
            self.src_pos, self.tgt_pos = nn.Embedding(c.max_len, c.hidden), nn.Embedding(c.max_len, c.hidden)
        else:
            self.register_buffer("table", sinusoids(c.max_len, c.hidden), persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = nn.ModuleList(EncoderBlock(c) for _ in range(c.num_layers))
        self.decoder = nn.ModuleList(DecoderBlock(c) for _ in range(c.num_layers))
        self.enc_ln, self.dec_ln = nn.LayerNorm(c.hidden), nn.LayerNorm(c.hidden)
        self.head = nn.Linear(c.hidden, c.vocab_size)

    def _embed(self, ids: torch.Tensor, pos0: int, source: bool) -> torch.Tensor:
        t = ids.shape[1]
        if pos0 + t > self.config.max_len:
            side = "source" if source else "target"
            raise ValueError(f"a {side} of {pos0 + t} tokens is longer than the model's limit of {self.config.max_len}")
        emb = self.src_emb if source else self.tgt_emb
        x = emb(ids) * math.sqrt(self.config.hidden)
        if self.config.pos == "learned":
            x = x + (self.src_pos if source else self.tgt_pos).weight[pos0: pos0 + t]
        else:
            x = x + self.table[pos0: pos0 + t]
        return self.drop(x)

    def _encode(self, src, src_len, weights=False):
        mask = key_mask(src_len.to(src.device), src.shape[1])
        x, maps = self._embed(src.long(), 0, True), []
        for block in self.encoder:
            x, seen = block(x, mask, weights)
            maps.append(seen)
        return self.enc_ln(x), mask, maps

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> DecodeState:
        memory, mask, _ = self._encode(src, src_len)
        return DecodeState([b.cross.keys_values(memory) for b in self.decoder], mask, [], 0)

    def _decode(self, tgt, state: DecodeState, weights=False):
        x = self._embed(tgt.long(), state.pos, False)
        past, maps = [], []
        for i, block in enumerate(self.decoder):
            x, kv, seen = block(x, state.cross[i], state.mask, state.past[i] if state.past else None, weights)
            past.append(kv)
            maps.append(seen)
        new = DecodeState(state.cross, state.mask, past, state.pos + tgt.shape[1])
        return self.head(self.dec_ln(x)), new, maps

    def forward(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src (batch, source time), src_len (batch,), tgt_in (batch, target time) ->
        logits (batch, target time, vocab)."""
        return self._decode(tgt_in, self.encode(src, src_len))[0]

    def decode_step(self, token: torch.Tensor, state: DecodeState) -> tuple[torch.Tensor, DecodeState]:
        logits, state, _ = self._decode(token.reshape(-1, 1), state)
        return logits[:, -1], state

    def fast_decoder(self):
        """The decoder step in numpy on the CPU (decoder.py), for a float32 model in eval mode."""
        from .decoder import choose
        return choose(self)

    def select_state(self, state: DecodeState, index: torch.Tensor) -> DecodeState:
        pick = lambda t: t.index_select(0, index)  # noqa: E731
        return DecodeState([(pick(k), pick(v)) for k, v in state.cross], pick(state.mask),
                           [(pick(k), pick(v)) for k, v in state.past], state.pos)

    @torch.no_grad()
    def attention(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Every attention map of one pair (src (1, S) or (S,), tgt_in (1, T) or (T,)), the padding after
        ``src_len`` left out: "cross" per layer (heads, T, source length), each row summing to 1 over the
        valid source; "encoder" per layer (heads, source length, source length); "decoder" per layer
        (heads, T, T), causal."""
        src, tgt_in = src.reshape(1, -1), tgt_in.reshape(1, -1)
        n = int(max(1, min(int(src_len.reshape(-1)[0]), src.shape[1])))
        memory, mask, enc_maps = self._encode(src, torch.tensor([n], device=src.device), weights=True)
        state = DecodeState([b.cross.keys_values(memory) for b in self.decoder], mask, [], 0)
        _, _, dec_maps = self._decode(tgt_in, state, weights=True)
        return {"cross": [c[0, :, :, :n] for _, c in dec_maps],
                "encoder": [e[0, :, :n, :n] for e in enc_maps],
                "decoder": [s[0] for s, _ in dec_maps]}

    def alignment(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> list[torch.Tensor]:
        """Per decoder layer, the cross-attention (heads, T, source length): rows are target positions,
        columns source tokens, each row summing to 1 over the valid source."""
        return self.attention(src, src_len, tgt_in)["cross"]

    def self_attention(self, src: torch.Tensor, src_len: torch.Tensor, tgt_in: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """{"encoder": per layer (heads, S, S), "decoder": per layer (heads, T, T)} of one pair."""
        maps = self.attention(src, src_len, tgt_in)
        return {"encoder": maps["encoder"], "decoder": maps["decoder"]}

    def detach_state(self, state):
        return None
