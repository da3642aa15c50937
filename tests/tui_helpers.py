"""Helpers for the TUI tests: waiting on the app, a deterministic stand-in trainer, fixed store entries."""
from __future__ import annotations

import json
import threading

import pytest

from lmcore import DoneEvent, EvalEvent, StartEvent, StepEvent, Store

from .waiting import DEADLINE


async def wait_for(pilot, predicate, timeout: float = DEADLINE, step: float = 0.05) -> None:
    """Let the app run until ``predicate()`` holds; fail only if it never does (a generous deadline)."""
    waited = 0.0
    while not predicate():
        if waited > timeout:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(step)
        waited += step


class ScriptedTrainer:
    """Replays a fixed, seeded-looking run (so snapshots are deterministic), then holds 'mid-training'
    until stopped."""

    def __init__(self, store, name, on_event, stop):
        self.store, self.name, self.on_event = store, name, on_event
        self.stop = stop or threading.Event()
        self.paused = threading.Event()

    def prepare(self, spec, progress=None):
        return self

    def pause(self):
        self.paused.set()

    def resume_training(self):
        self.paused.clear()

    def run(self):
        emit = self.on_event
        emit(StartEvent(self.name, "lstm", "fused", 878_855, "cpu (2 threads)", 0, 1500, None, 161_082, 17_897, 71,
                        3.2))
        import math
        for i in range(1, 61):
            loss = 4.2 * math.exp(-i / 18) + 1.6
            emit(StepEvent(i * 10, 1500, loss, math.exp(loss), 15_500.0, 0.01, i * 1.2, (1500 - i * 10) * 0.12))
            if i % 20 == 0:
                val = loss + 0.05
                emit(EvalEvent(i * 10, val, math.exp(val), val, math.exp(val), True,
                               "The Time Traveller was the time the time", i * 1.2))
        self.stop.wait(DEADLINE)
        done = DoneEvent("stopped", 600, 1.7, math.exp(1.7), 72.0, 15_500.0)
        emit(done)
        return done


def fixed_entry(store: Store, name: str, arch="lstm", ppl=4.46, corpus="timemachine", step=1500) -> None:
    """A store entry with fixed metadata (time stamps included) for snapshots."""
    import math

    from . import factories

    ck, state = factories.checkpoint(name, arch, step, val_loss=math.log(ppl), corpus=corpus)
    ck.params = 878_855
    ck.history = []
    ck.train.steps = 3000  # an interrupted run: Train continues it
    store.save(name, ck, state)
    p = store.path(name) / "meta.json"
    meta = json.loads(p.read_text())
    meta.update(updated="2026-11-22T10:00:00+00:00", created="2026-11-22T09:57:00+00:00",
                device="cpu (2 threads)")
    p.write_text(json.dumps(meta))


@pytest.fixture
def record_notifications(monkeypatch):
    """What the app asks to show the user (its public notify), recorded for the assertions: read them
    with ``notes(app)``. A test module turns it on for all its tests with
    ``pytestmark = pytest.mark.usefixtures("record_notifications")``."""
    from tui.app import LmplayApp

    real = LmplayApp.notify

    def notify(self, message, *a, **kw):
        self.__dict__.setdefault("shown", []).append(str(message))
        return real(self, message, *a, **kw)

    monkeypatch.setattr(LmplayApp, "notify", notify)


def notes(app) -> list[str]:
    return list(app.__dict__.get("shown", []))


async def open_inspect(pilot, app, view: str, text: str | None, shown: bool = True):
    """Open the model under the picker's cursor on its Inspect tab, ``view``; with a text, type it and
    press ctrl+r; wait until the view is shown (``shown=False``: not, for a view that fails). Returns
    the pane."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
    await pilot.press("f4")
    pane = app.screen.query_one("InspectPane")
    await wait_for(pilot, lambda: pane.query_one(".source-text").has_focus)
    pane.query_one("#inspect-views").active = f"view-{view}"
    await pilot.pause()
    if text is not None:
        pane.query_one("TextSource").text = text
        await pilot.press("ctrl+r")
    if shown:
        await wait_for(pilot, lambda: getattr(pane.view, "shown", False))
    return pane


async def new_model_dialog_on_path(pilot, app, path) -> None:
    """n in the picker, then "a text file or folder…" with ``path`` typed."""
    from textual.widgets import Input, Select

    await pilot.press("n")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "NewModelScreen")
    app.screen.query_one("#corpus", Select).value = "__path__"
    await pilot.pause()
    app.screen.query_one("#path", Input).value = str(path)


async def palette_hits(pilot, app, query: str) -> list[str]:
    """Open the palette, type ``query``, wait for its search: the commands listed (the palette stays open)."""
    from textual.command import CommandPalette
    from textual.widgets import Input

    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    palette = app.screen
    await pilot.press(*query)
    await wait_for(pilot, lambda: palette.query_one(Input).value == query
                   and all(w.is_finished for w in app.workers if w.node is palette))
    lst = palette.query_one("CommandList")
    return [str(lst.get_option_at_index(i).prompt) for i in range(lst.option_count)]
