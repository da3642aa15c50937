import threading

import pytest
from textual import events
from textual.widgets import Input, Select

import lmcore
from lmcore import Store
from tui.app import create_app
from tui.messages import RunEvent, RunFinished, RunPreparing
from tui.screens.model import ModelScreen
from tui.screens.new_model import NewModelScreen
from tui.screens.picker import PickerScreen
from tui.widgets.generation import Continuation

from .tui_helpers import ScriptedTrainer, fixed_entry, notes, palette_hits, record_notifications, wait_for  # noqa: F401 - the fixture
from .waiting import DEADLINE


pytestmark = pytest.mark.usefixtures("record_notifications")



def _turn_tokens(gen) -> int:
    turns = gen.query("Turn")
    return len(turns.last().continuation.tokens) if turns else 0


async def _new_model(pilot, app, corpus_path, preset="tiny", arch="lstm"):
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
    scr = app.screen
    scr.query_one("#arch", Select).value = arch
    scr.query_one("#preset", Select).value = preset
    scr.query_one("#corpus", Select).value = "__path__"
    await pilot.pause()
    scr.query_one("#path", Input).value = str(corpus_path)
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))


async def _open_model(pilot, app) -> ModelScreen:
    """Open the model under the picker's cursor."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
    return app.screen


async def _open_and_generate(pilot, app, prompt: str, max_tokens: int):
    """Open the only model and start generating ``max_tokens`` tokens from ``prompt``."""
    await _open_model(pilot, app)
    gen = app.screen.generation
    gen.query_one("#set-max_tokens", Input).value = str(max_tokens)
    prompt_field = gen.query_one("#prompt", Input)
    prompt_field.value = prompt
    await wait_for(pilot, lambda: prompt_field.has_focus)
    # sent as a terminal sends it: Pilot.press then waits for an idle app, which a streaming one never is
    app.simulate_key("enter")
    await wait_for(pilot, lambda: gen.generating or gen.query("Turn"))
    return gen


async def _start_long_generation(pilot, app, min_tokens: int):
    """Open the only model, start an endless generation and wait until some tokens arrived."""
    gen = await _open_and_generate(pilot, app, "The", 1_000_000)
    await wait_for(pilot, lambda: _turn_tokens(gen) > min_tokens)
    return gen


async def test_first_run_proposes_a_default_and_trains_then_generates(tm_slice, home, monkeypatch):
    draws = []  # batches of tokens handed to the continuation: one per frame, not one per character
    add = Continuation.add
    monkeypatch.setattr(Continuation, "add", lambda self, tokens: (draws.append(len(tokens)), add(self, tokens)))
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, PickerScreen)
        assert app.screen.query_one("#welcome").display
        await pilot.press("enter")  # the proposed default
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        assert app.screen.query_one("#arch", Select).value == "lstm"
        assert app.screen.query_one("#corpus", Select).value in ("timemachine", "pythondocs")
        assert app.screen.query_one("#preset", Select).value == "auto"  # chosen for the text and the time
        app.screen.dismiss(None)
        await _new_model(pilot, app, tm_slice)
        panel = app.screen.training
        await wait_for(pilot, lambda: len(panel.query_one("PerplexityChart").train) >= 2)
        chart = panel.query_one("PerplexityChart")
        await wait_for(pilot, lambda: not panel.running)
        assert len(chart.train) == 31 and chart.val  # every logged step (300 / 10 + the first) is drawn
        values = panel.query_one("MetricsView").values
        assert values["step"].startswith("300") and values["tokens/s"] != "-" and "saved" in values["state"]
        assert Store(home).read(app.screen.model_name).step == 300
        # generation: seeded, streamed in batches
        app.screen.action_show_tab("generate")
        gen = app.screen.generation
        gen.query_one("#set-max_tokens", Input).value = "60"
        gen.query_one("#set-seed", Input).value = "7"
        gen.query_one("#prompt", Input).value = "The Time"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not gen.generating and gen.query("Turn"))
        turn = gen.query("Turn").last()
        assert len(turn.continuation.tokens) == 60
        head = str(turn.query_one(".prompt").render())
        assert head.count("The Time") == 1 and "seed 7" in head  # the prompt once, with its settings
        assert not turn.continuation.plain.startswith("The Time")
        assert sum(draws) == 60 and 1 <= len(draws) < 60  # drawn per frame, not per character
        first = turn.continuation.plain
        gen.query_one("#prompt", Input).value = "The Time"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not gen.generating and len(gen.query("Turn")) == 2)
        assert gen.query("Turn").last().continuation.plain == first  # same seed, same text
        saved = Store(home).read_extra(app.screen.model_name, "transcript")
        assert len(saved["turns"]) == 2 and saved["turns"][0]["settings"]["seed"] == 7
    # reopened: the turns come back with their settings and per-token probabilities
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        turn = app.screen.generation.query("Turn").first()
        assert turn.continuation.plain == first and "seed 7" in str(turn.query_one(".prompt").render())
        assert [round(t.prob, 2) for t in turn.continuation.tokens][:5] and len(turn.continuation.tokens) == 60
        turn.continuation.focus()
        await pilot.press("right")
        await pilot.pause()
        assert "alternatives are not kept" in str(app.screen.query_one("#alternatives").render())


async def test_escape_stops_generation_and_temperature_changes_mid_stream(tm_slice, home):
    lmcore.train("m", arch="gru", preset="tiny", corpus=str(tm_slice), steps=20, home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await _start_long_generation(pilot, app, 20)
        t0 = gen.stream_settings.temperature
        # keys as a terminal sends them: Pilot.press waits for the app to go idle, which it does not
        # while it streams (under load that wait timed out)
        app.simulate_key("ctrl+up")
        await wait_for(pilot, lambda: gen.stream_settings.temperature == pytest.approx(t0 + 0.1))
        assert gen.settings.temperature == pytest.approx(t0 + 0.1)
        app.simulate_key("escape")
        await wait_for(pilot, lambda: not gen.generating)
        n = len(gen.query("Turn").last().continuation.tokens)
        assert 20 < n < 1_000_000
        assert "stopped" in str(gen.query_one("#gen-state").render())
        await pilot.press("ctrl+down", "ctrl+down")
        assert gen.settings.temperature == pytest.approx(t0 - 0.1)
    assert lmcore.Settings(home).get("generation")["temperature"] == pytest.approx(t0 - 0.1)


async def test_unknown_prompt_characters_are_a_notification(tm_slice, home):
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(tm_slice), steps=5, home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        gen = await _open_and_generate(pilot, app, "caf\u00e9 \u2603", 5)
        await wait_for(pilot, lambda: not gen.generating and gen.query("Turn"))
        assert any("not in the model's vocabulary" in n for n in notes(app))  # said before it generates
        gen.query_one("#set-top_p", Input).value = "1.5"
        gen.query_one("#prompt", Input).value = "x"
        await pilot.press("enter")
        await pilot.pause()
        assert any("top-p must be in (0, 1]" in n for n in notes(app))


async def test_delete_and_rename_with_confirmation(home):
    store = Store(home)
    fixed_entry(store, "alpha")
    fixed_entry(store, "beta")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("tab", "enter")  # Cancel is focused first; tab to Delete
        await wait_for(pilot, lambda: not store.exists("alpha"))
        await pilot.press("r")
        await pilot.pause()
        app.screen.query_one("#new-name", Input).value = "gamma"
        await pilot.press("enter")
        await wait_for(pilot, lambda: store.exists("gamma"))
        assert [e.name for e in store.list()] == ["gamma"]
        table = app.screen.query_one("DataTable")
        assert table.row_count == 1


async def test_damaged_model_is_listed_and_opening_it_explains(home):
    store = Store(home)
    fixed_entry(store, "good")
    (store.root / "broken").mkdir()
    (store.root / "broken" / "meta.json").write_text("{oops")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        rows = [app.screen.query_one("DataTable").get_row_at(i) for i in range(2)]
        assert "damaged" in str(rows[0][1])
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        assert any("damaged" in n and "not valid JSON" in n for n in notes(app))


async def test_quit_during_training_saves_and_leaves_no_thread(tm_slice, home):
    app = create_app(home)
    before = set(threading.enumerate())
    async with app.run_test(size=(80, 24)) as pilot:
        await _new_model(pilot, app, tm_slice, preset="tiny", arch="transformer")
        panel = app.screen.training
        panel.query_one("#steps", Input).value = ""
        await wait_for(pilot, lambda: len(panel.query_one("PerplexityChart").train) >= 3)
        workers = [w for w in app.workers if w.group == "training"]
        await app.quit_and_wait()
        assert workers and all(w.is_finished for w in workers)  # the training thread ended: stopped, saved
    # only the event loop's idle executor threads may remain (closed with the loop)
    left = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.name.startswith("asyncio_")]
    assert left == []
    ck = Store(home).list()[0].checkpoint
    assert ck.step > 0 and ck.best_val_loss


async def test_a_quit_that_lands_after_the_app_ended_raises_nothing(home):
    """A SIGTERM or a closed browser tab can ask to quit as the app shuts down: nothing breaks."""
    app = create_app(home, trainer_factory=ScriptedTrainer)

    async def leave(pilot):
        await pilot.press("ctrl+q")

    await app.run_async(headless=True, size=(80, 24), auto_pilot=leave)  # run as lmplay runs it, and quit
    assert not app.is_running
    app.action_quit()  # before the fix: RuntimeError("App is not running") from run_worker


async def _start_training(pilot, app):
    """Open the model under the picker's cursor, show its Train tab and start training: its panel."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
    app.screen.action_show_tab("train")
    panel = app.screen.training
    panel.action_start()
    return panel


