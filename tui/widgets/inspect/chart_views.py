"""The inspect views drawn as charts: gradients through time (log y) and Zipf's law of the corpus
(log-log), with textual-plot as the training chart."""
from __future__ import annotations

import math
import threading

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Label, Select, Static
from textual_plot import HiResMode

import lmcore
from lmcore import ConfigError, visible_line

from ...colours import theme_style
from ..training.chart import AxisPlot, LogFormatter

COLOURS = ("error", "warning", "secondary", "success", "accent")
FLOOR = 1e-30  # a gradient that underflowed to 0 is drawn at the floor


def _plot(widget: Vertical) -> AxisPlot:
    plot = widget.query_one(AxisPlot)
    plot.clear()
    return plot


def _legend(widget: Vertical, items: list[tuple[str, str]]) -> None:
    out = Text()
    for colour, label in items:
        out.append("━ ", style=theme_style(widget.app, colour))
        out.append(f"{label}  ")
    widget.query_one(".chart-legend", Static).update(out)


class ChartView(Vertical):
    needs_text = False
    needs_model = True

    def compose_controls(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        yield from self.compose_controls()
        yield Static("", classes="chart-legend")
        yield AxisPlot()
        yield Static(Text(self.hint(), style="dim"), classes="view-summary")

    def hint(self) -> str:
        return ""


class GradientView(ChartView):
    """|d loss at step T / d h_(T-k)| against k: fresh RNN, GRU and LSTMs (forget-gate bias 0 and 1), and
    this model when it is recurrent."""

    title = "Gradients"
    explains = "gradients"  # lmcore.inspect.explain: its line and note
    length = 100

    def hint(self) -> str:
        return "ctrl+r computes: how much the loss at the last of 100 steps feels each earlier step"

    def compute(self, gen, text: str, stop: threading.Event, progress=None):
        from lmcore.inspect import gradient_flow, gradient_flows  # torch: loaded when first needed
        from lmcore.inspect.gradients import random_ids

        flows = gradient_flows(self.length)
        if gen is not None and gen.model.family.shows(gen.model.config, "gradients"):
            ids = random_ids(len(gen.vocab), self.length)
            flows.append(gradient_flow(gen.model, ids.to(gen.device), "this model"))
        return flows

    def show(self, flows, text: str) -> None:
        plot = _plot(self)
        lows = []
        for f, colour in zip(flows, COLOURS):
            ks = list(range(len(f.norms)))
            ys = [math.log10(max(float(v), FLOOR)) for v in reversed(f.norms)]  # k = 0: the last step
            lows.append(min(ys))
            plot.plot(ks, ys, line_style=theme_style(self.app, colour) or "white", hires_mode=HiResMode.BRAILLE)
        plot.set_y_formatter(LogFormatter())
        plot.set_ylabel("gradient norm |∂loss_T/∂h_(T−k)| (log scale)")
        plot.set_xlabel("steps back through time (k)")
        _legend(self, [(c, f.label) for f, c in zip(flows, COLOURS)])
        fresh = [f for f in flows if f.label != "this model"]  # the families' lessons: the plain RNN first
        k = min(50, self.length - 1)
        rnn, lstm = fresh[0].norms[-1 - k], fresh[-1].norms[-1 - k]  # ... the LSTM with forget bias 1 last
        ratio = f"{lstm / rnn:.1e}x" if rnn > 0 else "more than 1e30x"
        mine = "" if len(fresh) < len(flows) else " · this model has no recurrent state: fresh models only"
        self.query_one(".view-summary", Static).update(Text(
            f"{k} steps back the LSTM (forget bias 1) keeps {ratio} the plain RNN's gradient "
            f"(fresh models, random tokens){mine}"))


class CorpusView(ChartView):
    """Zipf's law of a corpus: log frequency against log rank of words (or characters), unigrams to
    trigrams, the fitted slopes, the coverage of the most frequent and the n-grams seen once."""

    title = "Corpus"
    explains = "zipf"  # lmcore.inspect.explain: its line and note

    needs_model = False

    def __init__(self, corpus: str | None = None, model_name: str | None = None, **kw) -> None:
        super().__init__(**kw)
        self.corpus = corpus  # a registry name or path; None: the model's own corpus
        self.model_name = model_name

    def compose_controls(self) -> ComposeResult:
        with Horizontal(classes="view-controls"):
            yield Label("tokens")
            yield Select([("words", "word"), ("characters", "char")], value="word", allow_blank=False,
                         compact=True, id="zipf-level")

    def hint(self) -> str:
        return "ctrl+r counts the corpus's n-grams (Zipf's law: a straight line on log-log axes)"

    def compute(self, gen, text: str, stop: threading.Event, progress=None):
        from lmcore.inspect import zipf_stats  # torch: loaded when first needed

        app = self.app
        source, encoding = self.corpus, None
        if source is None:
            ref = app.core.store.read(self.model_name).corpus
            source, encoding = ref.argument(), ref.encoding  # read as the model read it
        c = lmcore.load_corpus(source, app.core.store.home, encoding=encoding, fetch_missing=False)
        level = str(self.query_one("#zipf-level", Select).value)
        return c.name, zipf_stats(c.text, level, "d2l")  # as the chapter (and lmcore corpora zipf) counts

    def show(self, result, text: str) -> None:
        name, stats = result
        plot = _plot(self)
        labels = []
        for g, colour in zip(stats.ngrams, COLOURS[1:]):
            ranks = list(range(1, g.distinct + 1))
            step = max(1, len(ranks) // 2000)  # a few thousand points draw the same curve
            plot.plot([math.log10(r) for r in ranks[::step]], [math.log10(f) for f in g.freqs[::step]],
                      line_style=theme_style(self.app, colour) or "white", hires_mode=HiResMode.BRAILLE)
            slope = f"{g.slope:+.2f}" if math.isfinite(g.slope) else "n/a (too few)"
            labels.append((colour, f"{('uni', 'bi', 'tri')[g.n - 1]}grams slope {slope}"))
        plot.set_x_formatter(LogFormatter())
        plot.set_y_formatter(LogFormatter())
        plot.set_ylabel("frequency: times seen in the corpus (log scale)")
        plot.set_xlabel("rank: 1 = the most frequent (log scale)")
        _legend(self, labels)
        uni = stats.ngrams[0]
        self.query_one(".view-summary", Static).update(Text(
            f"{visible_line(name)} (lower-case letters, as the chapter): {stats.tokens:,} {stats.level} tokens, "
            f"{uni.distinct:,} distinct; top 10 cover "
            f"{uni.coverage[10]:.0%}, top 100 {uni.coverage[100]:.0%}; {uni.hapax:,} seen once"))

    @on(Select.Changed, "#zipf-level")
    def _level(self) -> None:
        self.post_message(RecomputeRequest(self))


class RecomputeRequest(Message):
    """A view's choice changed: compute it again."""

    def __init__(self, view) -> None:
        super().__init__()
        self.view = view


__all__ = ["ChartView", "ConfigError", "CorpusView", "GradientView", "RecomputeRequest"]
