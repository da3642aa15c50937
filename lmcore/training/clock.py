"""The run's clock: training time across runs (paused time excluded), the current run's share of it, and
the estimate of the time left."""
from __future__ import annotations

import time


class RunClock:
    def __init__(self, elapsed0: float = 0.0, run_start_elapsed: float = 0.0):
        self.elapsed0 = elapsed0                  # training time saved before this process started
        self.run_start = run_start_elapsed        # where the current run's time budget began
        self._t0 = time.monotonic()

    def elapsed(self) -> float:
        """Seconds of training, all runs of this model together."""
        return self.elapsed0 + time.monotonic() - self._t0

    def in_run(self) -> float:
        """Seconds of the current run (what a --minutes budget counts)."""
        return self.elapsed() - self.run_start

    def hold(self, seconds: float) -> None:
        """Take ``seconds`` (a pause) out of the elapsed time."""
        self._t0 += seconds

    @staticmethod
    def eta(steps_left: int | None, sec_per_step: float, budget_left: float | None) -> float | None:
        eta = steps_left * sec_per_step if steps_left is not None else None
        if budget_left is not None:
            eta = min(eta, budget_left) if eta is not None else budget_left
        return max(eta, 0.0) if eta is not None else None
