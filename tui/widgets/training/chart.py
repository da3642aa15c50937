"""Live perplexity sparklines. They plot log-perplexity, so the late progress stays visible instead of
being flattened by the first, very high values."""
from __future__ import annotations

import math
from statistics import mean

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Label, Sparkline


class PerplexityChart(Vertical):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.train: list[float] = []
        self.val: list[float] = []

    def compose(self) -> ComposeResult:
        yield Label("train perplexity (log scale)", id="label-train", classes="chart-label")
        yield Sparkline([], summary_function=mean, id="spark-train")
        yield Label("validation perplexity (log scale)", id="label-val", classes="chart-label")
        yield Sparkline([], summary_function=mean, id="spark-val")

    def reset(self, history: list | None = None) -> None:
        """``history``: the checkpoint's evaluation points."""
        self.train, self.val = [], []
        for h in history or []:
            self.val.append(math.exp(min(h.val_loss, 50)))
            if h.train_loss is not None:
                self.train.append(math.exp(min(h.train_loss, 50)))
        self._refresh()

    def add_train(self, ppl: float, redraw: bool = True) -> None:
        if math.isfinite(ppl):
            self.train.append(ppl)
            if redraw:
                self._refresh()

    def redraw(self) -> None:
        self._refresh()

    def add_val(self, ppl: float) -> None:
        if math.isfinite(ppl):
            self.val.append(ppl)
            self._refresh()

    def _refresh(self) -> None:
        for kind, data in (("train", self.train), ("val", self.val)):
            spark = self.query_one(f"#spark-{kind}", Sparkline)
            spark.data = [math.log(max(p, 1.0)) for p in data]
            name = "train" if kind == "train" else "validation"
            if data:
                text = f"{name} perplexity (log scale): now {data[-1]:.3f}, best {min(data):.3f}, first {data[0]:.2f}"
            else:
                text = f"{name} perplexity (log scale): no data yet"
            self.query_one(f"#label-{kind}", Label).update(text)
