"""Count-based n-gram model with the chapters' Laplace smoothing, each order backing off to the one below:

    P_0(w)        = 1 / V
    P_k(w | ctx)  = (n(ctx, w) + eps * P_{k-1}(w | shorter ctx)) / (n(ctx) + eps)

where ctx is the k-1 previous tokens. "Training" is counting; counts are kept sparse (CSR rows per
observed context), so word-level models stay small."""
from __future__ import annotations

import torch

from .base import LanguageModel
from .config import ModelConfig


class NGramModel(LanguageModel):
    trainable = False
    fixed_shapes = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        v, n = config.vocab_size, config.order
        self.register_buffer("unigram", torch.zeros(v))
        for k in range(2, n + 1):
            self.register_buffer(f"ctx_codes_{k}", torch.zeros(0, dtype=torch.long))
            self.register_buffer(f"ctx_counts_{k}", torch.zeros(0))
            self.register_buffer(f"row_ptr_{k}", torch.zeros(1, dtype=torch.long))
            self.register_buffer(f"cols_{k}", torch.zeros(0, dtype=torch.long))
            self.register_buffer(f"vals_{k}", torch.zeros(0))
        self._dummy = torch.nn.Parameter(torch.zeros(0), requires_grad=False)  # lets .to()/device work alike

    # ------------------------------------------------------------ counting
    @torch.no_grad()
    def fit(self, ids: torch.Tensor) -> None:
        ids = ids.long().cpu()
        v, n = self.config.vocab_size, self.config.order
        self.unigram = torch.bincount(ids, minlength=v).float()
        for k in range(2, n + 1):
            m = len(ids) - k + 1
            if m <= 0:
                continue
            ctx = torch.zeros(m, dtype=torch.long)
            for j in range(k - 1):
                ctx = ctx * v + ids[j: j + m]
            pair = ctx * v + ids[k - 1: k - 1 + m]
            pairs, pair_counts = torch.unique(pair, return_counts=True)  # sorted by (ctx, w)
            pctx = pairs // v
            ctx_codes, ctx_pairs = torch.unique_consecutive(pctx, return_counts=True)
            row_ptr = torch.zeros(len(ctx_codes) + 1, dtype=torch.long)
            row_ptr[1:] = torch.cumsum(ctx_pairs, 0)
            ctx_counts = torch.zeros(len(ctx_codes)).index_add_(
                0, torch.repeat_interleave(torch.arange(len(ctx_codes)), ctx_pairs), pair_counts.float())
            setattr(self, f"ctx_codes_{k}", ctx_codes)
            setattr(self, f"ctx_counts_{k}", ctx_counts)
            setattr(self, f"row_ptr_{k}", row_ptr)
            setattr(self, f"cols_{k}", pairs % v)
            setattr(self, f"vals_{k}", pair_counts.float())

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        for k, t in state.items():
            if k == "_dummy":
                continue
            if not hasattr(self, k):
                raise KeyError(f"unexpected tensor {k}")
            if t.dim() != 1 or (k == "unigram" and t.shape[0] != self.config.vocab_size):
                raise RuntimeError(f"tensor {k} has shape {tuple(t.shape)}")
            setattr(self, k, t.clone())

    # ------------------------------------------------------------ probabilities
    def _rows(self, k: int, ctx: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense counts n(ctx, .) (N, V) and n(ctx) (N,) for N context codes of order k."""
        v = self.config.vocab_size
        codes = getattr(self, f"ctx_codes_{k}")
        dev = ctx.device
        dense = torch.zeros(len(ctx), v, device=dev)
        total = torch.zeros(len(ctx), device=dev)
        if len(codes) == 0:
            return dense, total
        pos = torch.searchsorted(codes, ctx).clamp(max=len(codes) - 1)
        found = valid & (codes[pos] == ctx)
        q = torch.nonzero(found).squeeze(1)
        if len(q) == 0:
            return dense, total
        rows = pos[q]
        total[q] = getattr(self, f"ctx_counts_{k}")[rows]
        ptr = getattr(self, f"row_ptr_{k}")
        starts, lens = ptr[rows], ptr[rows + 1] - ptr[rows]
        which = torch.repeat_interleave(torch.arange(len(q), device=dev), lens)
        offs = torch.arange(int(lens.sum()), device=dev) - torch.repeat_interleave(torch.cumsum(lens, 0) - lens, lens)
        entries = starts[which] + offs
        dense[q[which], getattr(self, f"cols_{k}")[entries]] = getattr(self, f"vals_{k}")[entries]
        return dense, total

    def _probs(self, hist: torch.Tensor) -> torch.Tensor:
        """hist: (N, order-1) previous tokens, -1 where unknown (start of text). Returns (N, V)."""
        v, n, eps = self.config.vocab_size, self.config.order, self.config.epsilon
        N = hist.shape[0]
        p = torch.full((N, v), 1.0 / v, device=hist.device)
        p = (self.unigram[None, :] + eps * p) / (self.unigram.sum() + eps)
        for k in range(2, n + 1):
            ctx_toks = hist[:, n - k:]  # the k-1 most recent tokens
            valid = (ctx_toks >= 0).all(dim=1)
            code = torch.zeros(N, dtype=torch.long, device=hist.device)
            for j in range(k - 1):
                code = code * v + ctx_toks[:, j].clamp(min=0)
            counts, total = self._rows(k, code, valid)
            p = (counts + eps * p) / (total[:, None] + eps)
        return p

    def forward(self, x: torch.Tensor, state=None):
        b, t = x.shape
        n = self.config.order
        if state is None:
            state = self.init_state(b, x.device)
        seq = torch.cat([state.to(x.device), x.long()], dim=1)  # (B, n-1+T)
        if n > 1:
            hist = seq.unfold(1, n - 1, 1)[:, 1: t + 1]  # (B, T, n-1): the n-1 tokens up to each position
        else:
            hist = torch.zeros(b, t, 0, dtype=torch.long, device=x.device)
        logits = torch.log(self._probs(hist.reshape(b * t, n - 1))).view(b, t, -1)
        return logits, seq[:, seq.shape[1] - (n - 1):]

    def init_state(self, batch_size: int, device="cpu"):
        return torch.full((batch_size, self.config.order - 1), -1, dtype=torch.long, device=device)

    def detach_state(self, state):
        return state
