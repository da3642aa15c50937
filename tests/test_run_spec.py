"""One typed spec for a run: the command line, ``lmcore.train()`` and the app (the new-model dialog, the
Train button of a saved model) hand the trainer the same RunSpec for the same choices; a bad value is
one clear line wherever it is given."""
from __future__ import annotations

import pytest
from textual.widgets import Input, Select, Static

import lmcore
from lmcore import Cancelled, ConfigError, LmError, RunSpec, Store, Trainer, TrainConfig
from lmcore.cli.main import main
from lmcore.training.spec import budget_from_text
from tui.app import create_app
from tui.screens.model import ModelScreen
from tui.screens.new_model import PATH, NewModelScreen

from .tui_helpers import ScriptedTrainer, fixed_entry, notes, record_notifications, wait_for  # noqa: F401

pytestmark = pytest.mark.usefixtures("record_notifications")


@pytest.fixture
def handed(monkeypatch) -> list[RunSpec]:
    """The specs handed to Trainer.prepare (which then stops the run before anything is read)."""
    seen = []

    def prepare(self, spec, progress=None):
        seen.append(spec)
        raise Cancelled("recorded")

    monkeypatch.setattr(Trainer, "prepare", prepare)
    return seen


class RecordingTrainer(ScriptedTrainer):
    """The app's trainer in these tests: records the spec it is asked to prepare."""
    seen: list[RunSpec] = []

    def prepare(self, spec, progress=None):
        RecordingTrainer.seen.append(spec)
        return self


def _new_spec(corpus) -> RunSpec:
    return RunSpec.new("m", str(corpus), arch="gru", preset="tiny", options={"impl": "scratch"}, tokens="word",
                       prep="d2l", train=TrainConfig(steps=5))


def test_the_cli_and_lmcore_train_hand_the_trainer_the_same_new_model_spec(prose, handed):
    rc = main(["train", "m", "--arch", "gru", "--impl", "scratch", "--preset", "tiny", "--corpus", str(prose),
               "--tokens", "word", "--prep", "d2l", "--steps", "5"])
    assert rc == 1  # stopped before its first step: nothing trained
    done = lmcore.train("m", arch="gru", preset="tiny", corpus=str(prose), tokens="word", prep="d2l",
                        model_overrides={"impl": "scratch"}, steps=5)
    assert done.kind == "done" and not done.saved
    assert handed == [_new_spec(prose), _new_spec(prose)]
    assert handed[0].model.arch == "gru" and handed[0].model.impl == "scratch" and not handed[0].resume


def test_defaults_are_the_same_from_every_caller(prose, handed):
    main(["train", "m", "--corpus", str(prose)])
    lmcore.train("m", corpus=str(prose))
    default = RunSpec.new("m", str(prose))
    assert handed == [default, default]
    assert (default.model.arch, default.preset, default.tokenizer.level, default.tokenizer.prep) == (
        "lstm", "auto", "char", "raw")


def test_continuing_is_the_same_spec_from_the_cli_and_lmcore_train(handed):
    main(["train", "m", "--resume", "--minutes", "2"])
    lmcore.train("m", resume=True, minutes=2)
    assert handed == [RunSpec.continued("m", train=TrainConfig(minutes=2))] * 2 and handed[0].resume


async def test_the_dialog_makes_the_same_spec_as_the_cli(home, prose):
    RecordingTrainer.seen = []
    app = create_app(home, trainer_factory=RecordingTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        scr = app.screen
        for field, value in (("arch", "gru"), ("opt-impl", "scratch"), ("preset", "tiny"), ("corpus", PATH),
                             ("prep", "d2l"), ("tokens", "word")):
            scr.query_one(f"#{field}", Select).value = value
        await pilot.pause()
        scr.query_one("#path", Input).value = str(prose)
        scr.query_one("#new-steps", Input).value = "5"
        scr.query_one("#name", Input).value = "m"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: RecordingTrainer.seen)
        assert RecordingTrainer.seen == [_new_spec(prose)]
        assert isinstance(app.screen, ModelScreen) and app.screen.spec == _new_spec(prose)
        app.runs.stop_all()
        await wait_for(pilot, lambda: not app.runs.runs)


