"""Messages from the worker threads to the widgets. Progress is high-rate: a newer one replaces an older
one still waiting in the queue (``can_replace``), so the UI never floods."""
from __future__ import annotations

from textual.message import Message

from lmcore import Event


class TrainingEvent(Message):
    """An event of lmcore's trainer (start, step, eval, done, failed)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # only step events are disposable: evals, start, done and failed are always delivered
        return (isinstance(message, TrainingEvent) and message.event.kind == "step"
                and self.event.kind == "step")


class TrainingFinished(Message):
    """The training worker ended (after done/failed, or with an error before training started)."""

    def __init__(self, error: str | None = None) -> None:
        super().__init__()
        self.error = error


class GenerationFinished(Message):
    def __init__(self, reason: str, error: str | None = None) -> None:
        super().__init__()
        self.reason = reason
        self.error = error


class ModelsChanged(Message):
    """The store changed (a model was created, trained, renamed or deleted)."""
