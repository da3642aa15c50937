"""Decoder-only transformer in the spirit of nanoGPT's model.py: pre-LayerNorm blocks, causal
self-attention through ``scaled_dot_product_attention``, GELU MLP, learned or rotary positions, tied
input/output embeddings. Generation keeps a key/value cache: each new token is one forward step over
the cache. Past the context size the window slides: with rotary positions the oldest cache entries are
dropped; with learned positions the cache is rebuilt from the most recent half-context of tokens."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..base import LanguageModel
from ..config import ModelConfig


@dataclass
class KVCache:
    """Per-layer keys/values (batch, heads, time, head size), the absolute position of the next token, and
    the tokens seen so far (needed to rebuild the cache when the window slides)."""

    kv: list = field(default_factory=list)
    pos: int = 0
    tokens: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return self.kv[0][0].shape[2] if self.kv else 0


@functools.lru_cache(maxsize=32)
def _rotations(pos0: int, t: int, d: int, device: torch.device) -> torch.Tensor:
    """e^(i·pos·base^(-2j/D)) for positions pos0 … pos0+t-1 and channel pairs j: (T, D/2), complex. Made
    outside inference mode and autograd, so a table first made while generating also serves training."""
    with torch.inference_mode(False), torch.no_grad():
        inv = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32) / d)
        ang = torch.arange(pos0, pos0 + t, dtype=torch.float32)[:, None] * inv[None, :]
        return torch.polar(torch.ones_like(ang), ang).to(device)


def rotary(x: torch.Tensor, pos0: int, complex_numbers: bool | None = None) -> torch.Tensor:
    """Rotate each pair of channels (2j, 2j+1) of x (B, H, T, D) by the angle pos·base^(-2j/D), pos = pos0 + t:
    one complex product per pair (written out in reals on MPS, which lacks complex numbers)."""
    d = x.shape[-1]
    if not (complex_numbers if complex_numbers is not None else x.device.type != "mps"):
        cos, sin = torch.view_as_real(_rotations(pos0, x.shape[-2], d, torch.device("cpu"))).to(x.device).unbind(-1)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), -1).flatten(-2)
    rot = _rotations(pos0, x.shape[-2], d, x.device)
    pairs = torch.view_as_complex(x.float().unflatten(-1, (d // 2, 2)).contiguous())
    return torch.view_as_real(pairs * rot).flatten(-2).to(x.dtype)


class CausalSelfAttention(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.n_head, self.rotary, self.dropout = c.heads, c.pos == "rotary", c.dropout
        self.c_attn = nn.Linear(c.hidden, 3 * c.hidden)
        self.c_proj = nn.Linear(c.hidden, c.hidden)
        self.resid_dropout = nn.Dropout(c.dropout)

    def forward(self, x, past=None, pos0: int = 0):
        b, t, ch = x.shape
        q, k, v = self.c_attn(x).split(ch, dim=2)
        q, k, v = (z.view(b, t, self.n_head, ch // self.n_head).transpose(1, 2) for z in (q, k, v))
        if self.rotary:
            q, k = rotary(q, pos0), rotary(k, pos0)
        if past is not None:
            k = torch.cat([past[0], k], 2)
            v = torch.cat([past[1], v], 2)
        s = k.shape[2]
        drop = self.dropout if self.training else 0.0
        if s == t:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=True)
        elif t == 1:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        else:  # several new tokens after a cached prefix: each sees the prefix and its own past
            mask = torch.arange(s, device=x.device)[None, :] <= (s - t + torch.arange(t, device=x.device))[:, None]
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        y = y.transpose(1, 2).contiguous().view(b, t, ch)
        return self.resid_dropout(self.c_proj(y)), (k, v)


class MLP(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.c_fc = nn.Linear(c.hidden, 4 * c.hidden)
        self.c_proj = nn.Linear(4 * c.hidden, c.hidden)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden)
        self.attn = CausalSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.hidden)
        self.mlp = MLP(c)

    def forward(self, x, past=None, pos0: int = 0):
        a, kv = self.attn(self.ln_1(x), past, pos0)
        x = x + a
        return x + self.mlp(self.ln_2(x)), kv


class TransformerLM(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.wte = nn.Embedding(c.vocab_size, c.hidden)
        self.wpe = nn.Embedding(c.context, c.hidden) if c.pos == "learned" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.ln_f = nn.LayerNorm(c.hidden)
        self.lm_head = nn.Linear(c.hidden, c.vocab_size, bias=False)
        if c.tie_weights:
            self.lm_head.weight = self.wte.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2's scaled init of residual projections
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.num_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def init_state(self, batch_size: int, device="cpu"):
        return KVCache(tokens=torch.zeros(batch_size, 0, dtype=torch.long, device=device))

    def _run(self, x, cache: KVCache | None):
        pos0 = cache.pos if cache is not None else 0
        h = self.wte(x)
        if self.wpe is not None:
            h = h + self.wpe(torch.arange(pos0, pos0 + x.shape[1], device=x.device))
        h = self.drop(h)
        new_kv = []
        for i, block in enumerate(self.blocks):
            past = cache.kv[i] if cache is not None and cache.kv else None
            h, kv = block(h, past, pos0)
            new_kv.append(kv)
        return self.lm_head(self.ln_f(h)), new_kv

    def forward(self, x, state: KVCache | None = None):
        """Without a state: a plain causal forward (training). With a KVCache: extend it with x."""
        if state is None:
            if x.shape[1] > self.config.context:
                raise ValueError(f"sequence of {x.shape[1]} tokens exceeds the context of {self.config.context}")
            return self._run(x, None)[0], None
        ctx, t_new = self.config.context, x.shape[1]
        tokens = torch.cat([state.tokens, x.long()], 1)[:, -ctx:]
        if state.length + x.shape[1] > ctx:
            if self.wpe is None and x.shape[1] < ctx:  # rotary: keep the newest entries of the cache
                keep = ctx - x.shape[1]
                state = KVCache([(k[:, :, -keep:], v[:, :, -keep:]) for k, v in state.kv] if keep else [],
                                state.pos, state.tokens)
            else:  # learned positions: rebuild the cache from the recent tokens, positions from 0
                n_keep = min(tokens.shape[1], max(ctx // 2, x.shape[1]))
                state, x = KVCache(), tokens[:, -n_keep:]
        logits, kv = self._run(x, state)
        return logits[:, -t_new:], KVCache(kv, state.pos + x.shape[1], tokens)

    def detach_state(self, state):
        return None

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The attention weights written out (softmax of q·k / sqrt(d) under the causal mask), outside the
        fast path: per layer, (heads, time, time) and the values (heads, time, head size)."""
        x = ids.reshape(1, -1).long()[:, -self.config.context:]
        t = x.shape[1]
        h = self.wte(x)
        if self.wpe is not None:
            h = h + self.wpe(torch.arange(t, device=x.device))
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        out = []
        for block in self.blocks:
            attn = block.attn
            ch = h.shape[-1]
            q, k, v = attn.c_attn(block.ln_1(h)).split(ch, dim=2)
            q, k, v = (z.view(1, t, attn.n_head, ch // attn.n_head).transpose(1, 2) for z in (q, k, v))
            if attn.rotary:
                q, k = rotary(q, 0), rotary(k, 0)
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            weights = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
            out.append((weights[0], v[0]))
            h, _ = block(h)
        return out
