"""What the loop of one run works with, set up by the Trainer: the prepared run, the model built for it,
the checkpoint it saves, the clock, the controls, and where it reports."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ContextManager

from ..events import Event
from ..models import LanguageModel
from ..store.checkpoint import Checkpoint
from .clock import RunClock
from .control import Controls
from .distributed import Ranks
from .prepare import PreparedRun
from .saving import Saver
from .threads import ThreadGovernor


@dataclass
class Job:
    run: PreparedRun
    model: LanguageModel
    ck: Checkpoint
    clock: RunClock
    autocast: Callable[[], ContextManager]  # the mixed-precision context of a forward pass
    saver: Saver
    controls: Controls
    threads: ThreadGovernor
    ranks: Ranks
    emit: Callable[[Event], None]           # only rank 0 reports

    def end(self, ev: Event) -> Event:
        """Report how the run ended, and return it."""
        self.emit(ev)
        return ev
