"""The seq2seq decoder's one-token step on the CPU in numpy (as lmcore/models/recurrent/decoder.py does for
the decoder-only RNNs): the weights laid out once per version of the model's parameters, the source read
once by the same cells (packed: each source's final state at its own length), then per token a few numpy
calls on a batch of rows (one row for a reply, a row per beam for beam search): the decoder's embedding
projection is a table row per token (up to ``TABLE_MAX_BYTES``), the gates' sigmoids are ``tanh`` of
pre-halved rows (one call for all gates), the attention's keys, mask and the encoder outputs' projection
through the decoder's input weights (the context's, for ``none``) are computed once per source. It
computes what ``Seq2Seq.decode_step`` computes (the tests compare them token by token), in float32, for a
model in eval mode."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..encdec import weights_layout


TABLE_MAX_BYTES = 64 * 2 ** 20  # a bigger table of the first layer's input per token: projected per step


def _halves(cell: str, H: int) -> np.ndarray:
    """Per gate row: 0.5 where the gate is a sigmoid (sigmoid(a) = (tanh(a / 2) + 1) / 2), else 1."""
    halve = np.ones((3 if cell == "gru" else 4) * H, np.float32)
    halve[: 2 * H] = 0.5  # GRU r, z; LSTM i, f
    if cell == "lstm":
        halve[3 * H:] = 0.5  # LSTM o
    return halve


def cell_step(cell: str, H: int, xp: np.ndarray, h: np.ndarray, c: np.ndarray | None, w_hh_t: np.ndarray,
              b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """One GRU or LSTM step of a batch of rows on pre-halved weights: ``xp`` the projected input (rows,
    gates; the LSTM's both biases in it, the GRU's input bias), ``h`` (``c``) the state: the new (h, c)."""
    hp = h @ w_hh_t
    if cell == "gru":
        hp += b_hh
        rz = xp[:, : 2 * H] + hp[:, : 2 * H]
        np.tanh(rz, out=rz)
        rz *= 0.5
        rz += 0.5
        n = hp[:, 2 * H:] * rz[:, :H]
        n += xp[:, 2 * H:]
        np.tanh(n, out=n)
        out = h - n
        out *= rz[:, H:]
        out += n  # h = n + z (h - n)
        return out, None
    hp += xp
    np.tanh(hp, out=hp)
    s = hp * 0.5
    s += 0.5  # the sigmoids of i, f, o (hp's g slice holds tanh(g))
    c = c * s[:, H: 2 * H]
    c += s[:, :H] * hp[:, 2 * H: 3 * H]
    return s[:, 3 * H:] * np.tanh(c), c


class Stack:
    """A GRU or LSTM stack's weights (``prefix`` "encoder" or "decoder"), pre-halved and transposed."""

    def __init__(self, sd: dict, prefix: str, cell: str, H: int, L: int):
        halve = _halves(cell, H)
        w_ih, w_hh, b_ih, b_hh = ([np.ascontiguousarray(sd[f"{prefix}.{n}_l{l}"] * (halve[:, None] if n[0] == "w"
                                                                                      else halve), np.float32)
                                   for l in range(L)] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        # the GRU's candidate gate needs its recurrent bias apart; the LSTM adds both biases once
        self.b_in = b_ih if cell == "gru" else [a + b for a, b in zip(b_ih, b_hh)]
        self.w_ih_t = [np.ascontiguousarray(w.T) for w in w_ih]
        self.w_hh_t = [np.ascontiguousarray(w.T) for w in w_hh]
        self.b_hh = b_hh


class Layout:
    """The model's weights laid out for numpy (float32): what every reply of the model reads."""

    def __init__(self, model):
        c = model.config
        self.cell, self.H, self.L, self.E, self.attention = c.cell, c.hidden, c.num_layers, c.embed, c.attention
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.enc = Stack(sd, "encoder", c.cell, c.hidden, c.num_layers)
        self.dec = d = Stack(sd, "decoder", c.cell, c.hidden, c.num_layers)
        self.src_emb = sd["src_embedding.weight"]
        E = self.E  # decoder layer 0 reads [embedding; context]: the embedding's part is a table row per token
        self.tgt_emb, self.w_emb_t, self.table = sd["tgt_embedding.weight"], np.ascontiguousarray(d.w_ih_t[0][:E]), None
        if self.tgt_emb.shape[0] * self.w_emb_t.shape[1] * 4 <= TABLE_MAX_BYTES:
            self.table = np.ascontiguousarray(self.tgt_emb @ self.w_emb_t + d.b_in[0])
        self.w_ctx_t = np.ascontiguousarray(d.w_ih_t[0][E:])
        self.head_t, self.head_b = np.ascontiguousarray(sd["head.weight"].T), sd["head.bias"]
        if c.attention == "additive":
            self.w_k_t = np.ascontiguousarray(sd["attention.W_k.weight"].T)
            self.w_q_t = np.ascontiguousarray(sd["attention.W_q.weight"].T)
            self.w_v = np.ascontiguousarray(sd["attention.w_v.weight"][0])

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The encoder over sources ``src`` (B, S) of ``lengths`` (B,), as the packed torch stack reads them:
        the outputs (B, S, H), zero past each length, and the final state h (L, B, H) (and c for the LSTM)
        at each source's own length."""
        B, S = src.shape
        ragged = bool((lengths < S).any())
        keep = (np.arange(S)[:, None] < lengths[None, :])[:, :, None]  # (S, B, 1)
        xs, hs, cs = self.src_emb[src] @ self.enc.w_ih_t[0] + self.enc.b_in[0], [], []  # (B, S, gates)
        for l in range(self.L):
            h = np.zeros((B, self.H), np.float32)
            c = np.zeros((B, self.H), np.float32) if self.cell == "lstm" else None
            outs = np.zeros((B, S, self.H), np.float32)
            for t in range(S):
                h2, c2 = cell_step(self.cell, self.H, xs[:, t], h, c, self.enc.w_hh_t[l], self.enc.b_hh[l])
                if ragged:  # a source that has ended keeps its state; its outputs stay zero
                    h2 = np.where(keep[t], h2, h)
                    c2 = None if c is None else np.where(keep[t], c2, c)
                h, c = h2, c2
                outs[:, t] = h
            if ragged:
                outs *= keep.transpose(1, 0, 2)
            hs.append(h)
            cs.append(c)
            if l + 1 < self.L:
                xs = outs @ self.enc.w_ih_t[l + 1] + self.enc.b_in[l + 1]
        return outs, np.stack(hs), None if self.cell == "gru" else np.stack(cs)


def layout(model) -> Layout:
    """The model's :class:`Layout`, made again only when a parameter changed (training, loading)."""
    return weights_layout(model, Layout)


class Seq2SeqDecoder:
    """Numpy decoding for a :class:`~lmcore.models.seq2seq.model.Seq2Seq` in eval mode on the CPU:
    ``start(src, src_len)`` (torch tensors, as ``encode`` takes them), then ``step(tokens)`` -> logits
    (rows, vocab) float32, and ``select(rows)`` to pick or repeat rows (beams)."""

    def __init__(self, model):
        self.model, self.w = model, layout(model)
        self.cell, self.H, self.L, self.attention = self.w.cell, self.w.H, self.w.L, self.w.attention

    # ------------------------------------------------------------ a batch of sources
    def start(self, src: torch.Tensor, src_len: torch.Tensor) -> None:
        """Encode the sources (src (B, S) ids, src_len (B,), as ``encode`` takes them) and keep what every
        step reads."""
        lengths = src_len.cpu().numpy().clip(min=1)  # as the packed encoder reads them
        memory, self.h, self.c = self.w.encode(src.cpu().numpy().astype(np.int64), lengths)
        self.keys = None
        if self.attention == "additive":
            self.keys = memory @ self.w.w_k_t
        elif self.attention == "dot":  # q . k / sqrt(H): the keys scaled once
            self.keys = memory / np.float32(math.sqrt(self.H))
        # the context only goes through layer 0's input weights: the outputs projected once, (B, S, gates)
        self.values = None if self.keys is None else memory @ self.w.w_ctx_t
        valid = np.arange(memory.shape[1])[None, :] < src_len.cpu().numpy()[:, None]
        self.mask = np.where(valid, 0.0, -np.inf).astype(np.float32)  # (B, S)
        # none: the encoder's final top state is the context at every step, its projection made once
        self.ctx_proj = None if self.keys is not None else self.h[-1] @ self.w.w_ctx_t

    def select(self, rows) -> None:
        """Keep the rows ``rows`` (picked or repeated), as ``Seq2Seq.select_state``."""
        rows = np.asarray(rows, dtype=np.int64)
        self.h = self.h[:, rows]
        self.c = None if self.c is None else self.c[:, rows]
        self.mask = self.mask[rows]
        self.keys = None if self.keys is None else self.keys[rows]
        self.values = None if self.values is None else self.values[rows]
        self.ctx_proj = None if self.ctx_proj is None else self.ctx_proj[rows]

    # ------------------------------------------------------------ one token
    def _context_projection(self) -> np.ndarray:
        """The attention's context (queried by the top layer's state) through layer 0's input weights: the
        weights times the projected encoder outputs."""
        if self.ctx_proj is not None:
            return self.ctx_proj
        q = self.h[-1]  # (B, H)
        if self.attention == "additive":
            feat = (q @ self.w.w_q_t)[:, None, :] + self.keys
            np.tanh(feat, out=feat)
            scores = feat @ self.w.w_v
        else:  # dot
            scores = np.matmul(self.keys, q[:, :, None])[:, :, 0]
        scores += self.mask
        scores -= scores.max(-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(-1, keepdims=True)
        return np.matmul(scores[:, None, :], self.values)[:, 0]

    def _cell(self, l: int, xp: np.ndarray) -> np.ndarray:
        """Layer l reads its projected input ``xp`` (rows, gates); its state h[l] (c[l]) is replaced."""
        h, c = cell_step(self.cell, self.H, xp, self.h[l], None if self.c is None else self.c[l],
                         self.w.dec.w_hh_t[l], self.w.dec.b_hh[l])
        self.h[l] = h
        if c is not None:
            self.c[l] = c
        return h

    def step(self, tokens) -> np.ndarray:
        """tokens (rows,): the logits (rows, vocab) of the next token; the state moves on by one."""
        ids, w = np.asarray(tokens, dtype=np.int64), self.w
        xp = w.table[ids] if w.table is not None else w.tgt_emb[ids] @ w.w_emb_t + w.dec.b_in[0]
        xp += self._context_projection()  # xp is this step's own array
        x = self._cell(0, xp)
        for l in range(1, self.L):
            xp = x @ self.w.dec.w_ih_t[l]
            xp += self.w.dec.b_in[l]
            x = self._cell(l, xp)
        logits = x @ self.w.head_t
        logits += self.w.head_b
        return logits


def choose(model) -> Seq2SeqDecoder | None:
    """The numpy decoder for a float32 model in eval mode on the CPU; None elsewhere (the model's own
    ``decode_step`` then)."""
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cpu" or p.dtype != torch.float32 or model.training:
        return None
    return Seq2SeqDecoder(model)
