"""A corpus seen through Zipf's law, from the new-model dialog (before any model is trained on it)."""
from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from lmcore import LmError, visible_line

from ..widgets.inspect import CorpusView, ViewComputed
from ..widgets.inspect.chart_views import RecomputeRequest


class CorpusScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, corpus: str) -> None:
        super().__init__()
        self.corpus = corpus
        self.stop_event = threading.Event()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog corpus-dialog"):
            yield Static(f"{visible_line(self.corpus)}: Zipf's law · Esc closes", classes="title")
            yield CorpusView(corpus=self.corpus)

    def on_mount(self) -> None:
        self.compute()

    @on(RecomputeRequest)
    def _recompute(self, message: RecomputeRequest) -> None:
        message.stop()
        if getattr(message.view, "shown", False):  # a choice changed after the first drawing
            self.compute()

    def compute(self) -> None:
        self.stop_event.set()
        self.stop_event = threading.Event()
        self._compute(self.query_one(CorpusView), self.stop_event)

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def _compute(self, view: CorpusView, stop: threading.Event) -> None:
        try:
            result = view.compute(None, "", stop, None)
        except LmError as exc:
            self.post_message(ViewComputed(view, None, "", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - one notification, never a silent hang
            self.post_message(ViewComputed(view, None, "", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ViewComputed(view, result, ""))

    @on(ViewComputed)
    def _computed(self, message: ViewComputed) -> None:
        if message.error:
            self.app.notify(message.error, title="Corpus", severity="error", timeout=8)
            self.action_close()
            return
        message.view.shown = True
        message.view.show(message.result, "")

    def action_close(self) -> None:
        self.stop_event.set()
        if self.is_current:  # once: a second error or key must not close the screen under it
            self.dismiss(None)
