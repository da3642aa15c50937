"""The training panel: start / pause-resume / stop, live perplexity, metrics and the latest sample.

The panel only shows a run: the run itself lives in the app's registry (``app.core.runs``), so leaving the
screen keeps it training, and a panel opened later attaches to it and draws every point it made. It
follows the app's news (``Core.follow``) and shows its model's."""
from __future__ import annotations

import math

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from lmcore import LmError, RunSpec, TrainConfig
from lmcore.training.spec import budget_from_text

from ...messages import RunEvent, RunFinished, RunPreparing
from .chart import PerplexityChart
from .metrics import MetricsView, SampleView, _clock, pairs_scores


ENDED = {"ETA": "-"}  # what only a running run has: cleared when it ends, however it ends


class TrainingPanel(VerticalScroll):
    def __init__(self, name: str, spec: RunSpec | None = None, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.spec = spec  # set for a model that is not in the store yet
        self._drawn = 0   # train points of the live run already on the chart
        # the run drawn, until its RunFinished (the registry has let it go by the time its last events
        # arrive here: they are drawn from it all the same)
        self._shown_run = None
        self._total = "-"

    def compose(self) -> ComposeResult:
        # one line of controls: at 80x24 the chart, the numbers and the evaluation's sample all show
        with Horizontal(id="train-controls"):
            yield Button("Train", id="start", variant="success", compact=True)
            yield Button("Pause", id="pause", disabled=True, compact=True)
            yield Button("Stop", id="stop", variant="error", disabled=True, compact=True)
            yield Label("minutes")
            yield Input(placeholder="more", id="minutes", type="number", compact=True)
            yield Label("steps")
            yield Input(placeholder="more", id="steps", type="integer", compact=True)
        yield PerplexityChart()
        yield MetricsView()
        yield Static("", id="val-note")  # a model whose validation perplexity measures nothing says why
        yield SampleView("")

    @property
    def run(self):
        return self.app.core.runs.get(self.model_name)

    @property
    def running(self) -> bool:
        """A run of this model is training, or has ended and its last news (the final state) is still
        on the way here: the panel stays a running one until it has shown how the run ended."""
        return self.run is not None or self._shown_run is not None

    @property
    def paused(self) -> bool:
        """This model's run is training and paused (False once the run has left the registry)."""
        run = self.run
        return run is not None and run.paused

    @property
    def trainer(self):
        return self.run.trainer if self.run else None

    def on_mount(self) -> None:
        self.app.core.follow(self)
        self._show_note()
        self.show_saved()
        run = self.run
        if run is not None:
            self.attach(run)

    def _show_note(self) -> None:
        """The lesson of the cheat: why a bidirectional model's validation perplexity is near 1."""
        ck = self.app.core.model_checkpoint(self.model_name)
        config = ck.model if ck is not None else self.spec.model if self.spec is not None else None
        note = config.family.reads_ahead(config) if config is not None else None
        line = self.query_one("#val-note", Static)
        line.display = bool(note)
        line.update(Text(f"⚠ Its validation perplexity is near 1 because {note}." if note else ""))

    def show_saved(self) -> None:
        ck = self.app.core.model_checkpoint(self.model_name)
        if ck is None:
            return
        self.spec = None
        self.query_one(PerplexityChart).reset(ck.history, ck.curve, self.app.core.baselines(ck))
        m = self.query_one(MetricsView)
        m.set(step=f"{ck.step:,}", best_val_ppl=f"{ck.best_val_ppl:.3f}" if ck.best_val_ppl else "-",
              device=ck.device or "-", state="saved")
        last = ck.history[-1] if ck.history else None
        if last is not None:
            m.set(**pairs_scores(last.bleu, last.exact))
        if last is not None and last.train_loss is not None:
            m.set(**{"loss": f"{last.train_loss:.4f}", "perplexity": f"{math.exp(min(last.train_loss, 50)):.3f}",
                     "tokens/s": f"{last.tokens_per_s or 0:,.0f}", "elapsed": _clock(ck.elapsed)})

    def attach(self, run) -> None:
        """Draw a live run from its start (reopening the screen mid-run loses nothing)."""
        self._shown_run = run
        chart = self.query_one(PerplexityChart)
        with run.lock:
            start, last_eval, val = run.start, run.last_eval, list(run.val_points)
        if start is not None:
            self._on_start(start)
        for step, elapsed, p in val:
            chart.add_val(step, elapsed, p)
        self._drain()
        if last_eval is not None:
            self._on_eval(last_eval, add_point=False)
        self.query_one(MetricsView).set(state="paused" if run.paused else run.state)
        self._set_buttons()

    # ------------------------------------------------------------ actions
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.running:
            self.app.notify("Training is already running.", severity="warning")
            return
        try:
            steps, minutes = budget_from_text(self.query_one("#steps", Input).value,
                                              self.query_one("#minutes", Input).value)
            self._shown_run = self.app.core.runs.start(self._spec(steps, minutes))
        except LmError as exc:
            self.app.notify(str(exc), severity="error")
            return
        self._drawn = 0
        self._set_buttons()
        self.query_one(MetricsView).set(state="preparing…")

    def _spec(self, steps: int | None, minutes: float | None) -> RunSpec:
        """What Train starts: the new model's spec (the fields' budget, else the dialog's), or more of the
        saved model (the fields' budget; none given and its run over: the same budget again)."""
        if self.spec is not None:
            return self.spec.with_budget(steps, minutes)
        ck = self.app.core.model_checkpoint(self.model_name)
        if ck is not None and ck.budget_reached() and minutes is None and steps is None:
            steps, minutes = ck.train.steps, ck.train.minutes
            more = f"{steps:,} more steps" if steps else f"{minutes:g} more minutes"
            self.app.notify(f"Training {more} (set steps or minutes to choose).", title=self.model_name)
        return RunSpec.continued(self.model_name, train=TrainConfig(steps=steps, minutes=minutes))

    @on(Button.Pressed, "#pause")
    def action_pause(self) -> None:
        paused = self.app.core.runs.toggle_pause(self.model_name)
        if paused is None:
            return
        self.query_one("#pause", Button).label = "Resume" if paused else "Pause"
        # paused, the time left is unknown; the next step after resuming says it again
        self.query_one(MetricsView).set(**({"state": "paused", **ENDED} if paused else {"state": "training"}))

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self.running:
            self.app.core.runs.stop(self.model_name)
            self.query_one(MetricsView).set(state="stopping (saving)…")

    def _set_buttons(self) -> None:
        running = self.running
        start, pause, stop = (self.query_one(f"#{i}", Button) for i in ("start", "pause", "stop"))
        pause.disabled = stop.disabled = not running
        # hand the focus over before disabling the focused button: Textual would otherwise move it to
        # the next focusable widget, which may sit in the other tab and switch to it
        if running and start.has_focus:
            stop.focus()
        elif not running and (pause.has_focus or stop.has_focus):
            start.disabled = False
            start.focus()
        start.disabled = running
        pause.label = "Resume" if self.paused else "Pause"

    # ------------------------------------------------------------ the run's events (main thread)
    def _drain(self) -> None:
        """Draw the train points that arrived since the last update, and the latest metrics."""
        run = self._shown_run = self._shown_run or self.run
        if run is None:
            return
        with run.lock:
            points, e = run.train_points[self._drawn:], run.step
            self._drawn = len(run.train_points)
        if not points or e is None:
            return
        chart = self.query_one(PerplexityChart)
        for step, elapsed, p in points:
            chart.add_train(step, elapsed, p, redraw=False)  # drawn by the chart's own timer
        self.query_one(MetricsView).set(**{
            "step": f"{e.step:,} / {self._total}", "loss": f"{e.loss:.4f}", "perplexity": f"{e.ppl:.3f}",
            "tokens/s": f"{e.tokens_per_s:,.0f}", "learning rate": f"{e.lr:.2e}",
            "elapsed": _clock(e.elapsed), "ETA": _clock(e.eta)})

    def _on_start(self, e) -> None:
        if getattr(e, "unigram_val_loss", None) is not None:
            self.query_one(PerplexityChart).set_reference("unigram", math.exp(min(e.unigram_val_loss, 50)))
        total = f"{e.steps:,}" if e.steps else (f"{e.minutes:g} min" if e.minutes else "-")
        self._total = total
        self.query_one(MetricsView).set(device=e.device, state="training", step=f"{e.step:,} / {total}")
        if getattr(e, "auto", ""):  # preset auto: what it chose and why
            self.notify(e.auto, title=e.name, timeout=15)

    def _on_eval(self, e, add_point: bool = True) -> None:
        if add_point:
            self.query_one(PerplexityChart).add_val(e.step, e.elapsed, e.val_ppl)
        self.query_one(MetricsView).set(best_val_ppl=f"{e.best_val_ppl:.3f}", elapsed=_clock(e.elapsed),
                                        **pairs_scores(getattr(e, "bleu", None), getattr(e, "exact", None)))
        if getattr(e, "bleu", None) is not None:  # a pairs model: its sample is a source and its reply
            self.query_one(SampleView).show_reply(e.step, e.sample)
        else:
            self.query_one(SampleView).show(e.step, e.sample, getattr(e, "greedy", ""))
        self.spec = None

    def on_run_preparing(self, message: RunPreparing) -> None:
        """Before the first step: how far the corpus's download or tokenization is."""
        if message.name == self.model_name and self.run is not None and not self.paused:
            self.query_one(MetricsView).set(state=message.state)

    def on_run_event(self, message: RunEvent) -> None:
        if message.name == self.model_name:
            self.show_event(message.event)

    def show_event(self, e) -> None:
        """An event of this panel's run: the chart, the numbers, the sample."""
        m = self.query_one(MetricsView)
        if e.kind == "start":
            if self.spec is not None:
                refs = {"unigram": math.exp(e.unigram_val_loss)} if e.unigram_val_loss is not None else {}
                self.query_one(PerplexityChart).reset([], [], refs)
            self._on_start(e)
            self._set_buttons()
        elif e.kind == "step":
            self._drain()
        elif e.kind == "eval":
            self._drain()
            self._on_eval(e)
        elif e.kind == "done":
            self._drain()
            how = e.how
            m.set(state=f"{how}, saved" if e.saved else f"{how}, nothing saved", step=f"{e.step:,}", **ENDED)
        elif e.kind == "failed":
            m.set(state="failed", **ENDED)

    def on_run_finished(self, message: RunFinished) -> None:
        if message.name != self.model_name:
            return
        self._shown_run = None
        self._set_buttons()
        if message.error:
            self.query_one(MetricsView).set(state="not started", **ENDED)
        else:  # stopped before any event said so
            self.query_one(MetricsView).set(**ENDED)
