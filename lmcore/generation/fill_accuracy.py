"""Fill accuracy: how often a model's first candidate (top-1), or one of its first five (top-5), is the
token that was blanked, on fixed blanks of a text (the validation split).

The blanks: every ``EVERY``-th token from position ``FIRST`` on (so each blank has ``LEFT`` tokens before
it and ``RIGHT`` after it in the text), spread evenly down to at most ``max_blanks`` (default
``MAX_BLANKS``, 0: all of them). They depend only on the number of tokens: every model with the same
tokens of the same corpus is judged on the same blanks. Each blank is judged alone, the true text
around it: the model reads the ``LEFT`` tokens before it and the ``RIGHT`` after it (fewer when its
context window is shorter), as :mod:`lmcore.generation.fill` fills one blank:

- a model that ``fills_both_ways`` (birnn, bert) reads both sides at once, every blank of a batch in one
  pass (``BATCH`` blanks a pass);
- a forward model scores its top 100 candidates at the blank with the probability of the text after it
  (fill.scored_probs): 100 short texts a blank, hence the cap on the blanks."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigError

if TYPE_CHECKING:  # torch is imported when a model is measured: the command line's help reads the constants
    import torch

EVERY = 7          # every 7th token is a blank
LEFT = 24          # tokens read before a blank (at most)
RIGHT = 8          # tokens read after it (at most)
FIRST = LEFT       # the first blank: the first position with LEFT tokens before it
MAX_BLANKS = 200   # blanks measured at each evaluation point (a forward model scores 100 texts a blank)
BATCH = 256        # blanks a both-ways model reads in one pass
SCORED_TOGETHER = 16  # blanks whose candidate texts a forward model scores together
TOP = 5            # top-5 accuracy
BOTH_WAYS, SCORING = "both ways", "scoring"  # how the model filled (FillAccuracy.method)


@dataclass
class FillAccuracy:
    top1: float        # fraction of the blanks whose first candidate is the true token
    top5: float        # fraction whose true token is among the first five
    blanks: int        # blanks measured
    method: str        # BOTH_WAYS or SCORING

    def to_dict(self) -> dict:
        return {"fill_top1": self.top1, "fill_top5": self.top5, "fill_blanks": self.blanks,
                "fill_method": self.method}


def blank_positions(n_tokens: int, max_blanks: int = MAX_BLANKS) -> list[int]:
    """The positions of the blanks in a text of ``n_tokens`` tokens (see the module's docstring)."""
    if isinstance(max_blanks, bool) or not isinstance(max_blanks, int) or max_blanks < 0:
        raise ConfigError(f"the number of blanks must be a whole number >= 0 (0: all; got {max_blanks!r})")
    every = range(FIRST, n_tokens - RIGHT, EVERY)
    m = len(every)
    if max_blanks and m > max_blanks:
        return [every[i * m // max_blanks] for i in range(max_blanks)]
    return list(every)


def reach(model) -> tuple[int, int]:
    """(tokens before, tokens after) a blank that ``model`` reads: LEFT and RIGHT, or fewer so that a blank
    with its two sides fits the model's context window."""
    window = model.context_window
    if window is None:
        return LEFT, RIGHT
    right = min(RIGHT, max(0, (window - 1) // 2))
    return min(LEFT, max(0, window - 1 - right)), right


def fill_accuracy(model, ids: torch.Tensor, max_blanks: int = MAX_BLANKS) -> FillAccuracy | None:
    """Top-1 and top-5 fill accuracy of ``model`` (a LanguageModel) on the fixed blanks of ``ids`` (1-D token
    ids, the validation split); None when the text is too short for one blank. ConfigError for a model
    that cannot fill."""
    import torch

    from .fill import model_device

    problem = model.family.cannot_fill(model.config)
    if problem:
        raise ConfigError(f"a {model.family.describe(model.config)} model cannot fill blanks: {problem}")
    positions = blank_positions(len(ids), max_blanks)
    if not positions:
        return None
    both = model.family.fills_both_ways
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            ranks = (_both_ways_hits if both else _scored_hits)(model, _Windows(ids, device), positions,
                                                                 *reach(model))
    finally:
        model.train(was_training)
    n = len(positions)
    return FillAccuracy(float((ranks < 1).sum()) / n, float((ranks < TOP).sum()) / n, n,
                        BOTH_WAYS if both else SCORING)


class _Windows:
    """The tokens around blanks, cut from the text where it lies (in its compact dtype) and sent to the
    model's device as int64: the whole text is never copied."""

    def __init__(self, ids: torch.Tensor, device):
        self.ids, self.device = ids, device

    def __call__(self, at: list[int], lo: int, hi: int) -> torch.Tensor:
        """(len(at), hi - lo): the tokens at p + lo .. p + hi - 1 for each p of ``at``."""
        import torch

        index = torch.tensor(at, device=self.ids.device)[:, None] + torch.arange(lo, hi, device=self.ids.device)
        return self.ids[index].to(self.device).long()


def _rank_of_truth(probs: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """(batch,) how many tokens come before the true one in each row of ``probs`` (batch, vocab): 0 = the
    first candidate. A tie is counted against the truth (ranked after the tokens it ties with)."""
    p = probs.gather(-1, truth[:, None])
    return (probs >= p).sum(-1) - 1


def _both_ways_hits(model, text: _Windows, positions: list[int], left: int, right: int) -> torch.Tensor:
    import torch

    from .fill import both_ways_probs

    out = []
    for i in range(0, len(positions), BATCH):
        at = positions[i: i + BATCH]
        probs = both_ways_probs(model, text(at, -left, right + 1), left)
        out.append(_rank_of_truth(probs, text(at, 0, 1)[:, 0]).cpu())
    return torch.cat(out)


def _scored_hits(model, text: _Windows, positions: list[int], left: int, right: int) -> torch.Tensor:
    import torch

    from .fill import scored_rows

    out = []
    for i in range(0, len(positions), SCORED_TOGETHER):
        at = positions[i: i + SCORED_TOGETHER]
        probs = scored_rows(model, text(at, -left, 0), text(at, 1, right + 1))
        out.append(_rank_of_truth(probs, text(at, 0, 1)[:, 0]).cpu())
    return torch.cat(out)