async def test_train_on_a_saved_model_makes_the_same_spec_as_resume(home):
    RecordingTrainer.seen = []
    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=RecordingTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        app.screen.action_show_tab("train")
        panel = app.screen.training
        panel.query_one("#minutes", Input).value = "2"
        panel.action_start()
        await wait_for(pilot, lambda: RecordingTrainer.seen)
        assert RecordingTrainer.seen == [RunSpec.continued("m", train=TrainConfig(minutes=2))]
        app.runs.stop_all()
        await wait_for(pilot, lambda: not app.runs.runs)


# ---------------------------------------------------------------------------- bad values: one line

@pytest.mark.parametrize("make,words", [
    (lambda: RunSpec.new("m", None), "a new model needs a corpus"),
    (lambda: RunSpec.new("m", "pythondocs", arch="nope"), "unknown architecture 'nope'"),
    (lambda: RunSpec.new("m", "pythondocs", preset="huge"), "unknown preset 'huge'"),
    (lambda: RunSpec.new("m", "pythondocs", tokens="bytes"), "unknown tokenization 'bytes'"),
    (lambda: RunSpec.new("m", "pythondocs", vocab_size=300), "vocabulary size"),
    (lambda: RunSpec.new("a/b", "pythondocs"), "invalid model name"),
    (lambda: RunSpec.new("m", "pythondocs", train=TrainConfig(minutes=-1)), "minutes must be > 0"),
    (lambda: RunSpec.continued("m", train=TrainConfig(steps=0)), "steps must be at least 1 (got 0)"),
    (lambda: RunSpec("m", train={"steps": 5}), "a run's train is a TrainConfig, not dict"),
    (lambda: RunSpec("m", preset="tiny"), "continuing 'm' keeps its size and tokenizer"),
    (lambda: budget_from_text("ten", ""), "steps must be a whole number and minutes a number"),
    (lambda: budget_from_text("", "0"), "minutes must be > 0 (got 0.0)"),
])
def test_a_bad_spec_value_is_one_clear_line(make, words):
    with pytest.raises(LmError) as err:
        make()
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_bad_value_on_the_command_line_is_one_line_and_no_run(prose, capsys, handed):
    assert main(["train", "m", "--corpus", str(prose), "--steps", "0"]) == 1
    assert capsys.readouterr().err == "error: steps must be at least 1 (got 0)\n"
    with pytest.raises(ConfigError, match="steps must be at least 1"):
        lmcore.train("m", corpus=str(prose), steps=0)
    assert handed == []


def test_preparing_leaves_the_spec_as_it_was_given(prose):
    spec = RunSpec.new("m", str(prose), preset="tiny")
    trainer = Trainer(Store(), "m").prepare(spec)
    trainer.close()
    assert trainer.model_cfg.vocab_size > 0 and spec == RunSpec.new("m", str(prose), preset="tiny")
    with pytest.raises(ConfigError, match="trains 'other', not 'm'"):
        Trainer(Store(), "other").prepare(spec)


async def test_the_dialog_and_the_panel_say_a_bad_budget_in_the_same_words(home):
    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        scr = app.screen
        scr.query_one("#new-steps", Input).value = "0"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "steps must be at least 1 (got 0)" in str(scr.query_one("#new-hint", Static).render()))
        assert app.screen is scr and not app.runs.runs
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, NewModelScreen))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        app.screen.action_show_tab("train")
        app.screen.training.query_one("#steps", Input).value = "0"
        app.screen.training.action_start()
        await wait_for(pilot, lambda: notes(app) and notes(app)[-1] == "steps must be at least 1 (got 0)")
        assert not app.runs.runs
