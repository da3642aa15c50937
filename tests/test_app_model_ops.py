"""Managing a model in the app while it trains (here or in another process, such as ``lmcore train``),
the Train tab's keys pressed as keys, and what the app says when a model went away under it."""
import pytest
from textual.widgets import Button, Input

from lmcore import RunSpec, Store
from lmcore.cli.main import main
from tui.app import create_app
from tui.messages import RunEvent, RunFinished
from tui.screens.dialogs import ConfirmScreen, RenameScreen
from tui.screens.model import ModelScreen
from tui.screens.picker import PickerScreen

from .tui_helpers import ScriptedTrainer, fixed_entry, notes, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")


def _picker_row(app, name: str) -> list[str]:
    return [str(c) for c in app.screen.query_one("DataTable").get_row(name)]


async def _open(pilot, app, tab: str | None = None) -> ModelScreen:
    """Open the model under the picker's cursor (on ``tab``)."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
    if tab:
        await pilot.press({"train": "f2", "generate": "f3"}[tab])
        await wait_for(pilot, lambda: app.screen.query_one("TabbedContent").active == tab)
    return app.screen


# ---------------------------------------------------------------------------- delete and rename while training
async def test_delete_and_rename_of_a_model_training_in_the_app_say_so_and_keep_it(home):
    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app, "train")
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.training.trainer is not None and screen.training.query_one("PerplexityChart").train)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        for key in ("d", "r"):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, PickerScreen)  # no dialog: nothing to confirm or type
            assert not isinstance(app.screen, (ConfirmScreen, RenameScreen))
        said = [n for n in notes(app) if "'m' is training" in n]
        assert said == ["'m' is training: stop it first (open it, then x)."] * 2
        assert app.runs.is_running("m") and Store(home).read("m").step == 1500  # the run and the model stay
        assert "training" in _picker_row(app, "m")[-1]
        app.runs.stop("m")
        await wait_for(pilot, lambda: not app.runs.is_running("m"))


async def test_delete_and_rename_of_a_model_training_in_another_process_say_so_and_keep_it(home):
    """``lmcore train m`` in another terminal holds the model's lock: the picker says the model trains
    there, and d and r say so at once (no dialog to fill in first); once it is let go, they work."""
    store = Store(home)
    fixed_entry(store, "m")
    fixed_entry(store, "other")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        assert "another process" not in _picker_row(app, "m")[-1]
        with store.lock("m"):  # as the other process does while it trains
            await pilot.press("f5")
            await wait_for(pilot, lambda: "training (another process)" in _picker_row(app, "m")[-1])
            assert "another process" not in _picker_row(app, "other")[-1]
            for key in ("d", "r"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, PickerScreen)
            said = [n for n in notes(app) if "'m'" in n]
            assert said == ["'m' is training in another lmplay process: stop it there first (Ctrl+C in "
                            "its terminal), then delete or rename it."] * 2
            assert store.read("m").step == 1500
        await wait_for(pilot, lambda: "another process" not in _picker_row(app, "m")[-1])  # it notices alone
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not store.exists("m"))
        assert notes(app)[-1] == "Deleted 'm'."


# ---------------------------------------------------------------------------- the Train tab's keys
async def test_the_train_tab_keys_start_pause_resume_switch_the_axis_and_stop(home):
    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app, "train")
        panel = screen.training
        state = lambda: panel.query_one("MetricsView").values["state"]  # noqa: E731
        pause = panel.query_one("#pause", Button)
        chart = panel.query_one("PerplexityChart")
        legend = lambda: str(chart.query_one("#chart-label").render())  # noqa: E731
        assert pause.disabled and not panel.query_one("#start", Button).disabled
        await pilot.press("s")
        await wait_for(pilot, lambda: panel.trainer is not None and len(chart.train) == 60)
        assert state() == "training" and not pause.disabled and panel.query_one("#start", Button).disabled
        assert panel.query_one("MetricsView").values["step"] == "600 / 1,500"
        await pilot.press("p")
        assert panel.trainer.paused.is_set() and state() == "paused" and str(pause.label) == "Resume"
        assert "paused at 600" in str(app.runs.get("m").status())
        await pilot.press("p")
        assert not panel.trainer.paused.is_set() and state() == "training" and str(pause.label) == "Pause"
        # the chart redraws (and writes its legend) after the data arrives: wait for it
        await wait_for(pilot, lambda: legend().endswith("t: by time") and not chart.by_time)
        await pilot.press("t")
        await wait_for(pilot, lambda: legend().endswith("t: by step") and chart.by_time)
        await pilot.press("t")
        await wait_for(pilot, lambda: legend().endswith("t: by time"))
        trainer = panel.trainer
        await pilot.press("x")
        assert trainer.stop.is_set()
        await wait_for(pilot, lambda: not panel.running)
        assert state().startswith("stopped") and pause.disabled and not panel.query_one("#start", Button).disabled


async def test_a_runs_progress_and_end_show_on_its_own_model_only(home):
    """a trains; b's screen is open when a's run ends: a notification and the picker say so, b's Train
    tab does not (each run's messages go to the widgets that follow runs; a panel shows its model's)."""
    store = Store(home)
    fixed_entry(store, "a")
    fixed_entry(store, "b")
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("DataTable")
        table.move_cursor(row=table.get_row_index("a"))
        a = await _open(pilot, app, "train")
        await pilot.press("s")
        await wait_for(pilot, lambda: len(a.training.query_one("PerplexityChart").train) == 60)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen) and "training" in _picker_row(app, "a")[-1])
        table.move_cursor(row=table.get_row_index("b"))
        b = await _open(pilot, app, "train")
        shown = dict(b.training.query_one("MetricsView").values)
        assert b.model_name == "b" and shown["state"] == "saved"
        app.runs.stop("a")
        await wait_for(pilot, lambda: "Training stopped" in " ".join(notes(app)))
        await wait_for(pilot, lambda: not app.runs.is_running("a"))
        await pilot.pause()
        assert b.training.query_one("MetricsView").values == shown and not b.training.query_one("PerplexityChart").train
        assert not b.training.query_one("#start", Button).disabled
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert "training" not in _picker_row(app, "a")[-1]


async def test_the_train_keys_belong_to_the_train_tab(home):
    """On the Generate tab the same letters are text for the prompt: x does not stop the run."""
    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app, "train")
        await pilot.press("s")
        await wait_for(pilot, lambda: screen.training.trainer is not None and len(screen.training.query_one("PerplexityChart").train) == 60)
        await pilot.press("f3")
        prompt = screen.query_one("#prompt", Input)
        await wait_for(pilot, lambda: prompt.has_focus)
        await pilot.press("x", "p", "s", "t")
        assert prompt.value == "xpst" and app.runs.is_running("m") and not screen.training.trainer.paused.is_set()
        app.runs.stop("m")
        await wait_for(pilot, lambda: not app.runs.is_running("m"))


async def test_x_on_a_real_run_stops_it_and_saves_the_step_it_reached(prose, home):
    """The real trainer: s trains, p holds it between two steps, x stops it and the checkpoint saved is
    at the step shown."""
    import lmcore

    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(prose), steps=2, eval_every=2, home=home)
    app = create_app(home)
    posted = []
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        screen = await _open(pilot, app, "train")
        panel = screen.training
        panel.query_one("#steps", Input).value = "100000"
        panel.query_one("#start").focus()
        app.simulate_key("s")  # a training app is never idle: keys as a terminal sends them
        await wait_for(pilot, lambda: any(isinstance(m, RunEvent) and m.event.kind == "step" for m in posted))
        app.simulate_key("p")
        await wait_for(pilot, lambda: panel.query_one("MetricsView").values["state"] == "paused")
        app.simulate_key("x")
        await wait_for(pilot, lambda: any(isinstance(m, RunFinished) for m in posted))
    done = [m.event for m in posted if isinstance(m, RunEvent) and m.event.kind == "done"]
    assert done and done[0].reason == "stopped" and done[0].saved
    assert Store(home).read("m").step == done[0].step > 2
    assert f"Training stopped at step {done[0].step:,}" in " ".join(notes(app))


# ---------------------------------------------------------------------------- a model gone from under the screen
async def test_generate_after_the_cli_deleted_the_model_says_it_was_deleted(home, capsys):
    fixed_entry(Store(home), "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open(pilot, app, "generate")
        assert main(["--home", str(home), "models", "rm", "m"]) == 0  # from another terminal
        screen.query_one("#prompt", Input).value = "abc"
        await pilot.press("enter")
        await pilot.pause()
        assert not screen.generation.generating and not screen.generation.query("Turn")
        assert notes(app)[-1] == ("'m' is no longer saved: it was deleted or renamed outside this screen "
                                  "(e.g. lmcore models rm). Back to the models: ctrl+b.")
        assert not any("train it first" in n for n in notes(app))


async def test_generate_on_a_new_model_before_its_first_checkpoint_says_train_it_first(home):
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_model("fresh", RunSpec.new("fresh", "pythondocs", arch="lstm", preset="tiny"))
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        screen = app.screen
        await pilot.press("f3")
        screen.query_one("#prompt", Input).value = "abc"
        await pilot.press("enter")
        await pilot.pause()
        assert notes(app)[-1] == "This model has no saved checkpoint yet: train it first (Train tab)."
