"""The app's live training runs: one registry owned by the app, not by a screen.

Leaving a model screen keeps its run going; the picker shows it training; reopening the model attaches
the panel to the same run (all its points); quitting stops every run, each saves, and the app waits for
them. A run's events are recorded here (thread-safe) and announced to the app as ``RunEvent`` messages,
step events at most every STEP_INTERVAL seconds."""
from __future__ import annotations

import asyncio
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from lmcore import Event, LmError, RunSpec

from .messages import RunEvent, RunFinished, RunPreparing

STEP_INTERVAL = 0.1  # seconds between step announcements


@dataclass
class LiveRun:
    name: str
    spec: RunSpec | None              # a new model's spec, until its first checkpoint is saved
    stop: threading.Event = field(default_factory=threading.Event)
    trainer: object = None
    worker: object = None
    state: str = "preparing…"
    start: Event | None = None
    step: Event | None = None
    last_eval: Event | None = None
    end: Event | None = None          # the done or failed event
    train_points: list = field(default_factory=list)  # (step, elapsed, perplexity), every step event
    val_points: list = field(default_factory=list)    # (step, elapsed, perplexity)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: threading.Event = field(default_factory=threading.Event)  # the worker has returned (saved)
    _last_post: float = 0.0

    @property
    def paused(self) -> bool:
        return bool(self.trainer is not None and self.trainer.paused.is_set())

    def status(self) -> str:
        """One short line for the picker."""
        s = self.step
        if self.paused:
            return f"paused at {s.step:,}" if s else "paused"
        if s is None:
            return self.state
        return f"training {s.step:,}"


class RunRegistry:
    def __init__(self, app, make_trainer: Callable[..., object],
                 threads: Callable[[], int | None] = lambda: None) -> None:
        """``make_trainer(name, on_event, stop)``: a trainer of model ``name``; ``app`` runs the workers
        and is told of every run's progress; ``threads()``: the CPU threads of a run that does not fix
        them (None: the free cores), read as it starts."""
        self.app = app
        self.make_trainer = make_trainer
        self.threads = threads
        self.runs: dict[str, LiveRun] = {}

    def get(self, name: str) -> LiveRun | None:
        return self.runs.get(name)

    def is_running(self, name: str) -> bool:
        return name in self.runs

    def start(self, spec: RunSpec) -> LiveRun:
        """Train ``spec`` (a new model, or more of a saved one) in a worker thread."""
        name = spec.name
        if name in self.runs:
            raise LmError(f"'{name}' is already training in this window")
        if spec.threads is None:
            spec = spec.with_threads(self.threads())
        run = LiveRun(name, None if spec.resume else spec)
        self.runs[name] = run
        run.worker = self.app.run_worker(lambda: self._work(run, spec), thread=True,
                                         group="training", name=f"train:{name}", exit_on_error=False)
        return run

    def _work(self, run: LiveRun, spec: RunSpec) -> None:
        try:
            self._train(run, spec)
        finally:
            run.closed.set()

    def _train(self, run: LiveRun, spec: RunSpec) -> None:
        app = self.app
        try:
            run.trainer = self.make_trainer(run.name, lambda ev: self._record(run, ev), run.stop)
            run.trainer.prepare(spec, progress=lambda what, done, total: self._preparing(run, what, done, total))
            if run.stop.is_set():
                raise LmError("stopped before training started: nothing was saved")
            run.state = "training"
            run.trainer.run()
        except LmError as exc:
            app.post_message(RunFinished(run.name, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - shown as a notification, never a traceback
            app.post_message(RunFinished(run.name, f"{type(exc).__name__}: {exc}"))
            return
        app.post_message(RunFinished(run.name))

    def _preparing(self, run: LiveRun, what: str, done: int, total: int | None) -> None:
        """In the worker thread: the corpus is downloading or being tokenized (a large one takes a while)."""
        now = time.monotonic()
        if now - run._last_post < STEP_INTERVAL and not (total and done >= total):
            return
        run._last_post = now
        run.state = f"{what} {100 * done // total}%" if total else f"{what} {done / 1e6:,.1f} MB"
        self.app.post_message(RunPreparing(run.name, run.state))

    def _record(self, run: LiveRun, ev: Event) -> None:
        """In the worker thread: keep the event, then tell the app (step events throttled)."""
        with run.lock:
            if ev.kind == "step":
                run.step = ev
                if math.isfinite(ev.ppl):
                    run.train_points.append((ev.step, ev.elapsed, ev.ppl))
            elif ev.kind == "start":
                run.start = ev
            elif ev.kind == "eval":
                run.last_eval = ev
                run.val_points.append((ev.step, ev.elapsed, ev.val_ppl))
                run.spec = None  # saved: from now on it is continued, not created
            else:
                run.end = ev
        if ev.kind == "step":
            now = time.monotonic()
            if now - run._last_post < STEP_INTERVAL:
                return
            run._last_post = now
        self.app.post_message(RunEvent(run.name, ev))

    def finished(self, name: str) -> LiveRun | None:
        return self.runs.pop(name, None)

    def stop(self, name: str) -> None:
        run = self.runs.get(name)
        if run:
            run.state = "stopping (saving)…"
            run.stop.set()
            if run.trainer is not None:
                run.trainer.resume_training()

    def toggle_pause(self, name: str) -> bool | None:
        """Pause or resume; the new paused state (None if nothing runs yet)."""
        run = self.runs.get(name)
        if not run or run.trainer is None:
            return None
        if run.paused:
            run.trainer.resume_training()
            return False
        run.trainer.pause()
        return True

    def stop_all(self) -> None:
        for name in list(self.runs):
            self.stop(name)

    def wait_closed(self, timeout: float = 60.0) -> None:
        """Block (any thread) until every run's worker has returned, each having saved."""
        deadline = time.monotonic() + timeout
        for run in list(self.runs.values()):
            run.closed.wait(max(0.0, deadline - time.monotonic()))

    async def wait_all(self, timeout: float = 60.0) -> None:
        workers = [r.worker for r in self.runs.values() if r.worker is not None]
        if workers:
            try:
                await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers), return_exceptions=True),
                                       timeout)
            except asyncio.TimeoutError:
                pass
