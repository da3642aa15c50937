"""The perplexity chart: train and validation perplexity on one plot (textual-plot), a log y axis with
labelled ticks, x by step or by training time, a legend, the best validation point marked and the
unigram (and n-gram, when the store has one for the same text) baseline as reference lines.

Points arrive at any rate; the plot is redrawn at most every REDRAW seconds."""
from __future__ import annotations

import math

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label
from textual_hires_canvas import Canvas, TextAlign
from textual_plot import HiResMode, PlotWidget
from textual_plot.axis_formatter import AxisFormatter, NumericAxisFormatter

from lmcore.inspect import explain

from ...colours import theme_style

REDRAW = 0.3  # seconds between redraws, whatever the step rate


class LogFormatter(AxisFormatter):
    """Ticks of a log10 axis at 1, 2, 5 × 10^k, labelled with the perplexity itself."""

    def get_ticks(self, min_: float, max_: float, max_ticks: int = 8) -> list[float]:
        if not (math.isfinite(min_) and math.isfinite(max_)) or max_ <= min_:
            return []
        for mantissas in ((1, 2, 3, 5), (1, 2, 5), (1, 3), (1,)):
            ticks = [math.log10(m) + e for e in range(math.floor(min_) - 1, math.ceil(max_) + 1)
                     for m in mantissas if min_ <= math.log10(m) + e <= max_]
            if 2 <= len(ticks) <= max_ticks:
                return ticks
        return NumericAxisFormatter().get_ticks(min_, max_, max_ticks)

    def get_labels_for_ticks(self, ticks) -> list[str]:
        return [f"{10 ** t:.3g}" for t in ticks]


class AxisPlot(PlotWidget):
    """textual-plot's plot with both axis labels in view: the y label (with its unit) on the row above the
    plot, from its left edge (textual-plot centres it on the left margin, which cuts a label longer than
    the margin), the x label on the row under the tick labels. Not focusable: the keys are the screen's."""

    def __init__(self, **kw) -> None:
        super().__init__(allow_pan_and_zoom=False, **kw)
        self.y_title = ""

    def on_mount(self) -> None:
        self.can_focus = False
        self.margin_top, self.margin_bottom, self.margin_left = 1, 3, 7

    def set_ylabel(self, label: str) -> None:
        self.y_title = label
        super().set_ylabel(label)

    def _render_y_label(self) -> None:
        style = self.get_component_rich_style("plot--label")
        self.query_one("#margin-top", Canvas).write_text(0, 0, f"[{style}]{escape(self.y_title)}", TextAlign.LEFT)


def _log(p: float) -> float:
    return math.log10(max(p, 1.0))


