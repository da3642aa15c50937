"""Helpers for the TUI tests: waiting on the app, a deterministic stand-in trainer, fixed store entries."""
from __future__ import annotations

import json
import threading

from lmcore import DoneEvent, EvalEvent, StartEvent, StepEvent, Store


async def wait_for(pilot, predicate, timeout: float = 30.0, step: float = 0.05) -> None:
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

    def prepare(self, **kw):
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
        self.stop.wait(60)
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
