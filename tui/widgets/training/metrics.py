"""The numbers of a training run, and the latest sample text."""
from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from lmcore import SAMPLE_TEMPERATURE, visible_line


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class MetricsView(Static):
    def __init__(self, **kw) -> None:
        super().__init__("", **kw)
        self.values: dict[str, str] = {}
        self.clear()

    def clear(self) -> None:
        self.values = {k: "-" for k in ("step", "loss", "perplexity", "tokens/s", "learning rate", "elapsed",
                                        "ETA", "device", "best val ppl", "state")}
        self.values["state"] = "idle"
        self._render_table()

    def set(self, **kw: str) -> None:
        for k, v in kw.items():
            self.values[k.replace("_", " ")] = v
        self._render_table()

    def _render_table(self) -> None:
        t = Table.grid(padding=(0, 2))
        for _ in range(4):
            t.add_column()
        items = list(self.values.items())
        for i in range(0, len(items), 2):
            row = []
            for k, v in items[i: i + 2]:
                row += [Text(k, style="dim"), Text(v, style="bold")]
            t.add_row(*row)
        self.update(t)


class SampleView(Static):
    """The evaluation's samples: at the default temperature (what generation gives), then greedy."""

    def show(self, step: int, text: str, greedy: str = "") -> None:
        out = Text(f"sample at step {step:,} (temperature {SAMPLE_TEMPERATURE:g}): ", style="dim")
        out.append(visible_line(text))
        if greedy:
            out.append("\ngreedy: ", style="dim")
            out.append(visible_line(greedy))
        self.update(out)

    def show_reply(self, step: int, text: str) -> None:
        """A pairs model's: a validation source and its greedy reply (``source → reply``)."""
        out = Text(f"a validation source and its reply at step {step:,} (greedy): ", style="dim")
        out.append(visible_line(text))
        self.update(out)


def pairs_scores(bleu: float | None, exact: float | None) -> dict[str, str]:
    """A pairs model's evaluation beside its perplexity: BLEU and exact match (none for other models)."""
    if bleu is None:
        return {}
    return {"val BLEU": f"{bleu:.3f}", "exact match": "-" if exact is None else f"{exact:.1%}"}


__all__ = ["MetricsView", "SampleView", "_clock", "pairs_scores"]