async def test_pause_and_resume_training(home):
    app = create_app(home, trainer_factory=ScriptedTrainer)
    fixed_entry(Store(home), "m")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await _start_training(pilot, app)
        await wait_for(pilot, lambda: panel.trainer is not None and panel.query_one("PerplexityChart").train)
        panel.action_pause()
        assert panel.trainer.paused.is_set() and panel.query_one("MetricsView").values["state"] == "paused"
        panel.action_pause()
        assert not panel.trainer.paused.is_set()
        panel.action_stop()
        await wait_for(pilot, lambda: not panel.running)
        assert any("stopped" in n for n in notes(app))


class _TokenizingTrainer(ScriptedTrainer):
    """Reports a third of the corpus tokenized, then waits to be let go before its run starts."""
    let_go = threading.Event()

    def prepare(self, spec, progress=None):
        progress("tokenizing", 30, 90)
        self.let_go.wait(DEADLINE)
        return self


async def test_the_panel_and_the_picker_say_how_far_tokenizing_is(home):
    """A large corpus takes a while to tokenize the first time: the panel's state and the picker's status
    say how far it is, and say "training" once it trains."""
    _TokenizingTrainer.let_go.clear()
    app = create_app(home, trainer_factory=_TokenizingTrainer)
    fixed_entry(Store(home), "m")
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await _start_training(pilot, app)
        state = lambda: panel.query_one("MetricsView").values["state"]  # noqa: E731
        await wait_for(pilot, lambda: state() == "tokenizing 33%")
        app.simulate_key("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        assert "tokenizing 33%" in str(app.screen.query_one("DataTable").get_row("m")[-1])
        _TokenizingTrainer.let_go.set()
        await wait_for(pilot, lambda: "training" in str(app.screen.query_one("DataTable").get_row("m")[-1]))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await wait_for(pilot, lambda: app.screen.training.query_one("MetricsView").values["state"] == "training")
        await app.quit_and_wait()


async def test_a_new_model_posts_its_tokenizing_progress(prose, home):
    """A real run on a corpus not yet in the token cache posts how far tokenizing is, then trains.
    Recorded as posted, not as handled: a newer progress message replaces an older one still queued, so
    which of them the app handles depends on how busy the machine is."""
    app = create_app(home)
    posted = []
    post = app.post_message
    app.post_message = lambda message: (posted.append(message), post(message))[1]
    async with app.run_test(size=(80, 24)) as pilot:
        await _new_model(pilot, app, prose, preset="tiny", arch="lstm")
        await wait_for(pilot, lambda: any(isinstance(m, RunEvent) and m.event.kind == "step" for m in posted))
        states = [m.state for m in posted if isinstance(m, RunPreparing)]
        assert any(s.startswith("tokenizing ") for s in states) and all(s.endswith("%") for s in states), states
        await app.quit_and_wait()


def test_step_messages_replace_each_other_but_not_evals():
    import math

    from lmcore import EvalEvent, StepEvent

    s1 = RunEvent("a", StepEvent(1, 10, 2.0, math.e ** 2, 1.0, 0.1, 1.0, 1.0))
    s2 = RunEvent("a", StepEvent(2, 10, 1.9, math.e ** 1.9, 1.0, 0.1, 1.0, 1.0))
    other = RunEvent("b", StepEvent(2, 10, 1.9, math.e ** 1.9, 1.0, 0.1, 1.0, 1.0))
    ev = RunEvent("a", EvalEvent(2, 1.9, 6.0, 1.9, 6.0, True, "", 1.0))
    assert s2.can_replace(s1)
    assert not ev.can_replace(s1) and not s2.can_replace(ev)
    assert not other.can_replace(s1)  # two runs' progress never replace each other


async def test_help_about_and_palette(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        assert "lmplay keys" in app.screen.query_one("Markdown").source
        await pilot.press("escape")
        app.action_about()
        await pilot.pause()
        src = app.screen.query_one("Markdown").source
        assert str(home) in src and "settings.json" in src and "device" in src
        await pilot.press("escape")
        app.theme = "nord"
        await pilot.pause()
    assert lmcore.Settings(home).get("theme") == "nord"
    app2 = create_app(home)
    async with app2.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app2.theme == "nord"


async def test_quit_during_generation_ends_the_worker(tm_slice, home):
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(tm_slice), steps=5, home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start_long_generation(pilot, app, 5)
        workers = [w for w in app.workers if w.group == "generation"]
        await app.quit_and_wait()
        assert workers and all(w.is_finished for w in workers)


async def test_missing_corpus_offline_is_a_notification_not_a_crash(home, monkeypatch):
    from lmcore.data import corpus

    from .httpserver import refused_url

    monkeypatch.setenv(corpus.MIRROR_ENV, str(home / "no-mirror"))
    monkeypatch.setattr(corpus, "registry", lambda: [corpus.CorpusEntry(
        name="timemachine", title="t", url=refused_url(), sha1="0" * 40, size=1)])
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        app.screen.query_one("#corpus", Select).value = "timemachine"
        await pilot.press("enter")  # Create and train: the corpus is downloaded first, here in vain
        note = app.screen.query_one("#download-note")
        await wait_for(pilot, lambda: "Could not download timemachine: connection refused" in str(note.render()))
        assert isinstance(app.screen, NewModelScreen) and not app.runs.runs  # the dialog and its choices stay


async def test_leaving_a_model_screen_keeps_its_run_and_reopening_attaches(prose, home):
    """ctrl+b mid-training: the run goes on (the app owns it), the picker shows it training, reopening the
    model draws every point so far, Train says it is already running, and quitting saves it."""
    app = create_app(home)
    posted = []
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await _new_model(pilot, app, prose, preset="small", arch="lstm")  # 1,500 steps: minutes on a CPU
        name = app.screen.model_name
        await wait_for(pilot, lambda: any(isinstance(m, RunEvent) and m.event.kind == "step" for m in posted))
        # keys as a terminal sends them (Pilot.press waits for an idle app, which a training one is not)
        app.simulate_key("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        table = app.screen.query_one("DataTable")

        def row() -> list[str]:
            return [str(c) for c in table.get_row(name)] if name in table.rows else []

        # listed from its run, with or without a checkpoint yet
        await wait_for(pilot, lambda: row() and "training" in row()[-1])
        assert "damaged" not in " ".join(row()), row()
        app.simulate_key("enter")  # reopen it
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        panel = app.screen.training
        assert panel.running and not panel.query_one("#pause").disabled
        tabs = app.screen.query_one("TabbedContent")
        assert tabs.active == "train"  # a live run opens on its chart
        app.simulate_key("f3")  # keys reach the shown tab while the run trains
        prompt = app.screen.query_one("#prompt", Input)
        await wait_for(pilot, lambda: tabs.active == "generate" and prompt.has_focus)
        for ch in "ab":
            app.post_message(events.Key(ch, ch))
        await wait_for(pilot, lambda: prompt.value == "ab")
        app.simulate_key("f2")
        await wait_for(pilot, lambda: tabs.active == "train")
        steps_seen = [m.event.step for m in posted if isinstance(m, RunEvent) and m.event.kind == "step"]
        await wait_for(pilot, lambda: len(panel.query_one("PerplexityChart").train) >= 2)
        panel.action_start()
        await pilot.pause()
        assert any("already training" in n or "already running" in n for n in notes(app))
        assert not any("another lmplay process" in n for n in notes(app))
        workers = [w for w in app.workers if w.group == "training"]
        await app.quit_and_wait()
        assert workers and all(w.is_finished for w in workers)
    assert not any(isinstance(m, RunFinished) and m.error for m in posted)
    ck = Store(home).read(name)
    assert ck.step >= max(steps_seen) and ck.budget_reached() is False  # stopped mid-run: --resume continues


async def test_bad_settings_fall_back_with_a_notification(home):
    home.mkdir(parents=True)
    (home / "settings.json").write_text('{"default_model": [], "generation": {"temperature": "hot"}}')
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert any("default_model must be an object" in n for n in notes(app))
        assert app.screen.query_one("#welcome").display  # the default proposal still works
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))


async def test_a_settings_file_that_cannot_be_written_is_a_notification(prose, home):
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(prose), steps=3, home=home)
    (home / "settings.json").mkdir()  # writing it fails for real, as in a read-only folder
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await pilot.press("ctrl+up", "ctrl+up")
        await pilot.pause()
        assert sum("could not save settings" in n for n in notes(app)) == 1
        assert app.screen.generation.settings.temperature == pytest.approx(1.0)


