"""A small BERT (d2l's BERT chapter): a transformer encoder (pre-LayerNorm blocks, attention with no
causal mask, GELU MLP) over token, learned position and segment embeddings; a masked-language-model
head on every position and a next-sentence head on ``<cls>``.

Its vocabulary is the text's, then ``<cls> <sep> <mask>`` (the last three ids, :class:`.batch.Specials`).
``context`` is how many text tokens it reads: its position table has three more rows, for the special
tokens of ``<cls> A <sep> B <sep>``. Training (``train_loss``) builds the MLM+NSP batch from the
windows every model is trained on (batch.py) and sums the two losses; validation (``eval_loss``) is
the MLM loss on a fixed masking of the validation windows; ``val_metrics`` adds the pseudo-perplexity
and the NSP accuracy (metrics.py)."""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ..base import LanguageModel
from ..config import ModelConfig
from . import metrics
from .batch import IGNORE, Batch, Specials, make_batch, sentence_ends

SPECIAL = 3  # <cls>, <sep>, <sep>: the positions a pair adds to its text


class SelfAttention(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.heads, self.dropout = c.heads, c.dropout
        self.qkv = nn.Linear(c.hidden, 3 * c.hidden)
        self.proj = nn.Linear(c.hidden, c.hidden)

    def split(self, x):
        """(batch, time, width) -> q, k, v each (batch, heads, time, head size)."""
        b, t, ch = x.shape
        return (z.view(b, t, self.heads, ch // self.heads).transpose(1, 2) for z in self.qkv(x).split(ch, 2))

    def forward(self, x):
        q, k, v = self.split(x)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(y.transpose(1, 2).flatten(2))


class Block(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.ln_1, self.attn = nn.LayerNorm(c.hidden), SelfAttention(c)
        self.ln_2, self.drop = nn.LayerNorm(c.hidden), nn.Dropout(c.dropout)
        self.fc, self.out = nn.Linear(c.hidden, 4 * c.hidden), nn.Linear(4 * c.hidden, c.hidden)

    def forward(self, x):
        x = x + self.drop(self.attn(self.ln_1(x)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln_2(x)))))


class BertLM(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.specials = Specials.of(c.vocab_size)
        self.tok = nn.Embedding(c.vocab_size, c.hidden)
        self.pos = nn.Embedding(c.context + SPECIAL, c.hidden)
        self.seg = nn.Embedding(2, c.hidden)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.num_layers))
        self.ln_f = nn.LayerNorm(c.hidden)
        self.mlm_dense, self.mlm_norm = nn.Linear(c.hidden, c.hidden), nn.LayerNorm(c.hidden)
        self.mlm_out = nn.Linear(c.hidden, c.vocab_size)
        self.nsp_dense, self.nsp_out = nn.Linear(c.hidden, c.hidden), nn.Linear(c.hidden, 2)
        self.register_buffer("ends", torch.zeros(c.vocab_size, dtype=torch.bool), persistent=False)
        self.apply(_init)

    # ------------------------------------------------------------ the encoder
    def encode(self, tokens: torch.Tensor, segments: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time) ids (and segment ids, default 0) -> (batch, time, width)."""
        if tokens.shape[1] > self.pos.num_embeddings:
            raise ValueError(f"{tokens.shape[1]} tokens exceed the {self.pos.num_embeddings} positions")
        h = self.tok(tokens) + self.pos(torch.arange(tokens.shape[1], device=tokens.device))
        if segments is not None:
            h = h + self.seg(segments)
        else:
            h = h + self.seg.weight[0]
        h = self.drop(h)
        for block in self.blocks:
            h = block(h)
        return self.ln_f(h)

    def mlm_logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.mlm_out(self.mlm_norm(F.gelu(self.mlm_dense(h))))

    def nsp_logits(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, time, width) -> (batch, 2): not next / next, from ``<cls>``."""
        return self.nsp_out(torch.tanh(self.nsp_dense(h[:, 0])))

    def wrap(self, ids: torch.Tensor) -> torch.Tensor:
        """``<cls> ids <sep>``, one segment."""
        b = ids.shape[0]
        cls = torch.full((b, 1), self.specials.cls, dtype=torch.long, device=ids.device)
        return torch.cat([cls, ids.long(), torch.full_like(cls, self.specials.sep)], 1)

    def forward(self, x, state=None, batch: Batch | None = None):
        """The MLM logits (batch, time, vocab) at every token of ``x`` read as ``<cls> x <sep>`` (one
        segment, nothing masked); no state. With ``batch`` (an MLM+NSP batch, batch.py; ``x`` unused): the
        MLM and NSP losses instead, (2,)."""
        if batch is None:
            return self.mlm_logits(self.encode(self.wrap(x)))[:, 1:-1], None
        h = self.encode(batch.tokens, batch.segments)
        chosen = batch.targets != IGNORE   # the MLM head reads only the chosen tokens (d2l's pred_positions)
        mlm = F.cross_entropy(self.mlm_logits(h[chosen]).float(), batch.targets[chosen])
        return torch.stack([mlm, F.cross_entropy(self.nsp_logits(h).float(), batch.is_next)]), None

    def compile_parts(self) -> bool:
        """Under --compile only the encoder blocks are compiled (in place: the saved names stay): the batch
        is made in Python, with shapes that vary (the chosen tokens), outside any graph."""
        for block in self.blocks:
            block.forward = torch.compile(block.forward)
        return True

    # ------------------------------------------------------------ training and validation
    def read_vocab(self, tokens: list[str]) -> None:
        """Learn which ids end a sentence (where next-sentence pairs are split)."""
        ends = torch.zeros(self.config.vocab_size, dtype=torch.bool)
        ends[[i for i in sentence_ends(tokens) if i < self.specials.text_tokens]] = True
        self.ends.copy_(ends.to(self.ends.device))

    def pairs(self, x: torch.Tensor, generator=None) -> Batch:
        """The MLM+NSP batch of windows ``x`` (batch.py), split at the sentence ends ``read_vocab`` learnt."""
        return make_batch(x, self.specials, self.ends if bool(self.ends.any()) else None, generator)

    def train_loss(self, x, y, state=None, run=None):
        """The sum of the MLM and NSP losses (d2l's) on the pairs made from the windows ``x`` (``y`` unused)."""
        losses, _ = (run or self)(x, None, batch=self.pairs(x))
        return losses.sum(), None

    @torch.no_grad()
    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """The summed MLM loss of validation windows ``x`` under a fixed masking (seeded from the windows),
        and how many tokens it predicts."""
        b = self.pairs(x, torch.Generator().manual_seed(metrics.seed_of(x)))
        chosen = b.targets != IGNORE
        logits = self.mlm_logits(self.encode(b.tokens, b.segments)[chosen]).float()
        return float(F.cross_entropy(logits, b.targets[chosen], reduction="sum")), int(chosen.sum())

    def val_metrics(self, ids: torch.Tensor, seq_len: int, loss: float, autocast=contextlib.nullcontext) -> dict:
        """MLM loss (``loss``, the validation loss), pseudo-perplexity and NSP accuracy (metrics.py)."""
        return metrics.of(self, ids, seq_len, loss, autocast)

    # ------------------------------------------------------------ filling and attention
    def blank_logits(self, ids: torch.Tensor, blanks: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time) -> (batch, time, vocab): ``ids`` read as ``<cls> ids <sep>`` with ``<mask>`` at
        every open blank (``blanks``, boolean; None: none), the MLM logits at each token."""
        if blanks is not None:
            ids = torch.where(blanks, torch.full_like(ids, self.specials.mask), ids)
        logits = self.forward(ids)[0].clone()
        logits[..., self.specials.text_tokens:] = -math.inf   # a blank is a text token
        return logits

    @torch.no_grad()
    def attention_maps(self, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the attention weights (heads, time, time) over ``ids`` read as they are (one segment,
        no ``<cls>``/``<sep>`` added: a row per token of the text), no mask: each token attends to
        every other, before and after it; and the values (heads, time, head size)."""
        x = ids.reshape(1, -1).long()[:, -self.config.context:]
        h = self.tok(x) + self.pos(torch.arange(x.shape[1], device=x.device)) + self.seg.weight[0]
        out = []
        for block in self.blocks:
            q, k, v = block.attn.split(block.ln_1(h))
            weights = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1]), -1)
            out.append((weights[0], v[0]))
            h = block(h)
        return out


def _init(m):
    if isinstance(m, (nn.Linear, nn.Embedding)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    if isinstance(m, nn.Linear) and m.bias is not None:
        nn.init.zeros_(m.bias)
