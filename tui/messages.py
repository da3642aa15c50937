"""Messages from the worker threads to the app and its widgets. Progress is high-rate: a newer step
replaces an older one of the same run still waiting in the queue (``can_replace``), so the UI never
floods."""
from __future__ import annotations

import copy

from textual.message import Message

from lmcore import Event


class News(Message, bubble=False):
    """What the app tells the screens and widgets that follow it (``Core.follow``), a copy each. It does
    not bubble: a follower's parent can be the app, which announced it."""

    def __init_subclass__(cls, bubble: bool | None = False, **kw) -> None:
        super().__init_subclass__(bubble=bubble, **kw)

    def copy(self) -> News:
        twin = copy.copy(self)
        twin.__post_init__()  # a message of its own: handled, stopped and prevented apart from this one
        return twin


class RunEvent(News):
    """An event (start, step, eval, done, failed) of the run of model ``name``, posted to the app."""

    def __init__(self, name: str, event: Event) -> None:
        super().__init__()
        self.name = name
        self.event = event

    def can_replace(self, message: Message) -> bool:
        # only step events are disposable (the run keeps every point): evals, start, done and failed
        # are always delivered
        return (isinstance(message, RunEvent) and message.name == self.name
                and message.event.kind == "step" and self.event.kind == "step")


class RunPreparing(News):
    """The run of ``name`` is downloading or tokenizing its corpus: ``state`` says how far ("tokenizing
    the corpus 42%"). High-rate: a newer one replaces an older one of the same run."""

    def __init__(self, name: str, state: str) -> None:
        super().__init__()
        self.name = name
        self.state = state

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RunPreparing) and message.name == self.name


class RunFinished(News):
    """The training worker of ``name`` ended (after done/failed, or with an error before it started)."""

    def __init__(self, name: str, error: str | None = None) -> None:
        super().__init__()
        self.name = name
        self.error = error


class GenerationFinished(Message):
    def __init__(self, reason: str, error: str | None = None) -> None:
        super().__init__()
        self.reason = reason
        self.error = error
