"""The seq2seq-transformer's one-token decoder step on the CPU in numpy (as lmcore/models/transformer/decoder.py
does for the decoder-only transformer): the source read once by the same equations (the encoder, then every
decoder layer's cross-attention keys/values), then per token a few numpy calls on a batch of rows
(one for a reply, one per beam) with the self-attention keys/values in preallocated buffers. Each
LayerNorm's gain and shift are folded into the linear layer after it, the queries carry attention's
1/sqrt(head size), the self-attention's query, key and value are one product. It computes what
``Seq2SeqTransformer.decode_step`` computes (the tests compare them token by token), in float32, for a
model in eval mode."""
from __future__ import annotations

import math

import numpy as np
import torch

from ..encdec import weights_layout


FIRST_TABLE_MAX_BYTES = 32 << 20  # OneRow's table of the first layer's inputs, at most
EXP_SAFE = 80.0  # float32 exp neither overflows nor (with every score above -EXP_SAFE) underflows to 0


def _a(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


def _folded(ln, w: np.ndarray, b: np.ndarray, scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A LayerNorm's gain and shift folded into the linear layer (w, b) after it, transposed for x @ w:
    W (g * xhat + s) + b = (W g) xhat + (W s + b); ``scale`` multiplies the output rows."""
    if scale is not None:
        w, b = w * scale[:, None], b * scale
    return np.ascontiguousarray((w * _a(ln.weight)[None, :]).T), (w @ _a(ln.bias) + b).astype(np.float32)


def _self_attention(ln, attn, scale: np.ndarray) -> tuple:
    """A block's self-attention after its LayerNorm ``ln``: the query, key and value as one product (the
    LayerNorm folded in, the queries scaled), then the output projection: (qkv_w, qkv_b, out_w, out_b)."""
    qkv_w = np.concatenate([_a(attn.q.weight), _a(attn.kv.weight)])
    qkv_b = np.concatenate([_a(attn.q.bias), _a(attn.kv.bias)])
    return (*_folded(ln, qkv_w, qkv_b, scale), _a(attn.out.weight).T.copy(), _a(attn.out.bias))


def _mlp(ln, mlp) -> tuple:
    """A block's feed-forward layers after its LayerNorm ``ln`` (folded in): (fc_w, fc_b, proj_w, proj_b)."""
    return (*_folded(ln, _a(mlp.fc.weight), _a(mlp.fc.bias)), _a(mlp.proj.weight).T.copy(), _a(mlp.proj.bias))


class Layout:
    """The model's weights laid out for numpy (float32)."""

    def __init__(self, model):
        c = model.config
        self.width, self.heads, self.hd, self.max_len = c.hidden, c.heads, c.hidden // c.heads, c.max_len
        W = c.hidden
        scale = np.ones(3 * W, np.float32)
        scale[:W] = self.hd ** -0.5  # the queries carry 1/sqrt(head size)
        self.emb = _a(model.tgt_emb.weight) * np.float32(math.sqrt(W))
        self.pos = _a(model.tgt_pos.weight) if c.pos == "learned" else _a(model.table)
        self.layers = []
        for b in model.decoder:
            self.layers.append((*_self_attention(b.ln1, b.attn, scale),
                                *_folded(b.ln2, _a(b.cross.q.weight), _a(b.cross.q.bias), scale[:W]),
                                _a(b.cross.out.weight).T.copy(), _a(b.cross.out.bias), *_mlp(b.ln3, b.mlp)))
        self.head = _folded(model.dec_ln, _a(model.head.weight), _a(model.head.bias))
        self.one_row = None  # OneRow, made at the first reply
        # per layer the cross-attention's query weights centred (see OneRow), (heads, W, hd)
        self.cross_q = [np.ascontiguousarray((l[4] - l[4].mean(0, keepdims=True)).reshape(W, self.heads, self.hd)
                                             .transpose(1, 0, 2)) for l in self.layers]
        self._encoder(model, scale)

    def _encoder(self, model, scale: np.ndarray) -> None:
        """The encoder's blocks, and each decoder layer's cross-attention keys/values with the encoder's
        last LayerNorm folded in."""
        c = model.config
        self.src_emb = _a(model.src_emb.weight) * np.float32(math.sqrt(c.hidden))
        self.src_pos = _a(model.src_pos.weight) if c.pos == "learned" else _a(model.table)
        self.enc = []
        for b in model.encoder:
            self.enc.append((*_self_attention(b.ln1, b.attn, scale), *_mlp(b.ln2, b.mlp)))
        self.cross_kv = [_folded(model.enc_ln, _a(b.cross.kv.weight), _a(b.cross.kv.bias)) for b in model.decoder]

    def encode(self, src: np.ndarray, lengths: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per decoder layer, the cross-attention keys and values (B, heads, S, hd) of sources ``src``
        (B, S) of ``lengths`` (B,), as ``Seq2SeqTransformer.encode`` computes them."""
        B, S = src.shape
        if S > self.max_len:
            raise ValueError(f"a source of {S} tokens is longer than the model's limit of {self.max_len}")
        H, hd, W = self.heads, self.hd, self.width
        mask = np.where(np.arange(S)[None, :] < lengths[:, None], 0.0, -np.inf).astype(np.float32)[:, None, None]
        x = self.src_emb[src] + self.src_pos[:S]
        for qkv_w, qkv_b, out_w, out_b, fc_w, fc_b, pr_w, pr_b in self.enc:
            qkv = _norm(x) @ qkv_w
            qkv += qkv_b
            q, k, v = qkv.reshape(B, S, 3, H, hd).transpose(2, 0, 3, 1, 4)  # each (B, H, S, hd)
            s = np.matmul(q, k.transpose(0, 1, 3, 2))
            s += mask
            s -= np.maximum.reduce(s, -1, keepdims=True)
            np.exp(s, out=s)
            s /= np.add.reduce(s, -1, keepdims=True)
            a = np.matmul(s, v).transpose(0, 2, 1, 3).reshape(B, S, W) @ out_w
            a += out_b
            x = x + a
            f = _norm(x) @ fc_w
            f += fc_b
            np.maximum(f, 0, out=f)
            a = f @ pr_w
            a += pr_b
            x += a
        memory = _norm(x)
        out = []
        for kv_w, kv_b in self.cross_kv:
            kv = memory @ kv_w
            kv += kv_b
            k, v = kv.reshape(B, S, 2, H, hd).transpose(2, 0, 3, 1, 4)
            out.append((np.ascontiguousarray(k), np.ascontiguousarray(v)))
        return out


def layout(model) -> Layout:
    """The model's :class:`Layout`, made again only when a parameter changed (training, loading)."""
    return weights_layout(model, Layout)


def _norm(x: np.ndarray) -> np.ndarray:
    """LayerNorm of each row without its gain and shift (folded into the next layer); one row (a reply)
    through Python floats, as ndarray methods cost microseconds each."""
    if x.shape[0] == 1 and x.ndim == 2:
        v = x[0]
        xc = v - float(np.add.reduce(v)) / v.size
        xc *= 1.0 / math.sqrt(float(xc @ xc) / v.size + 1e-5)
        return xc[None]
    xc = x - np.add.reduce(x, -1, keepdims=True) / x.shape[-1]
    var = np.add.reduce(xc * xc, -1, keepdims=True) / x.shape[-1]
    xc *= 1.0 / np.sqrt(var + 1e-5)
    return xc


def _softmax(s: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place."""
    s -= np.maximum.reduce(s, -1, keepdims=True)
    np.exp(s, out=s)
    s /= np.add.reduce(s, -1, keepdims=True)
    return s


def _mix(p: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Weights p (B, heads, n) of values (B, heads, n, hd): (B, heads * hd)."""
    y = np.matmul(p[:, :, None, :], values)[:, :, 0]
    return y.reshape(y.shape[0], -1)


def _attend(q: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """q (B, heads, hd) over keys/values (B, heads, n, hd): (B, heads * hd)."""
    return _mix(_softmax(np.matmul(keys, q[..., None])[..., 0]), values)


class TransformerSeq2SeqDecoder:
    """``start(src, src_len)``, then ``step(tokens)`` -> logits (rows, vocab) float32, ``select(rows)``."""

    def __init__(self, model):
        self.model, self.w = model, layout(model)

    def start(self, src: torch.Tensor, src_len: torch.Tensor) -> None:
        lengths = src_len.cpu().numpy().clip(min=1)  # as the model's key mask
        cross = self.w.encode(src.cpu().numpy().astype(np.int64), lengths)  # per layer (B, heads, S, hd)
        # one source (a reply, its beams): folded through the weights once; a batch keeps its keys/values
        self.folded = src.shape[0] == 1
        self.cross = [self._cross(l, k, v) for l, (k, v) in enumerate(cross)] if self.folded else cross
        valid = np.arange(src.shape[1])[None, :] < lengths[:, None]
        # (B, 1, S); None when no source has padding (one source never has)
        self.mask = None if valid.all() else np.where(valid, 0.0, -np.inf).astype(np.float32)[:, None]
        w, B = self.w, src.shape[0]
        # per layer and row, the keys [0] and values [1] of the target so far
        self.kv, self.pos = np.zeros((len(w.layers), B, 2, w.heads, w.max_len, w.hd), np.float32), 0
        self._one_row()

    def _cross(self, l: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Layer l's cross-attention of one source (k, v: (1, heads, S, hd)) through its query and output
        weights, made once: the scores of head h are xhat @ (Wq_h K_h^T) + K_h bq_h, as one matrix of W + 1
        rows (the last: the bias; Wq centred, as ``OneRow`` reads it), its output p_h @ (V_h Wout_h) with
        the output bias spread over the heads (each head's weights sum to 1)."""
        H, hd, W = self.w.heads, self.w.hd, self.w.width
        cq, cq_b, cout_w, cout_b = self.w.cross_q[l], self.w.layers[l][5], self.w.layers[l][6], self.w.layers[l][7]
        S = k.shape[2]
        scores = np.empty((W + 1, H * S), np.float32)
        scores[:W] = np.matmul(cq, k[0].transpose(0, 2, 1)).transpose(1, 0, 2).reshape(W, H * S)
        scores[W] = np.matmul(k[0], cq_b.reshape(H, hd, 1)).reshape(H * S)
        vo = np.matmul(v[0], cout_w.reshape(H, hd, W)).reshape(H * S, W)
        vo += cout_b / H
        return scores, vo

    def select(self, rows) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.kv = self.kv[:, rows]
        if not self.folded:  # one source (a reply, beams): every row reads it, nothing to pick
            self.cross = [(k[rows], v[rows]) for k, v in self.cross]
            self.mask = None if self.mask is None else self.mask[rows]
        self._one_row()

    def _one_row(self) -> None:
        """The set-up of ``_step_one`` (one row of one unpadded source: a reply, the first step of a beam
        search), or None (see ``OneRow``)."""
        self.one = None
        if not self.folded or self.mask is not None or self.kv.shape[1] != 1:
            return
        w = self.w
        if w.one_row is None:
            w.one_row = OneRow(w)
        self.one = w.one_row.buffers(self.kv, self.cross)

    def _attend_source(self, l: int, xhat: np.ndarray) -> np.ndarray:
        """Layer l's cross-attention output for normalised rows ``xhat`` (B, W): of one source with its bias, of a
        batch without."""
        B, H = xhat.shape[0], self.w.heads
        if not self.folded:  # a batch of sources: query, attention, output projection
            cq_w, cq_b, cout_w = self.w.layers[l][4], self.w.layers[l][5], self.w.layers[l][6]
            q = (xhat @ cq_w + cq_b).reshape(B, H, -1)
            k, v = self.cross[l]
            s = np.matmul(k, q[..., None])[..., 0]  # (B, H, S)
            if self.mask is not None:
                s += self.mask
            return _mix(_softmax(s), v) @ cout_w
        a, vo = self.cross[l]
        s = xhat @ a[:-1]
        s += a[-1]
        s = s.reshape(B, H, -1)
        if self.mask is not None:  # a source padded on its own (never from lmcore's decoding)
            s += self.mask
        s = _softmax(s).reshape(B, -1)
        return s @ vo  # the output bias included

    def step(self, tokens) -> np.ndarray:
        w, p = self.w, self.pos
        if p >= w.max_len:
            raise ValueError(f"a target of {p + 1} tokens is longer than the model's limit of {w.max_len}")
        if self.one is not None:
            return self._step_one(int(tokens[0]))[None]
        x = w.emb[np.asarray(tokens, dtype=np.int64)] + w.pos[p]
        B, H, hd = x.shape[0], w.heads, w.hd
        for l, (qkv_w, qkv_b, out_w, out_b, _, _, _, cout_b, fc_w, fc_b, pr_w, pr_b) in enumerate(w.layers):
            qkv = _norm(x) @ qkv_w
            qkv += qkv_b
            qkv = qkv.reshape(B, 3, H, hd)
            kv = self.kv[l]
            kv[:, :, :, p] = qkv[:, 1:]
            a = _attend(qkv[:, 0], kv[:, 0, :, : p + 1], kv[:, 1, :, : p + 1]) @ out_w
            a += out_b
            x += a  # x is this step's own array (the embedding plus the position made it)
            a = self._attend_source(l, _norm(x))
            if not self.folded:
                a += cout_b
            x += a
            f = _norm(x) @ fc_w
            f += fc_b
            np.maximum(f, 0, out=f)
            a = f @ pr_w
            a += pr_b
            x += a
        self.pos = p + 1
        logits = _norm(x) @ w.head[0]
        logits += w.head[1]
        return logits


    def _step_one(self, token: int) -> np.ndarray:
        """``step`` for one row of one unpadded source, in as few numpy calls as it takes (``OneRow``)."""
        p, n, W = self.pos, self.pos + 1, self.w.width
        stats, xa, x, qkv, q, kv_new, ya, y, fa, f, layers, head, first = self.one
        np.add(self.w.emb[token], self.w.pos[p], out=x)
        for qkv_w, kv, out_w, cross_w, scores, heads, bounded, vo, fc_w, pr_w in layers:
            # self-attention over the target so far
            if first is not None:  # the first layer's query, key and value of (token, position): looked up
                np.copyto(qkv, first[token, p])
                first = None
            else:
                total, squares = (stats @ x).tolist()
                m = total / W
                xa[W] = inv = math.sqrt(max(squares / W - m * m, 0.0) + 1e-5)
                np.matmul(xa, qkv_w, out=qkv)
                qkv /= inv
            kv[:, :, p] = kv_new
            s = np.matmul(q, kv[0, :, :n].swapaxes(1, 2))  # (heads, 1, n)
            s -= np.maximum.reduce(s, -1, keepdims=True)
            np.exp(s, out=s)
            s /= np.add.reduce(s, -1, keepdims=True)
            np.matmul(s, kv[1, :, :n], out=y)
            x += ya @ out_w
            # cross-attention over the source, folded through its weights
            total, squares = (stats @ x).tolist()
            m = total / W
            xa[W] = inv = math.sqrt(max(squares / W - m * m, 0.0) + 1e-5)
            np.matmul(xa, cross_w, out=scores)
            scores /= inv
            if not bounded:  # scores that could overflow exp: shifted by their head's largest
                heads -= np.maximum.reduce(heads, -1, keepdims=True)
            np.exp(scores, out=scores)
            heads /= np.add.reduce(heads, -1, keepdims=True)
            x += scores @ vo
            # the feed-forward block (relu(r z) = r relu(z): the scale r = 1/inv applied after it)
            total, squares = (stats @ x).tolist()
            m = total / W
            xa[W] = fa[-1] = inv = math.sqrt(max(squares / W - m * m, 0.0) + 1e-5)
            np.matmul(xa, fc_w, out=f)
            np.maximum(f, 0, out=f)
            out = fa @ pr_w
            out /= inv
            x += out
        self.pos = n
        total, squares = (stats @ x).tolist()
        m = total / W
        xa[W] = inv = math.sqrt(max(squares / W - m * m, 0.0) + 1e-5)
        logits = xa @ head
        logits /= inv
        return logits


def _centred(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A linear layer (x @ w + b) after a LayerNorm as one matrix of ``OneRow``'s: w's rows less their mean
    (x @ that = (x - mean(x)) @ w) and b as a last row."""
    return np.ascontiguousarray(np.vstack([w - w.mean(0, keepdims=True), b[None]]), dtype=np.float32)


class OneRow:
    """The weights of the one-row step, made once per layout. A LayerNorm then a linear layer is computed
    as ((x @ C) + s * b) / s, C the centred weights, s = sqrt(var(x) + eps): the row is never centred or
    scaled itself, and its mean and mean square come from one product (``stats`` @ x, a row of ones
    beside the row x itself, in one buffer). Each bias rides in its product (the buffer ``xa`` is x then
    s); the attention output's bias through a last 1 after the heads' mix; the cross-attention's output
    bias is spread over its heads' values (each head's weights sum to 1)."""

    def __init__(self, w: "Layout"):
        aug = lambda m, b: np.ascontiguousarray(np.vstack([m, b[None]]), dtype=np.float32)  # noqa: E731
        self.w = w
        self.layers = [(_centred(qkv_w, qkv_b), aug(out_w, out_b), _centred(fc_w, fc_b), aug(pr_w, pr_b))
                       for qkv_w, qkv_b, out_w, out_b, _, _, _, _, fc_w, fc_b, pr_w, pr_b in w.layers]
        self.head = _centred(*w.head)
        self.first = self._first_layer(w)

    @staticmethod
    def _first_layer(w: "Layout") -> np.ndarray | None:
        """The first layer's query, key and value (3 W) of every (token, position): its input is the token's
        embedding plus the position's; None when that table would pass FIRST_TABLE_MAX_BYTES (words)."""
        V, L, W = w.emb.shape[0], w.max_len, w.width
        if V * L * 3 * W * 4 > FIRST_TABLE_MAX_BYTES:
            return None
        x = (w.emb[:, None, :] + w.pos[None, :L, :]).reshape(V * L, W)
        qkv_w, qkv_b = w.layers[0][0], w.layers[0][1]
        table = _norm(x) @ qkv_w
        table += qkv_b
        return table.reshape(V, L, 3 * W)

    def buffers(self, kv: np.ndarray, cross: list) -> tuple:
        """The buffers and per-layer weights of one reply (``kv``: the decoder's self-attention cache,
        ``cross``: per layer the folded source (``TransformerSeq2SeqDecoder._cross``))."""
        W, H, hd = self.w.width, self.w.heads, self.w.hd
        rows = np.zeros((2, W + 1), np.float32)
        rows[0, :W] = 1.0  # ones beside x: stats @ x = (sum, sum of squares)
        stats, xa, x = rows[:, :W], rows[1], rows[1, :W]
        qkv = np.empty(3 * W, np.float32)
        ya = np.ones(W + 1, np.float32)
        fa = np.ones(self.w.layers[0][8].shape[1] + 1, np.float32)
        layers = []
        for l, ((qkv_w, out_w, fc_w, pr_w), (cross_w, vo)) in enumerate(zip(self.layers, cross)):
            S = cross_w.shape[1] // H
            scores = np.empty(H * S, np.float32)
            # |score| <= |xhat| |column| + |bias|, |xhat| <= sqrt(W): below EXP_SAFE, exp needs no shift
            bound = math.sqrt(W) * float(np.sqrt((cross_w[:W] ** 2).sum(0)).max()) + float(np.abs(cross_w[W]).max())
            layers.append((qkv_w, kv[l, 0], out_w, cross_w, scores, scores.reshape(H, S), bound < EXP_SAFE, vo,
                           fc_w, pr_w))
        return (stats, xa, x, qkv, qkv[:W].reshape(H, 1, hd), qkv[W:].reshape(2, H, hd), ya,
                ya[:W].reshape(H, 1, hd), fa, fa[:-1], layers, self.head, self.first)


def choose(model) -> TransformerSeq2SeqDecoder | None:
    """The numpy decoder for a float32 model in eval mode on the CPU; None elsewhere (the model's own
    ``decode_step`` then)."""
    p = next(model.parameters(), None)
    if p is None or p.device.type != "cpu" or p.dtype != torch.float32 or model.training:
        return None
    return TransformerSeq2SeqDecoder(model)
