"""What the loop reports between evaluations: the training loss averaged since the last report (summed
on the device, so a step never waits for the GPU), the step events with their rates, the end of a run,
and the failure of a loss that is no longer a number."""
from __future__ import annotations

import math

import torch

from . import distributed
from .clock import RunClock
from .config import TrainConfig
from .control import Controls
from .distributed import Ranks
from ..events import FailedEvent, StepEvent
from ..store.checkpoint import ppl


class TrainLog:
    def __init__(self, cfg: TrainConfig, step0: int, device: torch.device, ranks: Ranks, clock: RunClock):
        self.cfg, self.ranks, self.clock = cfg, ranks, clock
        self.loss_sum, self.n = torch.zeros((), device=device), 0
        self.last = math.nan  # the last training loss reported
        self.tokens_per_step = cfg.batch_size * cfg.seq_len
        self.step0 = self.report_step = step0
        self.t0 = self.report_t = clock.elapsed()  # paused time is not counted

    def add(self, loss: torch.Tensor) -> None:
        self.loss_sum += loss.detach()
        self.n += 1

    def due(self, step: int) -> bool:
        """A report every ``log_every`` steps, and after the run's first step."""
        return step % self.cfg.log_every == 0 or step == self.step0 + 1

    def average(self) -> float:
        """The mean training loss since the last report, over every process (one sync), as ``last``."""
        total = distributed.mean(self.loss_sum) if self.ranks.active else self.loss_sum
        self.last = float(total) / self.n
        self.loss_sum.zero_()
        self.n = 0
        return self.last

    def step_event(self, step: int, lr: float, controls: Controls) -> StepEvent:
        """The report of ``step``: the tokens/s since the previous report and over the run, and the time left."""
        now = self.clock.elapsed()
        rate = (step - self.report_step) * self.tokens_per_step / max(now - self.report_t, 1e-9)
        self.report_t, self.report_step = now, step
        eta = controls.eta(step, (now - self.t0) / max(step - self.step0, 1))
        run_rate = (step - self.step0) * self.tokens_per_step / max(now - self.t0, 1e-9)  # the run's own so far
        return StepEvent(step, controls.target, self.last, ppl(self.last), rate, lr, self.clock.elapsed(), eta, run_rate)

    def rate(self, step: int) -> float:
        """Tokens/s over the whole loop, evaluations included."""
        return (step - self.step0) * self.tokens_per_step / max(self.clock.elapsed() - self.t0, 1e-9)


def diverged(loss: float, step: int, cfg: TrainConfig, kept: str, found: str = "") -> FailedEvent:
    """The failure of a training loss that became NaN or infinite (or, ``found``, of what an evaluation
    found not finite, in a few words: the validation loss, or the scores of its sample)."""
    what = f"at step {step}'s evaluation, {found[:1].lower()}{found[1:]}" if found else \
        f"the loss became {loss} at step {step}"
    return FailedEvent(f"{what}: training diverged and stopped{kept}. Lower the learning rate (now {cfg.lr:g}, "
                       f"try --lr {cfg.lr / 4:g}) or keep gradient clipping on", step)
