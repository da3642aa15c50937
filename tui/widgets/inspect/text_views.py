"""The inspect views that read a text: surprisal (every token coloured by its rank among the model's
choices, as GLTR does), neurons (the text coloured by one unit of a recurrent model, and the units
that track properties of the text) and attention (a head's query × key heatmap, half blocks).

Each view computes in ``compute`` (in a worker thread, given the model's generator) and draws in
``show``; the pane around them runs the worker."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label, Select, Static

import lmcore
from lmcore import ConfigError, visible

from ...colours import theme_style
from ..generation import Continuation, Transcript

BUCKET_COLOURS = ("success", "warning", "error", "accent")  # top 1, top 10, top 100, rest


@dataclass
class ShownToken:
    """A token as a view shows it: its text, a probability (for the cursor line) and what to say of it."""

    text: str
    prob: float = 1.0
    style: str = ""
    about: str = ""
    alternatives: tuple = ()


def _show_tokens(view: Vertical, tokens: list[ShownToken], cursor: int | None = None) -> Continuation:
    transcript = view.query_one(Transcript)
    transcript.remove_children()
    c = Continuation(tokens, colour=True, styler=lambda t: t.style)
    if cursor is not None:
        c.cursor = cursor
    transcript.mount(c)
    transcript.scroll_home(animate=False)
    return c


class TextView(Vertical):
    """A view of a text: a summary line, the coloured text, and a line about the token under the cursor."""

    title = ""
    needs_text = True
    needs_model = True

    def compose_head(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        yield from self.compose_head()
        yield Static(Text(self.hint(), style="dim"), classes="view-summary")
        yield Transcript()
        yield Static("", classes="view-token summary-line")

    def hint(self) -> str:
        return "ctrl+r shows the text below; ctrl+t takes a slice of the validation text"

    def summary(self, text: Text | str) -> None:
        self.query_one(".view-summary", Static).update(text)

    @on(Continuation.CursorMoved)
    def _cursor(self, message: Continuation.CursorMoved) -> None:
        message.stop()
        self.query_one(".view-token", Static).update(Text(message.token.about))


# ---------------------------------------------------------------------------- surprisal
class SurprisalView(TextView):
    title = "Surprisal"
    explains = "surprisal"  # lmcore.inspect.explain: its line and note

    def compute(self, gen, text: str, stop: threading.Event, progress=None):
        return lmcore.score_text(gen, text, stop, top=5, progress=progress)

    def show(self, score, text: str) -> None:
        counts = [0] * 4
        tokens = [ShownToken(visible(score.lead), about="the first token: nothing predicts it")]
        for t in score.tokens:
            b = lmcore.rank_bucket(t.rank)
            counts[b] += 1
            alts = "  ".join(f"{visible(a)!r} {p:.2f}" for a, p in t.alternatives)
            tokens.append(ShownToken(visible(t.text), t.prob, BUCKET_COLOURS[b],
                                     f"{visible(t.text)!r} p={t.prob:.3f} rank {t.rank} · {alts}"))
        _show_tokens(self, tokens, cursor=1)
        n = len(score.tokens)
        line = Text(f"ppl {score.ppl:.2f} · {score.bits_per_char:.3f} bits/char · ")
        for name, k, colour in zip(lmcore.RANK_BUCKETS, counts, BUCKET_COLOURS):
            line.append("■", style=theme_style(self.app, colour))
            line.append(f" {name} {k / n:.0%} ")
        self.summary(line)
        self.query_one(".view-token", Static).update(Text("shift+tab, then ←/→: a token's probability, rank "
                                                          "and the model's top 5", style="dim"))


# ---------------------------------------------------------------------------- neurons
class NeuronView(TextView):
    title = "Neurons"
    explains = "neurons"  # lmcore.inspect.explain: its line and note
    reads_only = True   # the model's units: a birnn, which does not generate, shows both directions

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.trace = None
        self.ranked: dict = {}
        self._redraw = None  # a pending redraw while the unit is being typed

    def compose_head(self) -> ComposeResult:
        with Horizontal(classes="view-controls"):
            yield Label("layer")
            yield Select([("0", 0)], value=0, allow_blank=False, compact=True, id="neuron-layer")
            yield Label("value")
            yield Select([("c", "c")], value="c", allow_blank=False, compact=True, id="neuron-value")
            yield Label("unit")
            yield Input("0", compact=True, id="neuron-unit", type="integer")
        yield Static("", classes="neuron-ranking")

    def hint(self) -> str:
        return "a recurrent model (both directions of a birnn): ctrl+r shows its units over the text below"

    def compute(self, gen, text: str, stop: threading.Event, progress=None):
        from lmcore.inspect import find_units, trace_text  # torch: loaded when first needed

        trace = trace_text(gen, text, stop_event=stop, progress=progress)
        return trace, find_units(trace, top=3, stop_event=stop)

    def show(self, result, text: str) -> None:
        self.trace, self.ranked = result
        t = self.trace
        layer = self.query_one("#neuron-layer", Select)
        value = self.query_one("#neuron-value", Select)
        kept = layer.value, value.value
        with self.prevent(Select.Changed, Input.Changed):
            layer.set_options([(t.layer_name(i), i) for i in range(len(t.layers))])
            value.set_options([(v, v) for v in t.values])
            if kept[0] in range(len(t.layers)) and kept[1] in t.values:
                layer.value, value.value = kept
            layer.mutate_reactive(Select.value)  # the same value under a new name ("forward 0"): shown
        # the first time: the unit that tracks a property of the text best; later, the unit chosen
        if not getattr(self, "chosen", False):
            best = max((e for name, es in self.ranked.items() if name != "saturated gates" for e in es[:1]),
                       key=lambda e: e["score"], default={"layer": 0, "value": t.values[0], "unit": 0})
            with self.prevent(Select.Changed, Input.Changed):
                layer.value, value.value = best["layer"], best["value"]
                self.query_one("#neuron-unit", Input).value = str(best["unit"])
        lines = Text()
        for name, entries in self.ranked.items():
            if not entries:
                continue
            e = entries[0]
            score = f"r={e['r']:+.2f}" if "r" in e else f"{e['score']:.0%} saturated"
            lines.append(f"{name}: ", style="bold")
            where = t.layer_name(e["layer"]) + " " if t.layer_names else f"L{e['layer']} "
            lines.append(f"{where}{e['value']}{e['unit']} {score}   ")
        self.query_one(".neuron-ranking", Static).update(lines)
        self.draw()

    @on(Select.Changed)
    @on(Input.Changed, "#neuron-unit")
    def _chosen(self) -> None:
        """A unit picked by hand: kept for the next text; drawn once the typing pauses."""
        if self.trace is None:
            return
        self.chosen = True
        if self._redraw is not None:
            self._redraw.stop()
        self._redraw = self.set_timer(0.3, self.draw)

    def draw(self) -> None:
        if self.trace is None:
            return
        raw = self.query_one("#neuron-unit", Input).value.strip()
        try:
            layer = self.query_one("#neuron-layer", Select).value
            value = self.query_one("#neuron-value", Select).value
            if not raw.isdigit():
                raise ConfigError(f"unit must be a whole number from 0 to {self.trace.units - 1}")
            values = self.trace.unit(int(layer), str(value), int(raw))
            unit = int(raw)
        except ConfigError as exc:
            self.summary(Text(f"⚠ {exc}"))
            return
        gate = value not in ("c", "h")
        scale = 1.0 if gate else max(1e-9, float(np.abs(values).max()))
        tokens = []
        for tok, v in zip(self.trace.tokens, values):
            x = (float(v) - 0.5) * 2 if gate else float(v) / scale  # gates: 0..1 around 0.5
            r, b = int(200 * max(x, 0)), int(200 * max(-x, 0))
            style = f"on rgb({40 + r},40,{40 + b})" if (r or b) else ""
            tokens.append(ShownToken(visible(tok), style=style, about=f"{visible(tok)!r}: {value}{unit} = {float(v):+.3f}"))
        _show_tokens(self, tokens, cursor=0)
        centre = "0.5" if gate else "0"
        cut = (f" · the first {len(self.trace.tokens):,} of {self.trace.text_tokens:,} tokens"
               if self.trace.text_tokens > len(self.trace.tokens) else "")
        where = self.trace.layer_name(int(layer)) if self.trace.layer_names else f"layer {layer}"
        self.summary(Text(f"{where} {value}{unit}: red above {centre}, blue below "
                          f"(min {values.min():+.2f}, max {values.max():+.2f}) · pick another unit above{cut}"))


# ---------------------------------------------------------------------------- attention
class AttentionHeatmap(Static):
    """Queries (rows, two per line with half blocks) × keys (columns) of the last tokens."""

    def render_map(self, tokens: list[str], weights: np.ndarray, width: int, height: int,
                   rows: list[str] | None = None) -> None:
        """``rows``: the rows' tokens when they are not ``tokens`` (an alignment: target × source)."""
        keys = max(2, min(len(tokens), width - 14))   # the last tokens as keys (columns) …
        queries = max(2, min(keys if rows is None else len(rows), 2 * max(1, height - 1)))  # … rows: the last
        w = weights[-queries:, -keys:]
        queries, keys = w.shape  # fewer when the text is shorter
        theme = self.app.theme_variables
        out = Text(" " * 6 + "".join(_label(t) for t in tokens[-keys:]) + ("  keys" if rows is None else "  source"),
                   style="dim")
        out.append("\n")
        q = (tokens if rows is None else rows)[-queries:]
        for i in range(0, queries, 2):  # the two queries of a line, then their rows of weights
            out.append(f"  {_label(q[i])}{_label(q[i + 1]) if i + 1 < queries else ' '}  ", style="dim")
            for j in range(keys):
                top = w[i, j]
                bottom = w[i + 1, j] if i + 1 < queries else 0.0
                out.append("▀", style=f"{_shade(top, theme)} on {_shade(bottom, theme)}")
            out.append("\n")
        out.rstrip()
        self.update(out)


