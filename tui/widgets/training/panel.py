"""The training panel: start / pause-resume / stop, live perplexity, metrics and the latest sample.

Training runs in a thread worker through lmcore's Trainer; its events come back as messages, step
events at most ~10 a second (throttled here, and coalesced by ``can_replace`` in the queue)."""
from __future__ import annotations

import math
import threading
import time

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label

from lmcore import LmError

from ...messages import ModelsChanged, TrainingEvent, TrainingFinished
from .chart import PerplexityChart
from .metrics import MetricsView, SampleView, _clock

STEP_INTERVAL = 0.1  # seconds between step updates sent to the UI


class TrainingPanel(VerticalScroll):
    BINDINGS = [
        Binding("s", "start", "Train"),
        Binding("p", "pause", "Pause/resume"),
        Binding("x", "stop", "Stop"),
    ]

    def __init__(self, name: str, spec: dict | None = None, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.spec = spec  # set for a model that is not in the store yet
        self.stop_event = threading.Event()
        self.trainer = None
        self.running = False
        self._last_step_post = 0.0
        self._pending_steps: list = []
        self._lock = threading.Lock()
        self._total = "-"
        self.step_events = 0  # UI updates drawn from step events (throttled)

    def compose(self) -> ComposeResult:
        with Horizontal(id="train-controls"):
            yield Button("Train", id="start", variant="success")
            yield Button("Pause", id="pause", disabled=True)
            yield Button("Stop", id="stop", variant="error", disabled=True)
            yield Label("minutes")
            yield Input(placeholder="preset", id="minutes", type="number")
            yield Label("steps")
            yield Input(placeholder="preset", id="steps", type="integer")
        yield PerplexityChart()
        yield MetricsView()
        yield SampleView("")

    def on_mount(self) -> None:
        meta = self.app.model_meta(self.model_name)
        if meta:
            self.query_one(PerplexityChart).reset(meta.get("history", []))
            m = self.query_one(MetricsView)
            best = meta.get("best_val_ppl")
            m.set(step=f"{meta.get('step', 0):,}", best_val_ppl=f"{best:.3f}" if best else "-",
                  device=meta.get("device", "-"), state="saved")
            last = (meta.get("history") or [{}])[-1]
            if last.get("train_loss") is not None and math.isfinite(last["train_loss"]):
                m.set(**{"loss": f"{last['train_loss']:.4f}", "perplexity": f"{math.exp(last['train_loss']):.3f}",
                         "tokens/s": f"{last.get('tokens_per_s', 0):,.0f}", "elapsed": _clock(last.get("elapsed"))})

    # ------------------------------------------------------------ actions
    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.running:
            self.app.notify("Training is already running.", severity="warning")
            return
        try:
            minutes = float(v) if (v := self.query_one("#minutes", Input).value.strip()) else None
            steps = int(v) if (v := self.query_one("#steps", Input).value.strip()) else None
        except ValueError:
            self.app.notify("Minutes and steps must be numbers.", severity="error")
            return
        if (minutes is not None and minutes <= 0) or (steps is not None and steps < 1):
            self.app.notify("Minutes must be > 0 and steps at least 1.", severity="error")
            return
        resume = self.spec is None
        if resume and steps is not None:
            steps += (self.app.model_meta(self.model_name) or {}).get("step", 0)  # steps more
        self.stop_event = threading.Event()
        self._pending_steps = []
        self.running = True
        self._set_buttons()
        self.query_one(MetricsView).set(state="preparing…")
        self._worker = self.run_training(dict(self.spec or {}), resume, minutes, steps)

    @on(Button.Pressed, "#pause")
    def action_pause(self) -> None:
        if not (self.running and self.trainer):
            return
        if self.trainer.paused.is_set():
            self.trainer.resume_training()
            self.query_one("#pause", Button).label = "Pause"
            self.query_one(MetricsView).set(state="training")
        else:
            self.trainer.pause()
            self.query_one("#pause", Button).label = "Resume"
            self.query_one(MetricsView).set(state="paused")

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self.running:
            self.stop_event.set()
            if self.trainer:
                self.trainer.resume_training()
            self.query_one(MetricsView).set(state="stopping (saving)…")

    def _set_buttons(self) -> None:
        start, pause, stop = (self.query_one(f"#{i}", Button) for i in ("start", "pause", "stop"))
        pause.disabled = stop.disabled = not self.running
        # hand the focus over before disabling the focused button: Textual would otherwise move it to
        # the next focusable widget, which may sit in the other tab and switch to it
        if self.running and start.has_focus:
            stop.focus()
        elif not self.running and (pause.has_focus or stop.has_focus):
            start.disabled = False
            start.focus()
        start.disabled = self.running
        if not self.running:
            pause.label = "Pause"

    # ------------------------------------------------------------ the worker (a thread)
    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def run_training(self, spec: dict, resume: bool, minutes: float | None, steps: int | None) -> None:
        try:
            self.trainer = self.app.make_trainer(self.model_name, self._emit, self.stop_event)
            options = {"minutes": minutes, "steps": steps}
            self.app.prepare_trainer(self.trainer, spec, resume, options)
            self.trainer.run()
        except LmError as exc:
            self.post_message(TrainingFinished(str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown as a notification, never a traceback
            self.post_message(TrainingFinished(f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(TrainingFinished())

    def _emit(self, event) -> None:
        """Called in the worker thread for every trainer event. Every step's perplexity is kept for the
        chart; the UI is told at most every STEP_INTERVAL and then draws everything that arrived."""
        if event.kind == "step":
            with self._lock:
                self._pending_steps.append(event)
            now = time.monotonic()
            if now - self._last_step_post < STEP_INTERVAL:
                return
            self._last_step_post = now
        self.post_message(TrainingEvent(event))

    def _drain_steps(self) -> None:
        """Draw the step events that arrived since the last update (chart points, latest metrics)."""
        with self._lock:
            steps, self._pending_steps = self._pending_steps, []
        if not steps:
            return
        chart = self.query_one(PerplexityChart)
        for e in steps:
            chart.add_train(e.ppl, redraw=False)
        chart.redraw()
        e = steps[-1]
        self.step_events += 1
        self.query_one(MetricsView).set(**{
            "step": f"{e.step:,} / {self._total}", "loss": f"{e.loss:.4f}", "perplexity": f"{e.ppl:.3f}",
            "tokens/s": f"{e.tokens_per_s:,.0f}", "learning rate": f"{e.lr:.2e}",
            "elapsed": _clock(e.elapsed), "ETA": _clock(e.eta)})

    # ------------------------------------------------------------ events (main thread)
    @on(TrainingEvent)
    def on_training_event(self, message: TrainingEvent) -> None:
        e = message.event
        m = self.query_one(MetricsView)
        chart = self.query_one(PerplexityChart)
        if e.kind == "start":
            if self.spec is not None:
                chart.reset([])
            total = f"{e.steps:,}" if e.steps else (f"{e.minutes:g} min" if e.minutes else "-")
            m.set(device=e.device, state="training", step=f"{e.step:,} / {total}")
            self._total = total
        elif e.kind == "step":
            self._drain_steps()
        elif e.kind == "eval":
            self._drain_steps()
            chart.add_val(e.val_ppl)
            m.set(best_val_ppl=f"{e.best_val_ppl:.3f}", elapsed=_clock(e.elapsed))
            self.query_one(SampleView).show(e.step, e.sample)
            if self.spec is not None:
                self.spec = None  # saved: from now on it is continued, not created
            self.post_message(ModelsChanged())
        elif e.kind == "done":
            self._drain_steps()
            how = {"finished": "finished", "time": "time budget reached", "stopped": "stopped"}[e.reason]
            m.set(state=f"{how}, saved", step=f"{e.step:,}")
            ppl = f"{e.best_val_ppl:.3f}" if math.isfinite(e.best_val_ppl) else "-"
            self.app.notify(f"Training {how} at step {e.step:,}: best validation perplexity {ppl}. "
                            f"Best checkpoint saved.", title=self.model_name)
        elif e.kind == "failed":
            m.set(state="failed")
            self.app.notify(e.message, title="Training stopped", severity="error", timeout=10)

    @on(TrainingFinished)
    def on_training_finished(self, message: TrainingFinished) -> None:
        self.running = False
        self.trainer = None
        self._set_buttons()
        if message.error:
            self.query_one(MetricsView).set(state="not started")
            self.app.notify(message.error, title="Cannot train", severity="error", timeout=10)
        self.post_message(ModelsChanged())