async def test_train_on_a_finished_model_trains_more_and_steps_mean_more(prose, home):
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(prose), steps=5, eval_every=5, home=home)
    app = create_app(home)
    posted = []
    async with app.run_test(size=(80, 24), message_hook=posted.append) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await pilot.press("f2", "s")  # the run of 5 steps is over: the same budget again
        await wait_for(pilot, lambda: any(isinstance(m, RunFinished) for m in posted))
        assert Store(home).read("m").step == 10
        app.screen.training.query_one("#steps", Input).value = "3"
        app.screen.training.query_one("#start").focus()
        posted.clear()
        await pilot.press("s")  # wherever the focus is, s trains: 3 more steps
        # the news of the first run reaches each follower as a copy: one may land after the clear, so
        # wait for this run's own end (3 steps), not any RunFinished
        await wait_for(pilot, lambda: any(isinstance(m, RunEvent) and m.event.kind == "done"
                                          and m.event.steps_trained == 3 for m in posted))
        done = [m.event for m in posted if isinstance(m, RunEvent) and m.event.kind == "done"
                and m.event.steps_trained == 3]
        assert done[0].saved and done[0].step == 13
        await wait_for(pilot, lambda: Store(home).read("m").step == 13)


async def test_the_palette_on_a_model_screen_offers_its_actions_and_one_about(home):
    fixed_entry(Store(home), "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_model(pilot, app)

        async def hits(query: str) -> list[str]:
            """What the palette lists for ``query`` once its search has finished."""
            screen = app.screen
            out = await palette_hits(pilot, app, query)
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen)
            return out

        assert any("Pause / resume training" in h for h in await hits("pause"))
        assert any("Copy last continuation" in h for h in await hits("copy last"))
        assert any("Sampling: creative" in h for h in await hits("creative"))
        assert sum("About" in h for h in await hits("about")) == 1


