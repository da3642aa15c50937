"""What ends or holds the loop before each step: the step target, the time budget, a stop (the same for
every process under torchrun) and a pause; and how far the run is, for the learning-rate schedule."""
from __future__ import annotations

import threading
import time

from . import distributed
from .clock import RunClock
from .config import TrainConfig
from .distributed import Ranks


class Controls:
    def __init__(self, stop: threading.Event, paused: threading.Event, ranks: Ranks, clock: RunClock,
                 cfg: TrainConfig, run_start_step: int):
        self.stop, self.paused, self.ranks, self.clock, self.cfg = stop, paused, ranks, clock, cfg
        self.run_start_step = run_start_step
        #: the step this run ends at (None: only the time budget or a stop ends it)
        self.target = run_start_step + cfg.steps if cfg.steps is not None else None
        self.budget = cfg.minutes * 60 if cfg.minutes else None  # seconds
        self.in_run = 0.0  # the run's seconds as seen before the current step (the same on every process)

    def before_step(self, step: int) -> str | None:
        """None to train the step; else why the run ends here: "finished", "time" or "stopped"."""
        if self.target is not None and step >= self.target:
            return "finished"
        in_run, agreed_stop = self.clock.in_run(), False
        if self.ranks.active:  # every rank stops at the same step, and sees the same clock (learning rate)
            code, in_run = distributed.agree(int(self.stop.is_set()), in_run)
            agreed_stop = code > 0  # decides alone: a signal that arrives after this waits a step
        self.in_run = in_run
        if self.budget is not None and step > self.run_start_step and in_run >= self.budget:
            return "time"  # checked once the run has trained a step: a tiny budget still trains one
        self.wait_while_paused()
        if agreed_stop if self.ranks.active else self.stop.is_set():
            return "stopped"
        return None

    def wait_while_paused(self) -> None:
        """Hold until resumed or stopped; paused time counts neither as elapsed nor in tokens/s."""
        if not self.paused.is_set():
            return
        t_pause = time.monotonic()
        while self.paused.is_set() and not self.stop.is_set():
            time.sleep(0.02)
        self.clock.hold(time.monotonic() - t_pause)

    def progress(self, step: int) -> float:
        """How far the run is (0 to 1): of its steps or of its time, whichever is further."""
        p = [(step - self.run_start_step) / self.cfg.steps] if self.cfg.steps else []
        if self.budget:
            p.append(self.in_run / self.budget)
        return max(p) if p else 0.0

    def eta(self, step: int, sec_per_step: float) -> float | None:
        """Seconds left: of the steps at this pace, or of the time budget, whichever ends first."""
        return RunClock.eta(self.target - step if self.target is not None else None, sec_per_step,
                            self.budget - self.clock.in_run() if self.budget else None)
