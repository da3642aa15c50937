"""A model's training budget (time, tokens seen, parameters) and the warning that two models compared
were trained on budgets more than ``LIMIT`` times apart: a ranking of an LSTM trained 5 minutes above an
RNN trained 1.5 teaches the wrong lesson. The CLI (``lmcore models --corpus``, ``lmcore compare``) and
the app (ranking, compare screen, arena) all ask here."""
from __future__ import annotations

from dataclasses import dataclass

from ..safe_text import visible_line

LIMIT = 2.0  # budgets further apart than this (time or tokens seen) are said to differ


@dataclass(frozen=True)
class Budget:
    name: str
    seconds: float            # training time, all runs together
    tokens: int | None        # tokens seen in training (None: not known)
    params: int
    trained: bool = True      # False: a model that counts rather than trains (an n-gram): no budget to match

    def describe(self) -> str:
        """``5.0 min · 1.2M tokens seen · 3.4M params``."""
        seen = f"{human(self.tokens)} tokens seen" if self.tokens is not None else "tokens seen unknown"
        return f"{minutes(self.seconds)} · {seen} · {human(self.params)} params"

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 3), "tokens_seen": self.tokens, "params": self.params}


def model_budget(ck, name: str | None = None) -> Budget:
    """The budget of a checkpoint (``lmcore.Checkpoint``)."""
    return Budget(name or ck.name, float(ck.elapsed or 0.0), ck.tokens_seen, int(ck.params or 0),
                  ck.model_trainable)


def human(n: int | float | None) -> str:
    """``950``, ``12k``, ``1.2M``, ``3.4B``."""
    if n is None:
        return "-"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            v = n / size
            return f"{v:.1f}{unit}" if v < 10 else f"{v:.0f}{unit}"
    return f"{n:g}" if isinstance(n, float) else str(n)


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 6 else f"{seconds:.1f} s"


def budgets_differ(budgets: list[Budget], limit: float = LIMIT) -> str | None:
    """One line when the trained models' budgets differ by more than ``limit`` times in training time or
    in tokens seen (the largest against the smallest), else None::

        ⚠ budgets differ: lstm-5m trained 5.0 min, rnn-90s 1.5 min (3.3x) — compare at equal budgets
    """
    trained = [b for b in budgets if b.trained]
    parts = []
    timed = [b for b in trained if b.seconds > 0]
    if len(timed) >= 2:
        hi, lo = max(timed, key=lambda b: b.seconds), min(timed, key=lambda b: b.seconds)
        if hi.seconds > limit * lo.seconds:
            parts.append(f"{visible_line(hi.name)} trained {minutes(hi.seconds)}, {visible_line(lo.name)} "
                         f"{minutes(lo.seconds)} ({hi.seconds / lo.seconds:.1f}x)")
    seen = [b for b in trained if b.tokens]
    if len(seen) >= 2:
        hi, lo = max(seen, key=lambda b: b.tokens), min(seen, key=lambda b: b.tokens)
        if hi.tokens > limit * lo.tokens:
            parts.append(f"{visible_line(hi.name)} saw {human(hi.tokens)} tokens, {visible_line(lo.name)} "
                         f"{human(lo.tokens)} ({hi.tokens / lo.tokens:.1f}x)")
    if not parts:
        return None
    return "⚠ budgets differ: " + "; ".join(parts) + " — compare at equal budgets"
