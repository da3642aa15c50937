"""minGRU and minLSTM generation on the CPU, one token at a time in numpy."""
from __future__ import annotations

import math

import numpy as np
import torch

from ...generation.decoders import ModelDecoder
from ...generation.sampling import as_vector


class MinRNNDecoder(ModelDecoder):
    """minGRU and minLSTM one token at a time in numpy (CPU): the prompt through the model's parallel
    scan, then the recurrence per token. Each LayerNorm's scale and shift are folded into the matrix
    that reads it, once per stream; the gates come from one sigmoid over the whole projection (minGRU:
    a = 1 - z, b = z; minLSTM: a = f / (f + i), b = i / (f + i), the scan's log-space formulas written
    directly), so a layer is about thirty numpy operations: 2.5x the speed of writing out the model's
    formulas one by one."""

    def __init__(self, model, device: torch.device):
        super().__init__(model, device)
        c = model.config
        self.mode, self.H, self.L = c.arch, c.hidden, c.num_layers
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.emb = sd["embedding.weight"]

        def folded(ln: str, lin: str):  # lin(LayerNorm(x)) = (W * w) n(x) + (W b + c), n(x) the plain norm
            w = sd[f"{lin}.weight"]
            return np.ascontiguousarray(w * sd[f"{ln}.weight"][None, :]), w @ sd[f"{ln}.bias"] + sd[f"{lin}.bias"]

        self.layers = []
        for i in range(self.L):
            p = f"blocks.{i}."
            self.layers.append((*folded(p + "ln_1", p + "rnn.proj"), sd[p + "rnn.out.weight"], sd[p + "rnn.out.bias"],
                                *folded(p + "ln_2", p + "mlp.0"), sd[p + "mlp.2.weight"], sd[p + "mlp.2.bias"]))
        self.head_w, self.head_b = folded("ln_f", "head")
        self._new_state()

    STATE = ("h",)

    def _new_state(self) -> None:
        self.h = np.zeros((self.L, self.H), np.float32)

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> np.ndarray:
        logits, state = self.model(torch.tensor([ids], device=self.device),
                                   torch.from_numpy(self.h[:, None]).to(self.model.head.weight))
        self.h = state[:, 0].float().cpu().numpy()
        return as_vector(logits[0, -1])

    @staticmethod
    def _norm(x: np.ndarray) -> np.ndarray:
        d = x - x.mean()
        return d * (1.0 / math.sqrt(float(d @ d) / d.size + 1e-5))

    def step(self, token: int) -> np.ndarray:
        H, gru = self.H, self.mode == "mingru"
        x = self.emb[token].copy()
        for l, (w_in, b_in, w_out, b_out, w_up, b_up, w_down, b_down) in enumerate(self.layers):
            p = w_in @ self._norm(x)
            p += b_in
            gates = np.maximum(p, -80.0)  # sigmoid of z (or f, i) and of h~; exp(80) fits a float32
            np.negative(gates, out=gates)
            np.exp(gates, out=gates)
            gates += 1.0
            np.reciprocal(gates, out=gates)
            g = np.maximum(p[-H:], 0.0)  # g(h~): h~ + 0.5 where h~ >= 0, else sigmoid(h~)
            g += np.minimum(gates[-H:], 0.5)
            h = self.h[l]
            if gru:
                z = gates[:H]
                g -= h
                g *= z
                h += g  # (1 - z) h + z g
            else:
                f, i = gates[:H], gates[H: 2 * H]
                g *= i
                g += f * h
                g /= f + i
                h[:] = g  # f / (f + i) h + i / (f + i) g
            x += w_out @ h
            x += b_out
            up = w_up @ self._norm(x)
            up += b_up
            x += w_down @ _gelu(up)
            x += b_down
        out = self.head_w @ self._norm(x)
        out += self.head_b
        return out


def _gelu(z: np.ndarray) -> np.ndarray:
    """The exact GELU, 0.5 z (1 + erf(z / sqrt 2)), as relu(z) - 0.5 |z| (1 - erf(|z| / sqrt 2)), with
    erf from Abramowitz & Stegun 7.1.26 (error below 1.5e-7): numpy has no erf."""
    a = np.abs(z)
    u = a * 0.7071067811865476
    t = u * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    y = t * 1.061405429
    for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        y += c
        y *= t
    u *= u
    np.negative(u, out=u)
    np.exp(u, out=u)
    y *= u  # 1 - erf(|z| / sqrt 2)
    y *= a
    y *= -0.5
    y += np.maximum(z, 0.0)
    return y


def choose(model, device: torch.device) -> ModelDecoder | None:
    """The numpy recurrence on the CPU (not while training: dropout); elsewhere the model's own step."""
    return MinRNNDecoder(model, device) if device.type == "cpu" and not model.training else None
