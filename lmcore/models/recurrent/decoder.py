"""RNN, GRU and LSTM generation on the CPU: the cell equations in numpy on weights laid out once per
stream. The first layer's input projection becomes a table row per token, sigmoids are ``tanh`` of
pre-halved rows (one call for all gates), the prompt is read layer by layer. numpy's OpenBLAS
matrix-vector product is ~2x faster than torch's MKL one on AMD CPUs, and a numpy call on a few hundred
numbers costs ~1 us against ~3 us for torch."""
from __future__ import annotations

import numpy as np
import torch

from ...generation.decoders import ModelDecoder
from .model import RecurrentLM

TABLE_MAX_BYTES = 64 * 2 ** 20  # a first-layer table bigger than this: project the embedding per token


class RecurrentDecoder(ModelDecoder):
    """RNN, GRU and LSTM cells in numpy (CPU, unidirectional). The prompt is read layer by layer: the
    input projection of a whole layer is one matrix product, then one matrix-vector product per token."""

    def __init__(self, model: RecurrentLM, device: torch.device):
        super().__init__(model, device)
        c = model.config
        self.arch, self.H, self.L = c.arch, c.hidden, c.num_layers
        H = c.hidden
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        halve = np.ones({"rnn": 1, "gru": 3, "lstm": 4}[c.arch] * H, np.float32)
        if c.arch == "lstm":  # gates i, f, g, o: sigmoid(a) = (tanh(a/2) + 1) / 2 for i, f and o
            halve[: 2 * H] = 0.5
            halve[3 * H:] = 0.5
        elif c.arch == "gru":  # gates r, z, n: halve r and z
            halve[: 2 * H] = 0.5
        w_ih, w_hh, b_ih, b_hh = ([np.ascontiguousarray(sd[f"rnn.{n}_l{l}"] * (halve[:, None] if n[0] == "w" else halve))
                                   for l in range(self.L)] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
        # the GRU's candidate gate needs the recurrent part on its own; the others add both biases once
        self.b_in = b_ih if c.arch == "gru" else [a + b for a, b in zip(b_ih, b_hh)]
        self.w_ih, self.w_hh, self.b_hh = w_ih, w_hh, b_hh
        emb = sd.get("embedding.weight")
        self.emb, self.table = emb, None
        if emb is None:  # one-hot input: the projection of token t is column t
            self.table = np.ascontiguousarray(w_ih[0].T + self.b_in[0])
        elif emb.shape[0] * w_ih[0].shape[0] * 4 <= TABLE_MAX_BYTES:
            with np.errstate(all="ignore"):  # weights that overflow: the scores say so (sampling.finite_logits)
                self.table = np.ascontiguousarray(emb @ w_ih[0].T + self.b_in[0])
        # one product for [input; state] of deeper layers: their rows in ``h`` are next to each other
        self.w_cat = [np.ascontiguousarray(np.concatenate([w_ih[l], w_hh[l]], 1)) if l and c.arch != "gru" else None
                      for l in range(self.L)]
        self.head_w, self.head_b = np.ascontiguousarray(sd["head.weight"]), sd["head.bias"]
        self._new_state()

    STATE = ("h", "c")

    def _new_state(self) -> None:
        self.h = np.zeros((self.L, self.H), np.float32)
        self.c = np.zeros((self.L, self.H), np.float32)

    def _first_inputs(self, ids) -> np.ndarray:
        if self.table is not None:
            return self.table[ids]
        return self.emb[ids] @ self.w_ih[0].T + self.b_in[0]

    def _cell(self, l: int, xp: np.ndarray) -> np.ndarray:
        """Layer l reads its projected input ``xp`` (W_ih x + biases); its state h[l] (c[l]) is updated."""
        H, out = self.H, self.h[l]
        hp = self.w_hh[l] @ out
        if self.arch == "gru":
            hp += self.b_hh[l]
            rz = xp[: 2 * H] + hp[: 2 * H]
            np.tanh(rz, out=rz)
            rz *= 0.5
            rz += 0.5
            n = hp[2 * H:]
            n *= rz[:H]
            n += xp[2 * H:]
            np.tanh(n, out=n)
            out -= n
            out *= rz[H:]
            out += n  # h = n + z (h - n)
            return out
        hp += xp
        return self._activate(l, hp)

    def _activate(self, l: int, hp: np.ndarray) -> np.ndarray:
        """RNN and LSTM: the new state of layer l from its gates' pre-activations (overwritten)."""
        H, out = self.H, self.h[l]
        np.tanh(hp, out=hp)
        if self.arch == "rnn":
            out[:] = hp
            return out
        s = hp * 0.5
        s += 0.5  # sigmoids of i, f, o (g's slice of s is unused: hp holds tanh(g))
        cell = self.c[l]
        cell *= s[H: 2 * H]
        cell += s[:H] * hp[2 * H: 3 * H]
        np.multiply(s[3 * H:], np.tanh(cell), out=out)
        return out

    def _logits(self) -> np.ndarray:
        logits = self.head_w @ self.h[-1]
        logits += self.head_b
        return logits

    def prefill(self, ids: list[int]) -> np.ndarray:
        self.h[:] = 0
        self.c[:] = 0
        xs = self._first_inputs(np.asarray(ids, dtype=np.int64))
        for l in range(self.L):
            outs = np.empty((len(ids), self.H), np.float32)
            for t in range(len(ids)):
                outs[t] = self._cell(l, xs[t])
            if l + 1 < self.L:
                xs = outs @ self.w_ih[l + 1].T + self.b_in[l + 1]
        return self._logits()

    def step(self, token: int) -> np.ndarray:
        x = self._cell(0, self.table[token] if self.table is not None else self._first_inputs([token])[0])
        flat, H = self.h.reshape(-1), self.H
        for l in range(1, self.L):
            if self.w_cat[l] is not None:
                a = self.w_cat[l] @ flat[(l - 1) * H: (l + 1) * H]
                a += self.b_in[l]
                x = self._activate(l, a)
            else:
                xp = self.w_ih[l] @ x
                xp += self.b_in[l]
                x = self._cell(l, xp)
        return self._logits()


def choose(model: RecurrentLM, device: torch.device) -> ModelDecoder | None:
    """The numpy cells on the CPU for a unidirectional model; elsewhere the model's own step."""
    return RecurrentDecoder(model, device) if device.type == "cpu" and not model.config.bidirectional else None