async def test_new_model_dialog_name_follows_choices_until_edited_and_errors_keep_it_open(home, prose):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
        scr = app.screen
        name = scr.query_one("#name", Input)
        first = name.value
        scr.query_one("#arch", Select).value = "transformer"
        await pilot.pause()
        assert name.value == first.replace("lstm", "transformer", 1)
        assert not scr.query_one("#opt-impl-row").display  # implementation: recurrent models only
        scr.query_one("#corpus", Select).value = "__path__"
        await pilot.pause()
        scr.query_one("#path", Input).value = str(prose)
        await pilot.pause()
        assert name.value == "transformer-prose"
        name.value = "bad name!"
        await pilot.pause()
        scr.query_one("#arch", Select).value = "gru"
        await pilot.pause()
        assert name.value == "bad name!" and scr.query_one("#opt-impl-row").display  # edited: kept
        await pilot.press("ctrl+s")  # creates from any field (here: refused, the dialog stays)
        await pilot.pause()
        assert app.screen is scr and "invalid model name" in str(scr.query_one("#new-hint").render())
        name.value = "ok-name"
        scr.query_one("#new-steps", Input).value = "7"
        scr.query_one("#preset", Select).value = "tiny"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await wait_for(pilot, lambda: Store(home).exists("ok-name") and not app.runs.is_running("ok-name"))
        ck = Store(home).read("ok-name")
        assert ck.model.arch == "gru" and ck.step == 7


