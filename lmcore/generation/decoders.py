"""Token-at-a-time decoding for generation: a decoder reads the prompt in one batched forward
(``prefill``), then turns each chosen token into the next logits (``step``), keeping its own state.

One token at a time, the cost is the number of operations more than their size, so each family gets
a decoder with as few as it can:
- ``RecurrentDecoder`` (CPU): the cell equations in numpy on weights laid out once per stream: the
  first layer's input projection becomes a table row per token, sigmoids are ``tanh`` of pre-halved
  rows (one call for all gates), the prompt is read layer by layer.
  numpy's OpenBLAS matrix-vector product is ~2x faster than torch's MKL one on AMD CPUs, and a numpy
  call on a few hundred numbers costs ~1 us against ~3 us for torch.
- ``TransformerDecoder`` (any device): the blocks' equations with preallocated key/value buffers
  (no cache tensors rebuilt per token; rotary positions use them as a ring).
- ``ModelDecoder``: the model's own ``forward``/``step`` (n-gram; recurrent models on a GPU).
Every decoder returns the logits as a float32 numpy vector and matches the model's own forward pass
(tests compare them token by token, past the transformer's context)."""
from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..models import LanguageModel, MinRNNLM, RecurrentLM, TransformerLM
from .sampling import as_vector


class ModelDecoder:
    """Decoding through the model's own ``forward`` and ``step``."""

    def __init__(self, model: LanguageModel, device: torch.device):
        self.model, self.device = model, device
        self.state = None  # subclasses set up their state with _new_state() once their shapes are known

    def _new_state(self) -> None:
        """Everything one stream changes; the weights (and their layout) are shared by ``fresh`` copies."""
        self.state = None

    STATE: tuple[str, ...] = ("state",)  # what one stream changes (copied by ``clone``)

    def clone(self) -> "ModelDecoder":
        """A decoder in the same state that goes on independently (a beam of beam search)."""
        other = copy.copy(self)
        with torch.inference_mode():
            for name in self.STATE:
                setattr(other, name, copy.deepcopy(getattr(self, name)))
        return other

    def fresh(self) -> "ModelDecoder":
        """A decoder for another stream that shares this one's prepared weights."""
        other = copy.copy(self)
        other._new_state()
        return other

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> np.ndarray:
        logits, self.state = self.model(torch.tensor([ids], device=self.device), self.model.init_state(1, self.device))
        return as_vector(logits[0, -1])

    @torch.inference_mode()
    def step(self, token: int) -> np.ndarray:
        logits, self.state = self.model.step(torch.tensor([token], device=self.device), self.state)
        return as_vector(logits[0])


# ------------------------------------------------------------------------------------------ recurrent
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


# ---------------------------------------------------------------------------------------- transformer
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


# ------------------------------------------------------------------------------------------ minGRU / minLSTM
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


def decoder_for(model: LanguageModel, device: torch.device | str) -> ModelDecoder:
    """The fastest decoder for a model on a device (a fresh one per generated stream: it copies or
    lays out weights as they are now)."""
    device = torch.device(device)
    if isinstance(model, TransformerLM):
        return (NumpyTransformerDecoder if device.type == "cpu" else TransformerDecoder)(model, device)
    if isinstance(model, RecurrentLM) and device.type == "cpu" and not model.config.bidirectional:
        return RecurrentDecoder(model, device)
    if isinstance(model, MinRNNLM) and device.type == "cpu" and not model.training:
        return MinRNNDecoder(model, device)
    return ModelDecoder(model, device)
