"""Transformer generation one token at a time: the blocks' equations with preallocated key/value
buffers (no cache tensors rebuilt per token; rotary positions use them as a ring), in torch on any
device and in numpy on the CPU."""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...generation.decoders import ModelDecoder
from ...generation.sampling import as_vector
from .model import TransformerLM


class TransformerDecoder(ModelDecoder):
    """The transformer's blocks for one new token (torch, any device), with keys/values in preallocated
    buffers (layers, heads, context, head size). Past the context the window slides as the model's own
    cache does: rotary positions overwrite the oldest entry (attention over a set does not care about
    order); learned positions rebuild the cache from the most recent half-context."""

    def __init__(self, model: TransformerLM, device: torch.device):
        super().__init__(model, device)
        c = model.config
        self.ctx, self.heads, self.hd, self.width = c.context, c.heads, c.hidden // c.heads, c.hidden
        self.rotary = c.pos == "rotary"
        self.inv = 10000.0 ** (-torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd)
        self.shape = (c.num_layers, c.heads, c.context, self.hd)
        self._weights()
        self._new_state()

    STATE = ("n", "pos", "tokens", "k", "v")  # NumpyTransformerDecoder's scratch buffers are shared

    def _new_state(self) -> None:
        self.n = self.pos = 0
        self.tokens: list[int] = []
        self.k = torch.zeros(self.shape, device=self.device, dtype=self.model.wte.weight.dtype)
        self.v = torch.zeros_like(self.k)

    def _weights(self) -> None:
        self.inv = self.inv.to(self.device)
        # the weights each block needs, looked up once (a module attribute lookup costs ~1 us)
        self.layers = [(b.ln_1.weight, b.ln_1.bias, b.attn.c_attn.weight, b.attn.c_attn.bias, b.attn.c_proj.weight,
                        b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias, b.mlp.c_fc.weight, b.mlp.c_fc.bias,
                        b.mlp.c_proj.weight, b.mlp.c_proj.bias) for b in self.model.blocks]

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> np.ndarray:
        ids = list(ids)[-self.ctx:]
        logits, cache = self.model(torch.tensor([ids], device=self.device), self.model.init_state(1, self.device))
        t = len(ids)
        for l, (k, v) in enumerate(cache.kv):
            self._keep(l, k[0], v[0])
        self.n, self.pos = t, cache.pos
        self.tokens = ids
        return as_vector(logits[0, -1])

    def _keep(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the prompt's keys and values (heads, time, head size) of one layer."""
        self.k[layer, :, : k.shape[1]] = k
        self.v[layer, :, : v.shape[1]] = v

    def step(self, token: int) -> np.ndarray:
        ctx = self.ctx
        self.tokens.append(token)
        if len(self.tokens) > ctx:
            del self.tokens[0]
        if self.n >= ctx and not self.rotary:  # learned positions: start again from the recent half
            window = self.tokens
            logits = self.prefill(window[-max(ctx // 2, 1):])
            self.tokens = window
            return logits
        slot = self.pos % ctx if self.rotary else self.n
        used = min(self.n + 1, ctx)
        logits = self._one(token, slot, used)
        self.n, self.pos = used, self.pos + 1
        return logits

    def _rotate(self, qk: torch.Tensor) -> torch.Tensor:
        ang = self.inv * self.pos
        cos, sin = ang.cos().to(qk.dtype), ang.sin().to(qk.dtype)
        x1, x2 = qk[..., 0::2], qk[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2)

    @torch.inference_mode()
    def _one(self, token: int, slot: int, used: int) -> np.ndarray:
        m, width = self.model, (self.width,)
        x = m.wte.weight[token]
        if m.wpe is not None:
            x = x + m.wpe.weight[self.pos]
        x = x.view(1, -1)
        keys, values = self.k[:, :, slot: slot + 1], self.v[:, :, slot: slot + 1]
        k_all, v_all = self.k[None, :, :, :used], self.v[None, :, :, :used]
        qkv_shape = (3, 1, self.heads, 1, self.hd)
        for l, (ln1_w, ln1_b, attn_w, attn_b, proj_w, proj_b, ln2_w, ln2_b, fc_w, fc_b, out_w, out_b) in enumerate(self.layers):
            qkv = F.linear(F.layer_norm(x, width, ln1_w, ln1_b), attn_w, attn_b).view(qkv_shape)
            if self.rotary:
                qk = self._rotate(qkv[:2])
                q, k = qk[0], qk[1]
            else:
                q, k = qkv[0], qkv[1]
            keys[l] = k[0]
            values[l] = qkv[2, 0]
            y = F.scaled_dot_product_attention(q, k_all[:, l], v_all[:, l])
            x = x + F.linear(y.view(x.shape), proj_w, proj_b)
            x = x + F.linear(F.gelu(F.linear(F.layer_norm(x, width, ln2_w, ln2_b), fc_w, fc_b)), out_w, out_b)
        logits = F.linear(F.layer_norm(x, width, m.ln_f.weight, m.ln_f.bias), m.lm_head.weight)
        return as_vector(logits[0])


class NumpyTransformerDecoder(TransformerDecoder):
    """The same steps in numpy for the CPU, where torch's per-call cost on vectors of a few hundred
    numbers (~10-40 us for a linear layer, ~40 us for GELU at batch 1) outweighs the arithmetic."""

    def _new_state(self) -> None:
        self.n = self.pos = 0
        self.tokens = []
        self.k = np.zeros(self.shape, np.float32)
        self.v = np.zeros(self.shape, np.float32)
        self.fc = np.empty(4 * self.width, np.float32)
        self.gelu = np.empty(4 * self.width, np.float32)
        self.gelu_t = torch.from_numpy(self.gelu)  # GELU needs erf, which numpy lacks: torch on the same memory

    def _weights(self) -> None:
        m = self.model

        def a(t):
            return np.ascontiguousarray(t.detach().float().cpu().numpy())

        self.wte, self.wpe = a(m.wte.weight), (a(m.wpe.weight) if m.wpe is not None else None)
        scale = np.ones(3 * self.width, np.float32)
        scale[: self.width] = self.hd ** -0.5  # queries carry attention's 1/sqrt(head size)

        def folded(ln, lin, rows=None):
            """A LayerNorm's gain and shift folded into the linear layer after it:
            W (g * xhat + s) + b = (W g) xhat + (W s + b)."""
            w, b = a(lin.weight), (a(lin.bias) if lin.bias is not None else 0)
            if rows is not None:
                w, b = w * rows[:, None], b * rows
            return np.ascontiguousarray(w * a(ln.weight)[None, :]), (w @ a(ln.bias) + b).astype(np.float32)

        self.layers = [(*folded(b.ln_1, b.attn.c_attn, scale), a(b.attn.c_proj.weight), a(b.attn.c_proj.bias),
                        *folded(b.ln_2, b.mlp.c_fc), a(b.mlp.c_proj.weight), a(b.mlp.c_proj.bias)) for b in m.blocks]
        self.head = folded(m.ln_f, m.lm_head)
        self.inv_np = self.inv.numpy()

    def _keep(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> None:
        self.k[layer, :, : k.shape[1]] = k.float().cpu().numpy()
        self.v[layer, :, : v.shape[1]] = v.float().cpu().numpy()

    @staticmethod
    def _norm(x: np.ndarray) -> np.ndarray:
        """LayerNorm without its gain and shift (folded into the next layer); ufuncs called directly, as
        ndarray.mean/.sum cost ~10 us of Python each."""
        xc = x - float(np.add.reduce(x)) / x.size
        xc *= 1.0 / math.sqrt(float(xc @ xc) / x.size + 1e-5)
        return xc

    def _rotate_np(self, x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x1 * cos - x2 * sin
        out[..., 1::2] = x1 * sin + x2 * cos
        return out

    def _one(self, token: int, slot: int, used: int) -> np.ndarray:
        heads, hd, w = self.heads, self.hd, self.width
        x = self.wte[token] + self.wpe[self.pos] if self.wpe is not None else self.wte[token].copy()
        if self.rotary:
            ang = self.inv_np * np.float32(self.pos)
            cos, sin = np.cos(ang), np.sin(ang)
        fc, g, g_t = self.fc, self.gelu, self.gelu_t
        for l, (attn_w, attn_b, proj_w, proj_b, fc_w, fc_b, out_w, out_b) in enumerate(self.layers):
            qkv = attn_w @ self._norm(x)
            qkv += attn_b
            qkv = qkv.reshape(3, heads, hd)
            q, k = (self._rotate_np(qkv[:2], cos, sin) if self.rotary else qkv[:2])
            keys, values = self.k[l], self.v[l]
            keys[:, slot] = k
            values[:, slot] = qkv[2]
            s = np.matmul(keys[:, :used], q[:, :, None])[:, :, 0]  # (heads, used)
            s -= np.maximum.reduce(s, 1, keepdims=True)
            np.exp(s, out=s)
            s /= np.add.reduce(s, 1, keepdims=True)
            y = np.matmul(s[:, None, :], values[:, :used]).reshape(w)
            a = proj_w @ y
            a += proj_b
            x = x + a
            np.matmul(fc_w, self._norm(x), out=fc)
            fc += fc_b
            np.multiply(fc, np.float32(0.5 ** 0.5), out=g)
            torch.special.erf(g_t, out=g_t)
            g += 1.0
            g *= fc
            g *= 0.5  # GELU: x (1 + erf(x / sqrt 2)) / 2
            a = out_w @ g
            a += out_b
            x += a
        logits = self.head[0] @ self._norm(x)
        logits += self.head[1]
        return logits


def choose(model: TransformerLM, device: torch.device) -> ModelDecoder:
    return (NumpyTransformerDecoder if device.type == "cpu" else TransformerDecoder)(model, device)
