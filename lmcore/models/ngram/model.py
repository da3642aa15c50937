"""Count-based n-gram model with the chapters' Laplace smoothing, each order backing off to the one below:

    P_0(w)        = 1 / V
    P_k(w | ctx)  = (n(ctx, w) + eps * P_{k-1}(w | shorter ctx)) / (n(ctx) + eps)

where ctx is the k-1 previous tokens. "Training" is counting; counts are kept sparse (CSR rows per
observed context), so word-level models stay small."""
from __future__ import annotations

import torch

from ...errors import Cancelled
from ..base import LanguageModel
from ..config import ModelConfig

CHUNK = 1 << 24  # tokens counted at a time


def _check(stop) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled("stopped while counting the n-grams: nothing was saved")


def _pair_counts(ids: torch.Tensor, k: int, v: int, stop) -> tuple[torch.Tensor, torch.Tensor]:
    """Every distinct k-gram of ``ids`` as the code ctx·V + w (ctx: its first k-1 tokens in base V),
    sorted, with its count; chunks overlap by k-1 tokens so no k-gram is lost or counted twice."""
    codes, counts = torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    for s in range(0, len(ids) - k + 1, CHUNK):
        _check(stop)
        part = ids[s: s + CHUNK + k - 1].long().cpu()
        m = len(part) - k + 1
        code = torch.zeros(m, dtype=torch.long)
        for j in range(k):
            code = code * v + part[j: j + m]
        new, new_counts = torch.unique(code, return_counts=True)
        if not len(codes):
            codes, counts = new, new_counts
            continue
        codes, where = torch.unique(torch.cat([codes, new]), return_inverse=True)
        counts = torch.zeros(len(codes), dtype=torch.long).index_add_(0, where, torch.cat([counts, new_counts]))
    return codes, counts


def _sparse_rows(pairs: torch.Tensor, pair_counts: torch.Tensor, v: int) -> tuple[torch.Tensor, ...]:
    """CSR rows per observed context: (context codes, n(ctx), row pointers, next tokens, n(ctx, w))."""
    ctx_codes, ctx_pairs = torch.unique_consecutive(pairs // v, return_counts=True)
    row_ptr = torch.zeros(len(ctx_codes) + 1, dtype=torch.long)
    row_ptr[1:] = torch.cumsum(ctx_pairs, 0)
    ctx_counts = torch.zeros(len(ctx_codes)).index_add_(
        0, torch.repeat_interleave(torch.arange(len(ctx_codes)), ctx_pairs), pair_counts.float())
    return ctx_codes, ctx_counts, row_ptr, pairs % v, pair_counts.float()


class NGramModel(LanguageModel):
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
    def fit(self, ids: torch.Tensor, stop=None) -> None:
        """Count every order over ``ids`` (any integer type, a memory-mapped token file too), CHUNK tokens
        at a time: memory grows with the distinct n-grams, not with the text. ``stop`` (an Event) set
        between chunks raises Cancelled and leaves the model as it was."""
        v, n = self.config.vocab_size, self.config.order
        unigram = torch.zeros(v, dtype=torch.long)
        for s in range(0, len(ids), CHUNK):
            _check(stop)
            unigram += torch.bincount(ids[s: s + CHUNK].long().cpu(), minlength=v)
        tables = {k: _sparse_rows(*_pair_counts(ids, k, v, stop), v) for k in range(2, n + 1) if len(ids) >= k}
        self.unigram = unigram.float()
        for k, table in tables.items():
            for name, t in zip(("ctx_codes", "ctx_counts", "row_ptr", "cols", "vals"), table):
                setattr(self, f"{name}_{k}", t)

    def num_params(self) -> int:
        """The counts it has learned, one per token of the vocabulary: none before counting."""
        return int(self.unigram.numel()) if bool(self.unigram.any()) else 0

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