async def test_the_chart_redraws_on_its_timer_not_per_point_whatever_the_step_rate(home, monkeypatch):
    """Points arrive at any rate: adding them draws nothing; the chart's next redraw draws them all at
    once (one redraw per burst, however long the machine takes to get to it)."""
    from tui.widgets.training.chart import LogFormatter, PerplexityChart

    draws = []
    redraw = PerplexityChart.redraw
    monkeypatch.setattr(PerplexityChart, "redraw", lambda self: (draws.append(len(self.train)), redraw(self)))
    fixed_entry(Store(home), "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        chart = (await _open_model(pilot, app)).training.query_one("PerplexityChart")
        await pilot.pause()
        for i in range(5):  # 5 bursts of 400 points: 2,000 points
            before = len(draws)
            for j in range(400):
                chart.add_train(i * 400 + j, i * 0.1, 100 - i, redraw=False)
            assert len(draws) == before and not chart.drawn  # no redraw per point
            await wait_for(pilot, lambda: chart.drawn)
            assert draws[before:] == [400 * (i + 1)]  # one redraw, of every point so far
        assert len(chart.train) == 2000
    ticks = LogFormatter().get_ticks(0.5, 2.4)  # perplexity 3.2 .. 250
    assert LogFormatter().get_labels_for_ticks(ticks)[:3] == ["5", "10", "20"] and len(ticks) <= 8


async def test_the_too_small_notice_comes_and_goes_with_the_terminal_size(home):
    from tui.screens.dialogs import TooSmallScreen

    app = create_app(home)
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, TooSmallScreen) and "60×20" in str(app.screen.query_one("#too-small").render())
        await pilot.resize_terminal(100, 32)
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))


