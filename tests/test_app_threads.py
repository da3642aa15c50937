"""The app's remembered CPU threads ("Threads: …" in the command palette): every run the app starts uses
them, through the run's spec; the choice is kept in settings.json; a damaged stored value is auto."""
from __future__ import annotations

import json
import re

import pytest
import torch
from textual.command import CommandPalette
from textual.widgets import Input, Select

import lmcore
from lmcore import Cancelled, ConfigError, RunSpec, Store, Trainer, TrainConfig
from lmcore.cli.main import main
from tui.app import create_app
from tui.screens.model import ModelScreen
from tui.screens.new_model import PATH, NewModelScreen

from .tui_helpers import ScriptedTrainer, fixed_entry, notes, palette_hits, record_notifications, wait_for  # noqa: F401

pytestmark = pytest.mark.usefixtures("record_notifications")


class RecordingTrainer(ScriptedTrainer):
    """A scripted run that records the spec it is asked to prepare."""
    seen: list[RunSpec] = []

    def prepare(self, spec, progress=None):
        RecordingTrainer.seen.append(spec)
        return self


class RealRecordingTrainer(Trainer):
    """lmcore's trainer, recording the spec it is asked to prepare."""
    seen: list[RunSpec] = []

    def prepare(self, spec, progress=None):
        RealRecordingTrainer.seen.append(spec)
        return super().prepare(spec, progress)


async def choose(pilot, app, command: str) -> None:
    """Run the palette command named ``command`` (its "(current)" mark aside)."""
    screen = app.screen
    hits = await palette_hits(pilot, app, command)
    app.screen.query_one("CommandList").highlighted = next(
        i for i, h in enumerate(hits) if re.match(re.escape(command) + r"(\D|$)", h))
    await pilot.press("enter")
    await wait_for(pilot, lambda: app.screen is screen)


async def close_palette(pilot, app) -> None:
    await pilot.press("escape")
    await wait_for(pilot, lambda: not isinstance(app.screen, CommandPalette))


async def train_saved_model(pilot, app) -> None:
    """Train on the saved model under the picker's cursor; wait until the trainer was handed its spec."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
    app.screen.action_show_tab("train")
    app.screen.training.action_start()
    await wait_for(pilot, lambda: RecordingTrainer.seen)
    app.runs.stop_all()
    await wait_for(pilot, lambda: not app.runs.runs)


async def test_threads_1_in_the_palette_makes_the_next_run_use_one_thread(home, prose):
    RealRecordingTrainer.seen = []
    app = create_app(home, trainer_factory=RealRecordingTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        assert any(h.startswith("Threads: auto (current)") for h in await palette_hits(pilot, app, "threads"))
        await close_palette(pilot, app)
        await choose(pilot, app, "Threads: 1")
        assert "Training runs started from now on use 1 CPU thread." in notes(app)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        scr = app.screen
        for field, value in (("preset", "tiny"), ("corpus", PATH)):
            scr.query_one(f"#{field}", Select).value = value
        await pilot.pause()
        scr.query_one("#path", Input).value = str(prose)
        scr.query_one("#new-steps", Input).value = "3"
        scr.query_one("#name", Input).value = "m"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: RealRecordingTrainer.seen and not app.runs.runs)
        assert [s.threads for s in RealRecordingTrainer.seen] == [1]
        shown = app.screen.training.query_one("MetricsView").values
        assert shown["state"] == "finished, saved"
        if not torch.cuda.is_available():
            assert shown["device"] == "cpu (1 thread)"


async def test_the_choice_is_remembered_after_a_restart(home):
    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=RecordingTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, app, "Threads: 1")
    RecordingTrainer.seen = []
    app = create_app(home, trainer_factory=RecordingTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        hits = await palette_hits(pilot, app, "threads")
        assert any(h.startswith("Threads: 1 (current)") for h in hits)
        assert not any(h.startswith("Threads: auto (current)") for h in hits)
        await close_palette(pilot, app)
        await train_saved_model(pilot, app)
        assert RecordingTrainer.seen == [RunSpec.continued("m", train=TrainConfig(), threads=1)]
        await choose(pilot, app, "Threads: auto")
    assert json.loads((home / "settings.json").read_text())["cpu_threads"] == "auto"


@pytest.mark.parametrize("stored", ["many", 0, 10 ** 6, True, 1.5, {"n": 1}])
async def test_a_damaged_stored_value_is_auto(home, stored):
    fixed_entry(Store(home), "m")
    (home / "settings.json").write_text(json.dumps({"cpu_threads": stored}))
    RecordingTrainer.seen = []
    app = create_app(home, trainer_factory=RecordingTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: any("auto applies" in n for n in notes(app)))
        await train_saved_model(pilot, app)
        assert [s.threads for s in RecordingTrainer.seen] == [None]


# ---------------------------------------------------------------------------- the spec carries them

def test_the_spec_carries_the_threads_from_every_caller(prose, monkeypatch):
    seen = []

    def prepare(self, spec, progress=None):
        seen.append(spec)
        raise Cancelled("recorded")

    monkeypatch.setattr(Trainer, "prepare", prepare)
    main(["train", "m", "--corpus", str(prose), "--threads", "2"])
    lmcore.train("m", corpus=str(prose), threads=2)
    lmcore.train("m", resume=True, threads="auto")
    assert seen == [RunSpec.new("m", str(prose), threads=2)] * 2 + [RunSpec.continued("m")]
    assert RunSpec.new("m", str(prose), threads="2").threads == 2


@pytest.mark.parametrize("bad,words", [(0, "threads must be at least 1 (got 0)"),
                                       ("two", "threads must be a whole number of at least 1, or auto")])
def test_a_bad_thread_count_in_a_spec_is_one_line(bad, words):
    with pytest.raises(ConfigError) as err:
        RunSpec.continued("m", threads=bad)
    assert words in str(err.value) and "\n" not in str(err.value)
