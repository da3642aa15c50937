"""What every plain PyTorch reference loop of ``lmcore bench`` does alike: one optimisation step as our
trainer takes it (backward, clipping at 1, the optimizer's step, the loss read back every step), and the
median rate over the timed intervals."""
from __future__ import annotations

import statistics

from torch import nn


def plain_step(model: nn.Module, opt, loss) -> None:
    """Backward through ``loss``, the gradients clipped to norm 1, ``opt``'s step, the loss read back."""
    opt.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    loss.item()


def median_rate(times: list[float], tokens_per_step: int, interval: int) -> float:
    """Tokens/s: the median over the intervals between ``times`` (taken every ``interval`` steps)."""
    rates = [interval * tokens_per_step / (b - a) for a, b in zip(times, times[1:]) if b > a]
    return statistics.median(rates) if rates else float("nan")
