"""The seq2seq decoder's one-token step on the CPU in numpy (as lmcore/models/recurrent/decoder.py does for
the decoder-only RNNs): the weights laid out once per reply, the source read once by the model's own
``encode`` (torch), then per token a few numpy calls on a batch of rows (one row for a reply, a row per
beam for beam search): the first layer's embedding projection is a table row per token, the gates' sigmoids
are ``tanh`` of pre-halved rows (one call for all gates), the attention's keys, mask and (``none``) the
context's projection are computed once per source. It computes what ``Seq2Seq.decode_step`` computes (the
tests compare them token by token), in float32, for a model in eval mode."""
from __future__ import annotations

import math

import numpy as np
import torch


def _halves(cell: str, H: int) -> np.ndarray:
    """Per gate row: 0.5 where the gate is a sigmoid (sigmoid(a) = (tanh(a / 2) + 1) / 2), else 1."""
    halve = np.ones((3 if cell == "gru" else 4) * H, np.float32)
    halve[: 2 * H] = 0.5  # GRU r, z; LSTM i, f
    if cell == "lstm":
        halve[3 * H:] = 0.5  # LSTM o
    return halve


class Seq2SeqDecoder:
    """Numpy decoding for a :class:`~lmcore.models.seq2seq.model.Seq2Seq` in eval mode on the CPU:
    ``start(src, src_len)`` (torch tensors, as ``encode`` takes them), then ``step(tokens)`` -> logits
    (rows, vocab) float32, and ``select(rows)`` to pick or repeat rows (beams)."""

    def __init__(self, model):
        c = model.config
        self.model, self.cell, self.H, self.L, self.E = model, c.cell, c.hidden, c.num_layers, c.embed
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        halve = _halves(c.cell, c.hidden)
        w_ih, w_hh, b_ih, b_hh = ([np.ascontiguousarray(sd[f"decoder.{n}_l{l}"] * (halve[:, None] if n[0] == "w"
                                                                                     else halve)).astype(np.float32)
                                   for l in range(self.L)] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        # the GRU's candidate gate needs its recurrent bias apart; the LSTM adds both biases once
        self.b_in = b_ih if c.cell == "gru" else [a + b for a, b in zip(b_ih, b_hh)]
        self.w_ih_t = [np.ascontiguousarray(w.T) for w in w_ih]
        self.w_hh_t = [np.ascontiguousarray(w.T) for w in w_hh]
        self.b_hh = b_hh
        E = self.E  # layer 0 reads [embedding; context]: the embedding's part is a table row per token
        self.table = np.ascontiguousarray(sd["tgt_embedding.weight"] @ w_ih[0][:, :E].T + self.b_in[0])
        self.w_ctx_t = np.ascontiguousarray(w_ih[0][:, E:].T)
        self.head_t, self.head_b = np.ascontiguousarray(sd["head.weight"].T), sd["head.bias"]
        self.attention = c.attention
        if c.attention == "additive":
            self.w_q_t = np.ascontiguousarray(sd["attention.W_q.weight"].T)
            self.w_v = np.ascontiguousarray(sd["attention.w_v.weight"][0])

    # ------------------------------------------------------------ a batch of sources
    def start(self, src: torch.Tensor, src_len: torch.Tensor) -> None:
        """Encode the sources (the model's own encoder) and keep what every step reads."""
        state = self.model.encode(src, src_len)
        numpy = (lambda t: None if t is None else np.ascontiguousarray(t.detach().float().cpu().numpy()))
        hidden = state.hidden
        own = (lambda t: numpy(t).copy())  # the state is written in place
        self.h = own(hidden[0] if isinstance(hidden, tuple) else hidden)  # (L, B, H)
        self.c = own(hidden[1]) if isinstance(hidden, tuple) else None
        self.memory, self.keys = numpy(state.memory), numpy(state.keys)  # (B, S, H)
        S = self.memory.shape[1]
        valid = np.arange(S)[None, :] < src_len.cpu().numpy()[:, None]
        self.mask = np.where(valid, 0.0, -np.inf).astype(np.float32)  # (B, S)
        # none: the same context at every step, its projection once
        self.ctx_proj = None if state.context is None else numpy(state.context) @ self.w_ctx_t

    def select(self, rows) -> None:
        """Keep the rows ``rows`` (picked or repeated), as ``Seq2Seq.select_state``."""
        rows = np.asarray(rows, dtype=np.int64)
        self.h = self.h[:, rows]
        self.c = None if self.c is None else self.c[:, rows]
        self.memory, self.mask = self.memory[rows], self.mask[rows]
        self.keys = None if self.keys is None else self.keys[rows]
        self.ctx_proj = None if self.ctx_proj is None else self.ctx_proj[rows]

    # ------------------------------------------------------------ one token
    def _context_projection(self) -> np.ndarray:
        """The attention's context (queried by the top layer's state) through layer 0's input weights."""
        if self.ctx_proj is not None:
            return self.ctx_proj
        q = self.h[-1]  # (B, H)
        if self.attention == "additive":
            feat = (q @ self.w_q_t)[:, None, :] + self.keys
            np.tanh(feat, out=feat)
            scores = feat @ self.w_v
        else:  # dot
            scores = np.matmul(self.keys, q[:, :, None])[:, :, 0] / np.float32(math.sqrt(self.H))
        scores += self.mask
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        context = np.matmul(scores[:, None, :], self.memory)[:, 0]
        return context @ self.w_ctx_t

    def _cell(self, l: int, xp: np.ndarray) -> np.ndarray:
        """Layer l reads its projected input ``xp`` (rows, gates); its state h[l] (c[l]) is replaced."""
        H = self.H
        hp = self.h[l] @ self.w_hh_t[l]
        if self.cell == "gru":
            hp += self.b_hh[l]
            rz = xp[:, : 2 * H] + hp[:, : 2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            n = hp[:, 2 * H:] * rz[:, :H]
            n += xp[:, 2 * H:]
            np.tanh(n, out=n)
            h = self.h[l] - n
            h *= rz[:, H:]
            h += n  # h = n + z (h - n)
        else:
            hp += xp
            np.tanh(hp, out=hp)
            s = hp * 0.5
            s += 0.5  # the sigmoids of i, f, o (hp's g slice holds tanh(g))
            c = self.c[l] * s[:, H: 2 * H]
            c += s[:, :H] * hp[:, 2 * H: 3 * H]
            h = s[:, 3 * H:] * np.tanh(c)
            self.c[l] = c
        self.h[l] = h
        return h

    def step(self, tokens) -> np.ndarray:
        """tokens (rows,): the logits (rows, vocab) of the next token; the state moves on by one."""
        xp = self.table[np.asarray(tokens, dtype=np.int64)] + self._context_projection()
        x = self._cell(0, xp)
        for l in range(1, self.L):
            xp = x @ self.w_ih_t[l]
            xp += self.b_in[l]
            x = self._cell(l, xp)
        logits = x @ self.head_t
        logits += self.head_b
        return logits


def choose(model) -> Seq2SeqDecoder | None:
    """The numpy decoder for a float32 model in eval mode on the CPU; None elsewhere (the model's own
    ``decode_step`` then)."""
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cpu" or p.dtype != torch.float32 or model.training:
        return None
    return Seq2SeqDecoder(model)
