"""A model's training curves as a picture people can keep: perplexity by step on a log scale (train and
validation, the best validation point marked, the baselines as dashed lines), then one panel per other
metric its evaluation history holds (BLEU, fill accuracy: see ``METRICS``).

``figure``/``checkpoint_figure`` describe the picture; ``save`` writes it atomically as SVG (written here,
no plotting library) or PNG (drawn by matplotlib, the ``plot`` extra). Every text that comes from a model
or a corpus is made visible (control characters escaped) and, in SVG, escaped for XML."""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

from ..errors import LmError
from ..store.files import write_bytes
from ..safe_text import visible_line

FORMATS = (".svg", ".png")
# Other metrics an evaluation point may hold: attribute -> (legend, axis label with its unit).
# A model whose history has any of them gets a panel for each; a new metric is one line here.
METRICS: dict[str, tuple[str, str]] = {
    "bleu": ("BLEU", "BLEU (0-100)"),
    "fill_accuracy": ("fill accuracy", "fill accuracy (% of blanks)"),
}
COLOURS = {"train": "#1f77b4", "validation": "#d95f02", "best": "#1b9e77", "metric": "#e7298a"}
REF_COLOURS = ("#7570b3", "#a6761d", "#666666")  # the baselines, dashed, in turn


@dataclass
class Series:
    label: str
    points: list[tuple[float, float]]  # (x, y), finite
    colour: str
    markers: bool = False              # a dot at each point (evaluations are few)


@dataclass
class Panel:
    ylabel: str
    series: list[Series]
    log: bool = False
    best: tuple[float, float] | None = None   # the point marked, with its label
    best_label: str = ""
    refs: dict[str, float] = field(default_factory=dict)   # label -> y, drawn as dashed lines


@dataclass
class Figure:
    title: str
    subtitle: str
    xlabel: str
    panels: list[Panel]


Point = Sequence[float]  # (step, elapsed seconds, value)


def figure(name: str, corpus: str, train: Sequence[Point], val: Sequence[Point], refs: dict[str, float] | None = None,
           metrics: dict[str, Sequence[Point]] | None = None, by_time: bool = False) -> Figure:
    """The picture of one model: ``train``/``val`` are (step, elapsed seconds, perplexity) points,
    ``refs`` baseline perplexities, ``metrics`` (legend -> points) the other panels; x is the step, or
    the training time in minutes with ``by_time``."""
    def xy(points: Sequence[Point], positive: bool) -> list[tuple[float, float]]:
        out = []
        for p in points:
            x, y = (p[1] / 60 if by_time else p[0]), p[2]
            if math.isfinite(x) and math.isfinite(y) and (y > 0 or not positive):
                out.append((float(x), float(y)))
        return out

    tr, va = xy(train, True), xy(val, True)
    if not tr and not va:
        raise LmError(f"model '{visible_line(name)}' has no evaluations yet: train it first, then plot it")
    ppl = Panel("perplexity per token (log scale)", [], log=True,
                refs={k: v for k, v in (refs or {}).items() if math.isfinite(v) and v > 0})
    if tr:
        ppl.series.append(Series("train", tr, COLOURS["train"]))
    if va:
        ppl.series.append(Series("validation", va, COLOURS["validation"], markers=True))
        ppl.best = min(va, key=lambda p: p[1])
        at = f"{ppl.best[0]:.3g} min" if by_time else f"step {ppl.best[0]:,.0f}"
        ppl.best_label = f"best validation {ppl.best[1]:.4g} at {at}"
    panels = [ppl]
    for label, points in (metrics or {}).items():
        if pts := xy(points, False):
            axis = next((a for legend, a in METRICS.values() if legend == label), label)
            panels.append(Panel(axis, [Series(label, pts, COLOURS["metric"], markers=True)]))
    subtitle = ppl.best_label or f"{len(tr):,} training points"
    return Figure(f"{name}: trained on {corpus}", subtitle,
                  "training time (minutes)" if by_time else "step (optimizer updates)", panels)


def checkpoint_figure(ck, refs: dict[str, float] | None = None) -> Figure:
    """The picture of a saved model: its training-loss curve (or the train loss at its evaluations, for
    an older checkpoint), its evaluations, the unigram baseline unless ``refs`` says otherwise, and a
    panel for each of ``METRICS`` its history holds."""
    def ppl(loss: float) -> float:
        return math.exp(min(loss, 700))

    train = [(c[0], c[2] if len(c) > 2 else 0.0, ppl(c[1])) for c in ck.curve]
    if not train:
        train = [(h.step, h.elapsed, ppl(h.train_loss)) for h in ck.history if h.train_loss is not None]
    val = [(h.step, h.elapsed, ppl(h.val_loss)) for h in ck.history]
    if refs is None:
        refs = {"unigram": ppl(ck.unigram_val_loss)} if ck.unigram_val_loss is not None else {}
    return figure(ck.name, ck.corpus.name, train, val, refs, history_metrics(ck.history))


