"""BERT's validation numbers besides its MLM loss: the pseudo-perplexity (each token of the text masked
in turn and predicted from all the others, exp of the mean loss: Salazar et al. 2020), on the first
``PSEUDO_TOKENS`` validation tokens only (one forward pass per token), and the next-sentence accuracy on
pairs made from the first ``NSP_WINDOWS`` validation windows as training makes them (batch.py), with a
fixed seed so that every evaluation reads the same pairs."""
from __future__ import annotations

import contextlib
import math

import torch

PSEUDO_TOKENS = 256   # validation tokens the pseudo-perplexity reads (each masked in turn)
NSP_WINDOWS = 64      # validation windows the NSP accuracy reads
ROWS = 32             # rows of one forward pass


def seed_of(x: torch.Tensor) -> int:
    """A seed that depends only on the windows ``x``: the same validation text, the same masking."""
    return (int(x[:, :16].long().sum()) * 1_000_003 + x.numel()) % (1 << 62)


def windows(ids: torch.Tensor, length: int, limit: int) -> torch.Tensor:
    """Up to ``limit`` consecutive windows of ``length`` tokens of ``ids``: (n, length)."""
    n = min(limit, len(ids) // length) if length > 0 else 0
    return ids[: n * length].view(n, length).long()


@torch.no_grad()
def pseudo_perplexity(model, ids: torch.Tensor, length: int, tokens: int = PSEUDO_TOKENS,
                      autocast=contextlib.nullcontext) -> float | None:
    """exp(mean over the first ``tokens`` tokens of -log P(token | every other token of its window)), each
    window ``length`` tokens; None when the text is too short."""
    length = max(1, min(length, tokens))
    total, count = 0.0, 0
    for w in windows(ids, length, max(1, tokens // length)):
        n = len(w)
        rows = w[None].expand(n, n).clone()
        blanks = torch.eye(n, dtype=torch.bool, device=w.device)
        for i in range(0, n, ROWS):
            with autocast():
                logits = model.blank_logits(rows[i: i + ROWS], blanks[i: i + ROWS]).float()
            picked = torch.arange(len(logits), device=w.device)
            logp = torch.log_softmax(logits[picked, i + picked], -1)
            total -= float(logp.gather(-1, w[i: i + ROWS, None]).sum())
            count += len(logits)
    return math.exp(total / count) if count else None


@torch.no_grad()
def nsp_accuracy(model, ids: torch.Tensor, length: int, limit: int = NSP_WINDOWS,
                 autocast=contextlib.nullcontext) -> float | None:
    """The fraction of next-sentence pairs (half swapped) the model labels right; None without a window."""
    x = windows(ids, length, limit)
    if len(x) == 0:
        return None
    right = 0
    for i in range(0, len(x), ROWS):
        b = model.pairs(x[i: i + ROWS], torch.Generator().manual_seed(seed_of(x[i: i + ROWS])))
        with autocast():
            h = model.encode(b.tokens, b.segments)
        right += int((model.nsp_logits(h).argmax(-1) == b.is_next).sum())
    return right / len(x)


def of(model, ids: torch.Tensor, seq_len: int, loss: float, autocast=contextlib.nullcontext) -> dict:
    """{"mlm_loss", "pseudo_ppl", "nsp_accuracy"} on the validation ids (see the module's docstring)."""
    was_training = model.training
    model.eval()
    try:
        length = min(seq_len, model.config.context)
        return {"mlm_loss": loss, "pseudo_ppl": pseudo_perplexity(model, ids, length, autocast=autocast),
                "nsp_accuracy": nsp_accuracy(model, ids, length, autocast=autocast)}
    finally:
        model.train(was_training)