async def test_beam_search_and_sampling_presets_in_the_generate_tab(home):
    fixed_entry(Store(home), "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _open_model(pilot, app)
        gen = app.screen.generation
        state = gen.query_one("#alternatives")
        await wait_for(pilot, lambda: "next:" in str(state.render()))
        gen.query_one("#set-beam", Input).value = "3"
        await wait_for(pilot, lambda: "next: beam 3" in str(state.render()))  # what the next turn runs with
        gen.query_one("#set-beam", Input).value = "99"
        await wait_for(pilot, lambda: "beam width must be" in str(state.render()))  # the error, as it is typed
        gen.query_one("#set-beam", Input).value = "3"
        texts = []
        for _ in range(2):
            gen.query_one("#set-max_tokens", Input).value = "30"
            gen.query_one("#prompt", Input).value = "The "
            app.simulate_key("enter")
            await wait_for(pilot, lambda: not gen.generating and len(gen.query("Turn")) == len(texts) + 1)
            turn = gen.query("Turn").last()
            assert "beam 3" in str(turn.query_one(".prompt").render())
            texts.append(turn.continuation.plain)
        assert texts[0] == texts[1] and len(texts[0]) == 30  # beam search is deterministic
        gen.apply_preset("precise")  # what the palette's "Sampling: precise" does
        await pilot.pause()
        assert gen.query_one("#set-beam", Input).value == "0" and gen.query_one("#set-top_p", Input).value == "0.9"
        assert gen.query_one("TemperatureControl").value == 0.5
        await wait_for(pilot, lambda: "next: T 0.5 · top-p 0.9" in str(state.render()))


async def test_the_picker_ranks_each_corpus_by_bits_per_character(home):
    import math

    store = Store(home)
    for name, ppl, corpus in (("a", 5.0, "timemachine"), ("b", 4.0, "timemachine"), ("c", 9.0, "tinyshakespeare")):
        fixed_entry(store, name, ppl=ppl, corpus=corpus)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("b")
        table = app.screen.query_one("DataTable")
        labels = [str(c.label) for c in table.columns.values()]
        assert "bits/char" in labels and labels[0] == "#"
        rows = [table.get_row_at(i) for i in range(table.row_count)]
        assert [(r[0], r[1], r[2]) for r in rows] == [("1", "timemachine", "b"), ("2", "timemachine", "a"),
                                                      ("1", "tinyshakespeare", "c")]
        assert rows[0][5] == f"{math.log(4.0) / math.log(2):.3f}"  # char tokens: bits = nats / ln 2
        assert table.cursor_row == 1  # the model selected before ("a") stays selected
        await pilot.press("up", "enter")  # the row under the cursor opens as before
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen) and app.screen.model_name == "b")
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))
        await pilot.press("b")
        assert "bits/char" not in [str(c.label) for c in app.screen.query_one("DataTable").columns.values()]