def history_metrics(history) -> dict[str, list[Point]]:
    """Each of ``METRICS`` that evaluation points hold: legend -> (step, elapsed seconds, value) points."""
    return {legend: [(h.step, h.elapsed, getattr(h, attr)) for h in history if getattr(h, attr, None) is not None]
            for attr, (legend, _axis) in METRICS.items()}


# ---------------------------------------------------------------------------- writing
def check_target(path) -> Path:
    """``path`` if lmplay can write a picture there (.svg always, .png with matplotlib); else LmError."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise LmError(f"cannot plot to '{visible_line(str(path))}': the file name must end in .svg or .png")
    if suffix == ".png":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise LmError("a .png plot needs matplotlib: pip install 'lmplay[plot]', or plot to a .svg file "
                          "(no extra needed)") from None
    return path


def save(fig: Figure, path) -> Path:
    """Write ``fig`` to ``path`` (.svg or .png), atomically: the file is complete or not there."""
    path = check_target(path)
    data = svg(fig).encode("utf-8") if path.suffix.lower() == ".svg" else png(fig)
    try:
        write_bytes(path, data)
    except OSError as exc:
        raise LmError(f"cannot write the plot to '{visible_line(str(path))}': {exc.strerror or exc}") from None
    return path


# ---------------------------------------------------------------------------- axes
def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """Round ticks (1, 2, 5 x 10^k apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    return [round(i * step, 12) for i in range(first, math.floor(hi / step + 1e-9) + 1)]


def log_ticks(lo: float, hi: float, max_ticks: int = 8) -> list[float]:
    """Ticks of a log axis over [lo, hi] (both > 0) at 1, 2, 3, 5 x 10^k, as many as fit in ``max_ticks``."""
    if not (0 < lo < hi and math.isfinite(hi)):
        return [lo] if 0 < lo < math.inf else []
    for mantissas in ((1, 2, 3, 5), (1, 2, 5), (1, 3), (1,)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in mantissas if lo <= m * 10.0 ** e <= hi]
        if 2 <= len(ticks) <= max_ticks:
            return ticks
    return [10 ** t for t in nice_ticks(math.log10(lo), math.log10(hi), 5)]


def _label(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


# ---------------------------------------------------------------------------- SVG
_NOT_XML = re.compile("[\ufffe\uffff]")


def text(s: str) -> str:
    """``s`` as XML character data: control characters shown as escapes, ``& < > "`` escaped."""
    return escape(_NOT_XML.sub("?", visible_line(str(s))), {'"': "&quot;"})


WIDTH, LEFT, RIGHT, TOP, MAIN_H, METRIC_H, GAP, BOTTOM = 760, 80, 24, 84, 300, 150, 46, 56


def svg(fig: Figure) -> str:
    """The figure as a standalone SVG document."""
    heights = [MAIN_H if i == 0 else METRIC_H for i in range(len(fig.panels))]
    height = TOP + sum(heights) + GAP * (len(heights) - 1) + BOTTOM
    xs = [x for p in fig.panels for s in p.series for x, _ in s.points]
    x0, x1 = min(xs), max(xs)
    if x1 <= x0:
        x0, x1 = x0 - 1, x1 + 1
    pw = WIDTH - LEFT - RIGHT

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * pw

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
           f"<title>{text(fig.title)}</title>",
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text class="title" x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="16" '
           f'font-weight="bold">{text(fig.title)}</text>',
           f'<text class="subtitle" x="{WIDTH / 2}" y="42" text-anchor="middle" fill="#444">{text(fig.subtitle)}</text>']
    legend = [(s.label, s.colour, False) for p in fig.panels[:1] for s in p.series]
    legend += [(name, REF_COLOURS[i % len(REF_COLOURS)], True) for i, name in enumerate(fig.panels[0].refs)]
    lx = LEFT
    for label, colour, dashed in legend:
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(f'<line x1="{lx}" y1="62" x2="{lx + 22}" y2="62" stroke="{colour}" stroke-width="2"{dash}/>')
        out.append(f'<text class="legend" x="{lx + 28}" y="66">{text(label)}</text>')
        lx += 40 + 7 * len(label)
    top = TOP
    for i, (panel, h) in enumerate(zip(fig.panels, heights)):
        out += _panel_svg(panel, top, h, sx, x0, x1, pw, last=i == len(fig.panels) - 1)
        top += h + GAP
    out.append(f'<text class="xlabel" x="{LEFT + pw / 2}" y="{height - 12}" text-anchor="middle">'
               f"{text(fig.xlabel)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _panel_svg(panel: Panel, top: float, h: float, sx, x0: float, x1: float, pw: float, last: bool) -> list[str]:
    ys = [y for s in panel.series for _, y in s.points] + list(panel.refs.values())
    if panel.log:
        f = math.log10
        lo, hi = f(min(ys)), f(max(ys))
    else:
        f = float
        lo, hi = min(ys), max(ys)
    pad = max((hi - lo) * 0.05, 0.02 if panel.log else 0.5)
    lo, hi = lo - pad, hi + pad

    def sy(y: float) -> float:
        return top + h - (f(y) - lo) / (hi - lo) * h

    out = ['<g class="panel">', f'<rect x="{LEFT}" y="{top}" width="{pw}" height="{h}" fill="none" stroke="#888"/>']
    yticks = log_ticks(10 ** lo, 10 ** hi) if panel.log else nice_ticks(lo, hi, 5)
    for t in yticks:
        y = sy(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" stroke="#e5e5e5"/>')
        out.append(f'<text class="ytick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_label(t)}</text>')
    for t in nice_ticks(x0, x1, 7):
        x = sx(t)
        out.append(f'<line x1="{x:.1f}" y1="{top + h}" x2="{x:.1f}" y2="{top + h + 4}" stroke="#888"/>')
        if last:
            out.append(f'<text class="xtick" x="{x:.1f}" y="{top + h + 18}" text-anchor="middle">{_label(t)}</text>')
    cy = top + h / 2
    out.append(f'<text class="ylabel" x="16" y="{cy}" text-anchor="middle" transform="rotate(-90 16 {cy})">'
               f"{text(panel.ylabel)}</text>")
    for i, (name, v) in enumerate(panel.refs.items()):
        y = sy(v)
        out.append(f'<line class="reference" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + pw}" y2="{y:.1f}" '
                   f'stroke="{REF_COLOURS[i % len(REF_COLOURS)]}" stroke-dasharray="6 4">'
                   f'<title>{text(name)} {v:.4g}</title></line>')
    for s in panel.series:
        pts = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        out.append(f'<polyline class="series" data-series="{text(s.label)}" points="{pts}" fill="none" '
                   f'stroke="{s.colour}" stroke-width="1.5" stroke-linejoin="round"/>')
        if s.markers:
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2" fill="{s.colour}"/>' for x, y in s.points]
    if panel.best is not None:
        bx, by = sx(panel.best[0]), sy(panel.best[1])
        anchor = "end" if bx > LEFT + pw * 0.7 else "start"
        dx = -8 if anchor == "end" else 8
        out.append(f'<circle class="best" cx="{bx:.1f}" cy="{by:.1f}" r="5" fill="none" stroke="{COLOURS["best"]}" '
                   f'stroke-width="2"/>')
        out.append(f'<text class="best" x="{bx + dx:.1f}" y="{by - 8:.1f}" text-anchor="{anchor}" '
                   f'fill="{COLOURS["best"]}">{text(panel.best_label)}</text>')
    out.append("</g>")
    return out


# ---------------------------------------------------------------------------- PNG
def png(fig: Figure) -> bytes:
    """The figure drawn by matplotlib (no pyplot: no global state, no display needed)."""
    check_target("x.png")
    from matplotlib.figure import Figure as MplFigure

    plain = {"parse_math": False}  # a '$' in a model's name is text, not TeX
    m = MplFigure(figsize=(8, 4.2 + 2 * (len(fig.panels) - 1)), layout="constrained")
    axes = m.subplots(len(fig.panels), 1, sharex=True, squeeze=False,
                      height_ratios=[2] + [1] * (len(fig.panels) - 1))[:, 0]
    m.suptitle(f"{visible_line(fig.title)}\n{visible_line(fig.subtitle)}", **plain)
    for ax, panel in zip(axes, fig.panels):
        if panel.log:
            ax.set_yscale("log")
        for i, (name, v) in enumerate(panel.refs.items()):
            ax.axhline(v, color=REF_COLOURS[i % len(REF_COLOURS)], linestyle="--", linewidth=1,
                       label=visible_line(name))
        for s in panel.series:
            ax.plot([x for x, _ in s.points], [y for _, y in s.points], color=s.colour, linewidth=1.5,
                    marker="o" if s.markers else None, markersize=2.5, label=visible_line(s.label))
        if panel.best is not None:
            ax.plot([panel.best[0]], [panel.best[1]], marker="o", markersize=9, markerfacecolor="none",
                    markeredgecolor=COLOURS["best"], markeredgewidth=2, linestyle="none",
                    label=visible_line(panel.best_label))
        if panel.log:  # the perplexities themselves as labels (matplotlib writes 6x10^1)
            ticks = log_ticks(*ax.get_ylim())
            ax.set_yticks(ticks, [_label(t) for t in ticks])
            ax.set_yticks([], minor=True)
        ax.set_ylabel(visible_line(panel.ylabel), **plain)
        ax.grid(True, which="major", color="#e5e5e5")
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles, labels, fontsize="small")
    axes[-1].set_xlabel(visible_line(fig.xlabel), **plain)
    buf = io.BytesIO()
    m.savefig(buf, format="png", dpi=120)
    return buf.getvalue()
