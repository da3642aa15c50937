"""The Inspect tab: one text (typed, pasted or a slice of the validation text) seen through several
views, and two charts. ctrl+r computes the shown view in a worker (its own stop event: leaving or
quitting stops it); ctrl+t takes the next slice of validation text."""
from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from rich.text import Text
from textual.widgets import Button, Static, TabbedContent, TabPane

from lmcore import LmError
from lmcore.inspect import explain

from ...keys import key_label
from ..text_source import TextSource
from .chart_views import CorpusView, GradientView, RecomputeRequest
from .text_views import AttentionView, NeuronView, SurprisalView


class ViewComputed(Message):
    def __init__(self, view, result, text: str, error: str | None = None) -> None:
        super().__init__()
        self.view, self.result, self.text, self.error = view, result, text, error


class InspectPane(Vertical):
    # the views, each with its key (written on its tab; the footer is full); before the text field's own
    # F6 / F7 (select line / all)
    VIEWS = (("surprisal", "Surprisal", "f5"), ("neurons", "Neurons", "f6"), ("attention", "Attention", "f7"),
             ("gradients", "Gradients", "f8"), ("corpus", "Corpus", "f9"))
    BINDINGS = [
        Binding("ctrl+r", "compute", "Show", tooltip="compute the shown view"),
        Binding("ctrl+t", "validation_text", "Validation text", tooltip="the next slice of validation text"),
        *(Binding(key, f"view('{view}')", title, show=False, priority=True, tooltip=f"{title.lower()} view")
          for view, title, key in VIEWS),
    ]

    def __init__(self, name: str, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.stop_event = threading.Event()
        self.busy = False

    def compose(self) -> ComposeResult:
        views = {"surprisal": SurprisalView(), "neurons": NeuronView(), "attention": AttentionView(),
                 "gradients": GradientView(), "corpus": CorpusView(model_name=self.model_name)}
        with TabbedContent(id="inspect-views"):
            for view, title, key in self.VIEWS:
                with TabPane(f"{title} [dim]{key_label(key)}[/dim]", id=f"view-{view}"):
                    yield views[view]
        yield Static("", id="inspect-state", classes="summary-line")
        yield TextSource(self.model_name, "Show")

    def on_mount(self) -> None:
        self.show_idle()

    def show_idle(self) -> None:
        """The state line when nothing computes: what the shown view shows, in one line (f1: the note)."""
        view = self.view
        line = explain(view.explains).line if view is not None else ""
        self.query_one("#inspect-state", Static).update(Text(line, style="dim"))

    def action_view(self, view: str) -> None:
        self.query_one("#inspect-views", TabbedContent).active = f"view-{view}"

    def show_alignment(self, source: str, target: str) -> None:
        """An encoder–decoder's turn (from its chat): the Attention view of ``source`` and ``target``
        (its last line, ``source<TAB>target``, is what the view aligns)."""
        self.query_one(TextSource).text = f"{source}\t{target}"
        self.action_view("attention")
        self.call_after_refresh(self.action_compute)

    @property
    def view(self):
        pane = self.query_one("#inspect-views", TabbedContent).active_pane
        return pane.children[0] if pane is not None and pane.children else None

    @on(TabbedContent.TabActivated, "#inspect-views")
    def _view_changed(self) -> None:
        view = self.view
        source = self.query_one(TextSource)
        source.display = bool(view is not None and view.needs_text)
        if not self.busy:
            self.show_idle()
        if not source.display and source.has_focus_within:
            self.query_one("#inspect-views Tabs").focus()  # the pane's keys (ctrl+r) stay at hand
        if view is not None and not view.needs_text and not getattr(view, "shown", False):
            self.action_compute()  # a chart of its own: drawn when first shown

    @on(Button.Pressed, ".source-go")
    def action_compute(self) -> None:
        view = self.view
        if view is None:
            return
        text = self.query_one(TextSource).text
        if view.needs_text and not text.strip():
            self.app.notify("Type or paste a text below first, or ctrl+t for a slice of the validation text.",
                            severity="warning")
            return
        self.stop_event.set()  # what still runs gives way
        self.stop_event = threading.Event()
        self.busy = True
        self.query_one("#inspect-state", Static).update(f"computing {view.title.lower()}…")
        self.compute(view, text, self.stop_event)

    @on(RecomputeRequest)
    def _recompute(self, message: RecomputeRequest) -> None:
        message.stop()
        if getattr(message.view, "shown", False):
            self.action_compute()

    @on(Button.Pressed, ".source-slice")
    def action_validation_text(self) -> None:
        if self.view is not None and not self.view.needs_text:
            self.app.notify(f"{self.view.title} needs no text: ctrl+r computes it again.")
            return
        self.query_one(TextSource).take_slice()

    @work(thread=True, exclusive=True, group="inspect", exit_on_error=False)
    def compute(self, view, text: str, stop: threading.Event) -> None:
        try:
            gen = None
            if view.needs_model:
                try:
                    core = self.app.core  # a view that only reads the model (a birnn's units, bert's attention)
                    gen = (core.get_reader if getattr(view, "reads_only", False) else core.get_generator)(self.model_name)
                except LmError:
                    if view.needs_text:
                        raise
            result = view.compute(gen, text, stop, lambda done, total: self._progress(view, done, total))
        except LmError as exc:
            if not stop.is_set():  # stopped: nobody waits for it
                self.post_message(ViewComputed(view, None, text, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - one notification, never a traceback
            self.post_message(ViewComputed(view, None, text, f"{type(exc).__name__}: {exc}"))
            return
        if not stop.is_set():
            self.post_message(ViewComputed(view, result, text))

    def _progress(self, view, done: int, total: int) -> None:
        """From the worker: how far a long computation is (every few hundred tokens)."""
        if total > 1000:
            self.app.call_from_thread(self.query_one("#inspect-state", Static).update,
                                      f"computing {view.title.lower()}… {done / total:.0%} (another view or "
                                      f"leaving stops it)")

    @on(ViewComputed)
    def _computed(self, message: ViewComputed) -> None:
        message.stop()
        self.busy = False
        if message.error:
            self.show_idle()
            self.app.notify(message.error, title=message.view.title, severity="error", timeout=8)
            return
        self.show_idle()
        message.view.shown = True
        message.view.show(message.result, message.text)

    def on_unmount(self) -> None:
        self.stop_event.set()