class PerplexityChart(Vertical):
    """``train`` and ``val``: (step, elapsed seconds, perplexity) points; ``refs``: name -> perplexity."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.train: list[tuple[int, float, float]] = []
        self.val: list[tuple[int, float, float]] = []
        self.refs: dict[str, float] = {}
        self.by_time = False
        self._dirty = False

    def compose(self) -> ComposeResult:
        yield Label("perplexity: no data yet", id="chart-label", classes="chart-label")
        yield AxisPlot(id="plot")

    def on_mount(self) -> None:
        core = getattr(self.app, "core", None)  # the axis chosen last time (t)
        settings = core.settings if core is not None else None
        self.by_time = bool(settings.get("chart_by_time", False)) if settings is not None else False
        self.query_one(AxisPlot).set_ylabel(explain("training").line)  # the y axis and what the chart shows
        self.set_interval(REDRAW, self._redraw_if_dirty)
        self.redraw()

    def set_reference(self, name: str, ppl: float) -> None:
        if math.isfinite(ppl):
            self.refs[name] = ppl
            self._dirty = True

    # ------------------------------------------------------------ data
    def reset(self, history=(), curve=(), refs: dict[str, float] | None = None) -> None:
        """A saved model: its evaluation history, its training-loss curve ([step, loss, elapsed])."""
        self.val = [(h.step, h.elapsed, math.exp(min(h.val_loss, 50))) for h in history]
        self.train = [(int(c[0]), float(c[2]) if len(c) > 2 else 0.0, math.exp(min(c[1], 50))) for c in curve]
        if not self.train:  # an older checkpoint kept the train loss at evaluations only
            self.train = [(h.step, h.elapsed, math.exp(min(h.train_loss, 50))) for h in history
                          if h.train_loss is not None]
        if refs is not None:
            self.refs = refs
        self.redraw()

    def add_train(self, step: int, elapsed: float, ppl: float, redraw: bool = True) -> None:
        if math.isfinite(ppl):
            self.train.append((step, elapsed, ppl))
            self._dirty = True
            if redraw:
                self.redraw()

    def add_val(self, step: int, elapsed: float, ppl: float) -> None:
        if math.isfinite(ppl):
            self.val.append((step, elapsed, ppl))
            self._dirty = True

    def toggle_x(self) -> None:
        self.by_time = not self.by_time
        self.redraw()

    # ------------------------------------------------------------ drawing
    @property
    def drawn(self) -> bool:
        """Everything added so far is drawn (False until the next redraw catches up)."""
        return not self._dirty

    def _redraw_if_dirty(self) -> None:
        if self._dirty:
            self.redraw()

    def _colours(self) -> dict[str, str]:
        app = self.app  # theme colours: readable in light and dark themes
        return {"train": theme_style(app, "secondary", "cyan"), "val": theme_style(app, "warning", "yellow"),
                "best": theme_style(app, "success", "green"), "unigram": theme_style(app, "error", "red"),
                "baseline": theme_style(app, "accent", "magenta")}

    def redraw(self) -> None:
        self._dirty = False
        if not self.is_mounted:
            return
        plot = self.query_one(PlotWidget)
        plot.clear()
        x = (lambda p: p[1] / 60) if self.by_time else (lambda p: p[0])
        c = self._colours()
        # reference lines first: the curves are drawn over them
        xs = [x(p) for p in self.train + self.val]
        if xs:
            lo, hi = min(xs), max(xs)
            hi = hi if hi > lo else lo + 1
            for name, ppl in self.refs.items():
                plot.plot([lo, hi], [_log(ppl)] * 2, line_style=c["unigram" if name == "unigram" else "baseline"],
                          hires_mode=HiResMode.BRAILLE)
        if self.train:
            plot.plot([x(p) for p in self.train], [_log(p[2]) for p in self.train], line_style=c["train"],
                      hires_mode=HiResMode.BRAILLE)
        if self.val:
            plot.plot([x(p) for p in self.val], [_log(p[2]) for p in self.val], line_style=c["val"],
                      hires_mode=HiResMode.BRAILLE)
            best = min(self.val, key=lambda p: p[2])
            plot.scatter([x(best)], [_log(best[2])], marker="◆", marker_style=c["best"])
        if xs:
            ys = [_log(p[2]) for p in self.train + self.val] + [_log(v) for v in self.refs.values()]
            pad = max(0.02, (max(ys) - min(ys)) * 0.05)
            plot.set_ylimits(min(ys) - pad, max(ys) + pad)
            plot.set_xlimits(lo, hi)
        plot.set_y_formatter(LogFormatter())
        plot.set_x_formatter(NumericAxisFormatter())
        plot.set_xlabel("training time (minutes)" if self.by_time else "step (optimizer updates)")
        self.query_one("#chart-label", Label).update(self._legend())

    def _legend(self) -> Text:
        """The legend, one line above the plot (inside the plot it would hide the latest points)."""
        c = self._colours()
        out = Text()

        def item(colour: str, mark: str, text: str) -> None:
            if out:
                out.append("  ")
            out.append(mark, style=colour)
            out.append(f" {text}")

        if not (self.train or self.val):
            return Text("perplexity (log scale): no data yet", style="dim")
        if self.train:
            item(c["train"], "━", f"train {self.train[-1][2]:.3g}")
        if self.val:
            best = min(self.val, key=lambda p: p[2])
            item(c["val"], "━", f"val {self.val[-1][2]:.3g}")
            item(c["best"], "◆", f"best {best[2]:.3g} @{best[0]:,}")
        for name, ppl in self.refs.items():
            item(c["unigram" if name == "unigram" else "baseline"], "━", f"{name} {ppl:.3g}")
        out.append(f"  t: by {'step' if self.by_time else 'time'}", style="dim")
        return out