def _label(tok: str) -> str:
    """One cell for a token: its first character, a line break as ↵, a space as ·."""
    ch = tok.strip(" ")[:1] or " "
    return {"\n": "↵", " ": "·"}.get(ch, ch if ch.isprintable() else "?")


def _shade(w: float, theme: dict) -> str:
    """Light for no attention, dark for all of it (square root: small weights stay visible)."""
    v = math.sqrt(max(0.0, min(1.0, float(w))))
    lo, hi = (230, 230, 230), (20, 60, 200)
    r, g, b = (int(a + (c - a) * v) for a, c in zip(lo, hi))
    return f"rgb({r},{g},{b})"


class AttentionView(Vertical):
    title = "Attention"
    explains = "attention"  # lmcore.inspect.explain: its line and note
    needs_text = True
    needs_model = True
    reads_only = True   # the model, vocabulary and tokenizer: a model that does not generate (bert) shows it too

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.view = None

    def compose(self) -> ComposeResult:
        with Horizontal(classes="view-controls"):
            yield Label("layer")
            yield Select([("0", 0)], value=0, allow_blank=False, compact=True, id="attention-layer")
            yield Label("head")
            yield Select([("0", 0)], value=0, allow_blank=False, compact=True, id="attention-head")
        yield Static(Text("a transformer: ctrl+r shows where each head looks over the last tokens of the "
                          "text below", style="dim"), classes="view-summary")
        yield AttentionHeatmap(classes="attention-map")

    def compute(self, gen, text: str, stop: threading.Event, progress=None):
        from lmcore.inspect import alignment_view, attention_view  # torch: loaded when first needed

        if gen.model.family.reads_pairs:  # an encoder-decoder: the last line is a source (<TAB> a target)
            lines = [line for line in text.splitlines() if line.strip()]
            source, tab, target = (lines[-1] if lines else "").partition("\t")
            return alignment_view(gen, source, target if tab else None)
        return attention_view(gen, text)

    def show(self, view, text: str) -> None:
        self.view = view
        pairs = hasattr(view, "kinds")  # an AlignmentView: its cross-attention
        layers, heads = (view.layers("cross"), view.heads("cross")) if pairs else (view.layers, view.heads)
        with self.prevent(Select.Changed):
            self.query_one("#attention-layer", Select).set_options([(str(i), i) for i in range(layers)])
            self.query_one("#attention-head", Select).set_options([(str(i), i) for i in range(heads)])
        self.patterns = None if pairs else view.head_patterns()
        self.draw()

    def on_resize(self) -> None:
        self.draw()

    @on(Select.Changed)
    def draw(self) -> None:
        if self.view is None:
            return
        layer = int(self.query_one("#attention-layer", Select).value)
        head = int(self.query_one("#attention-head", Select).value)
        heatmap = self.query_one(AttentionHeatmap)
        if self.patterns is None:  # an alignment: rows the reply's tokens, columns the source's
            rows, cols = self.view.labels("cross")
            heatmap.render_map(cols, self.view.matrix("cross", layer, head), self.size.width,
                               max(4, self.size.height - 2), rows=rows)
            self.query_one(".view-summary", Static).update(Text(
                f"layer {layer} head {head} · reply: {self.view.reply}" + ("" if self.view.ended else " (cut)")
                + f" · rows: its {len(rows)} tokens, columns: the source's {len(cols)}"))
            return
        heatmap.render_map(self.view.tokens, self.view.matrix(layer, head), self.size.width,
                           max(4, self.size.height - 2))
        top = self.patterns[layer][head][:2]
        self.query_one(".view-summary", Static).update(Text(
            f"layer {layer} head {head} mostly looks at " + ", ".join(f"{p['pattern']} ({p['mass']:.0%})" for p in top)
            + f" · rows: queries, {len(self.view.tokens)} tokens"))


TEXT_VIEWS = (SurprisalView, NeuronView, AttentionView)
__all__ = ["AttentionView", "NeuronView", "SurprisalView", "TEXT_VIEWS"]
