"""minGRU and minLSTM generation on the CPU, one token at a time in numpy."""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch

from ...generation.decoders import ModelDecoder
from ...generation.sampling import as_vector

SQRT_HALF = 0.7071067811865476


class MinRNNDecoder(ModelDecoder):
    """minGRU and minLSTM one token at a time in numpy (CPU): the prompt through the model's parallel
    scan, then the recurrence per token, fused like the LSTM's decoder: one matrix product per weight
    matrix of a layer (all gates at once), into buffers laid out once per stream, no allocation but the
    logits. Each matrix reads a LayerNorm's scale and its own bias folded in: the normalised vector
    carries a trailing 1 (the bias column); the MLP's output matrix holds GELU's 0.5. The gates are one
    sigmoid over the whole projection (minGRU: a = 1 - z, b = z; minLSTM: a = f / (f + i), b = i / (f +
    i), the scan's log-space formulas written directly); the sigmoid and erf are torch's, written into
    the numpy buffers (numpy has neither: one call instead of a dozen)."""

    def __init__(self, model, device: torch.device):
        super().__init__(model, device)
        c = model.config
        self.mode, self.H, self.L = c.arch, c.hidden, c.num_layers
        sd = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
        self.emb = sd["embedding.weight"]

        def folded(ln: str, lin: str):  # lin(LayerNorm(x)) = [W * w | W b + c] [n(x); 1], n the plain norm
            w = sd[f"{lin}.weight"]
            return with_bias(w * sd[f"{ln}.weight"][None, :], w @ sd[f"{ln}.bias"] + sd[f"{lin}.bias"])

        self.layers = []
        for i in range(self.L):
            p = f"blocks.{i}."
            self.layers.append((folded(p + "ln_1", p + "rnn.proj"), sd[p + "rnn.out.weight"], sd[p + "rnn.out.bias"],
                                folded(p + "ln_2", p + "mlp.0"),
                                with_bias(0.5 * sd[p + "mlp.2.weight"], sd[p + "mlp.2.bias"])))
        self.head = folded("ln_f", "head")
        self._new_state()

    STATE = ("h",)

    def _new_state(self) -> None:
        self.h = np.zeros((self.L, self.H), np.float32)
        self._buffers()

    def clone(self) -> MinRNNDecoder:
        """The same state going on independently, with its own scratch buffers."""
        other = super().clone()
        other._buffers()  # a stream's scratch is its own
        return other

    def _buffers(self) -> None:
        """This stream's scratch vectors, with torch views of those torch computes on in place."""
        H, k = self.H, (2 if self.mode == "mingru" else 3)
        b = SimpleNamespace(x=np.empty(H, np.float32), n=np.ones(H + 1, np.float32), p=np.empty(k * H, np.float32),
                            s=np.empty(k * H, np.float32), t=np.empty(H, np.float32),
                            up=np.empty(2 * H, np.float32), u=np.ones(2 * H + 1, np.float32))
        b.nv, b.uv, b.cand, b.scand = b.n[:H], b.u[:2 * H], b.p[-H:], b.s[-H:]
        b.gate1, b.gate2 = b.s[:H], b.s[H: 2 * H]
        with torch.inference_mode(False):  # ordinary tensors: written in place in and out of inference mode
            b.tp, b.ts, b.tuv = torch.from_numpy(b.p), torch.from_numpy(b.s), torch.from_numpy(b.uv)
        self.buf = b

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> np.ndarray:
        logits, state = self.model(torch.tensor([ids], device=self.device),
                                   torch.from_numpy(self.h[:, None]).to(self.model.head.weight))
        self.h = state[:, 0].float().cpu().numpy()
        return as_vector(logits[0, -1])

    def _norm(self, x: np.ndarray) -> np.ndarray:
        """[n(x); 1] in this stream's buffer: x's LayerNorm without scale and shift, then the bias input."""
        b = self.buf
        nv = np.subtract(x, float(np.add.reduce(x)) / self.H, out=b.nv)
        nv *= 1.0 / math.sqrt(float(nv @ nv) / self.H + 1e-5)
        return b.n

    def step(self, token: int) -> np.ndarray:
        b, gru = self.buf, self.mode == "mingru"
        x = b.x
        np.copyto(x, self.emb[token])
        for l, (w_in, w_out, b_out, w_up, w_down) in enumerate(self.layers):
            np.matmul(w_in, self._norm(x), out=b.p)
            torch.sigmoid(b.tp, out=b.ts)  # z (or f, i) and sigmoid(h~)
            g = np.maximum(b.cand, 0.0, out=b.cand)  # g(h~): h~ + 0.5 where h~ >= 0, else sigmoid(h~)
            g += np.minimum(b.scand, 0.5, out=b.scand)
            h = self.h[l]
            if gru:
                g -= h
                g *= b.gate1
                h += g  # (1 - z) h + z g
            else:
                f, i = b.gate1, b.gate2
                g *= i
                h *= f
                h += g
                f += i
                h /= f  # f / (f + i) h + i / (f + i) g
            x += np.matmul(w_out, h, out=b.t)
            x += b_out
            np.matmul(w_up, self._norm(x), out=b.up)
            np.multiply(b.up, SQRT_HALF, out=b.uv)
            b.tuv.erf_()  # torch's GELU and normal distribution take 10x longer than its erf on this size
            b.uv += 1.0
            b.uv *= b.up  # 2 GELU(up) = up (1 + erf(up / sqrt 2)): w_down holds the 0.5
            x += np.matmul(w_down, b.u, out=b.t)
        return self.head @ self._norm(x)


def with_bias(w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """[w | bias]: w's product with a vector that ends in a 1 adds the bias."""
    return np.ascontiguousarray(np.concatenate([w, bias[:, None]], 1), dtype=np.float32)


def choose(model, device: torch.device) -> ModelDecoder | None:
    """The numpy recurrence on the CPU (not while training: dropout); elsewhere the model's own step."""
    return MinRNNDecoder(model, device) if device.type == "cpu" and not model.training else None
