"""What a learner sees at 80x24: the help lists every key, messages quote names once, the screens keep
what matters above the fold, finished runs do not show a live ETA, settings are remembered."""
import re
from pathlib import Path

import pytest

import lmcore
from tui.app import create_app

from .tui_helpers import notes, record_notifications, wait_for  # noqa: F401 - the fixture
from .waiting import DEADLINE

pytestmark = pytest.mark.usefixtures("record_notifications")

ROOT = Path(__file__).resolve().parents[1]


async def test_the_validation_text_toast_quotes_the_name_once(home, prose):
    lmcore.train("tf-py", arch="ngram", preset="tiny", corpus=str(prose), home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        await pilot.press("f4")
        pane = app.screen.query_one("InspectPane")
        await wait_for(pilot, lambda: pane.query_one(".source-text").has_focus)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: any("validation text" in n for n in notes(app)))
        note = next(n for n in notes(app) if "validation text" in n)
        assert "'tf-py'" in note and "''" not in note, note


def test_no_message_puts_a_possessive_after_a_quoted_name():
    """The class of ``'tf-py''s``: a quoted placeholder followed by 's reads as a stray quote."""
    found = []
    for path in [*ROOT.glob("lmcore/**/*.py"), *ROOT.glob("tui/**/*.py")]:
        for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if re.search(r"'\{[^}]*\}'+s\b", line):
                found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, found


def _tui_bindings() -> dict:
    """Every class of the app that declares keys, found by walking the package (a new screen counts)."""
    import importlib
    import inspect
    import pkgutil

    import tui

    found = {}
    for m in pkgutil.walk_packages(tui.__path__, "tui."):
        module = importlib.import_module(m.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__.startswith("tui.") and "BINDINGS" in cls.__dict__:
                found[cls] = cls.__dict__["BINDINGS"]
    return found


async def test_the_help_lists_every_key_of_every_screen(home):
    from tui.keys import key_label

    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DocScreen")
        text = app.screen.text
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
    bindings = _tui_bindings()
    assert {"PickerScreen", "ModelScreen", "InspectPane", "Arena", "SameText"} <= {c.__name__ for c in bindings}
    missing = []
    for cls, keys in bindings.items():
        for b in keys:
            if b.action == "nothing":  # the too-small notice swallows Esc: nothing to tell
                continue
            what = b.tooltip or b.description.lower()
            last = key_label(b.key.split(",")[-1].strip())
            if f"`{last}` {what}" not in text or not all(f"`{key_label(k.strip())}`" in text for k in b.key.split(",")):
                missing.append(f"{cls.__name__}: {b.key} {what}")
    assert not missing, missing
    for key in ("`F4` Inspect tab", "`b` rank", "`c` compare", "`t` the chart's axis", "`ctrl+p` command palette"):
        assert key in text


async def test_inspect_views_have_keys_written_on_their_tabs(home, prose):
    lmcore.train("ng", arch="ngram", preset="tiny", corpus=str(prose), home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        await pilot.press("f4")
        pane = app.screen.query_one("InspectPane")
        views = pane.query_one("#inspect-views")
        await wait_for(pilot, lambda: pane.query_one(".source-text").has_focus)
        for key, view in (("f6", "neurons"), ("f7", "attention"), ("f9", "corpus"), ("f5", "surprisal")):
            await pilot.press(key)
            await wait_for(pilot, lambda: views.active == f"view-{view}")
            assert views.get_tab(f"view-{view}").label.plain.endswith(key.upper())
        # the corpus view drew itself on the way (it needs no text)
        await wait_for(pilot, lambda: getattr(pane.query_one("CorpusView"), "shown", False))


async def test_the_eta_goes_when_the_run_pauses_or_ends(home):
    from lmcore import Store

    from .tui_helpers import ScriptedTrainer, fixed_entry

    fixed_entry(Store(home), "m")
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        await pilot.press("f2")
        metrics = app.screen.training.query_one("MetricsView")
        await pilot.press("s")
        await wait_for(pilot, lambda: metrics.values["step"].startswith("600 "))
        assert metrics.values["ETA"] == "1:48"  # the scripted run's last step: 900 steps at 0.12 s
        await pilot.press("p")
        await wait_for(pilot, lambda: metrics.values["state"] == "paused")
        assert metrics.values["ETA"] == "-"
        await pilot.press("p", "x")
        await wait_for(pilot, lambda: not app.runs.is_running("m"))
        await wait_for(pilot, lambda: metrics.values["state"].startswith("stopped"))
        assert metrics.values["ETA"] == "-"


async def _open_arena(pilot, app, more: int = 1):
    """c in the picker (the model under the cursor ticked), tick ``more`` below it, Compare."""
    await pilot.press("c")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "ChooseModelsScreen")
    await pilot.press(*["down", "space"] * more, "tab", "tab", "enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
    arena = app.screen.arena
    await wait_for(pilot, lambda: arena.query_one("#arena-prompt").has_focus)
    return arena


async def test_the_arena_remembers_its_temperature_and_colouring(home):
    from lmcore import Store

    from .tui_helpers import fixed_entry

    store = Store(home)
    fixed_entry(store, "a")
    fixed_entry(store, "b")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        arena = await _open_arena(pilot, app)
        await pilot.press("ctrl+up", "ctrl+up")
        await wait_for(pilot, lambda: arena.settings.temperature == 1.0)
        arena.query_one("#colour").value = True
        await pilot.pause()
    assert lmcore.Settings(home).get("generation")["temperature"] == 1.0
    assert lmcore.Settings(home).get("colour_by_probability") is True
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        arena = await _open_arena(pilot, app)
        assert arena.query_one("TemperatureControl").value == 1.0 and arena.query_one("#colour").value
        await pilot.press("ctrl+b", "enter")  # the Generate tab starts from the same settings
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        assert app.screen.generation.query_one("TemperatureControl").value == 1.0


async def test_the_chart_axis_is_remembered(home):
    from lmcore import Store

    from .tui_helpers import fixed_entry

    fixed_entry(Store(home), "m")
    for by_time in (True, False):
        app = create_app(home)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("enter")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
            await pilot.press("f2")
            chart = app.screen.training.query_one("PerplexityChart")
            assert chart.by_time is not by_time  # as the last session left it
            await pilot.press("t")
            await wait_for(pilot, lambda: chart.by_time is by_time)
        assert lmcore.Settings(home).get("chart_by_time") is by_time


class HeldGenerator:
    """A real generator whose decoders wait at their 300th token until ``gate`` is set: the test sees
    the scoring mid-way, whatever the machine's speed."""

    def __init__(self, gen, gate):
        self.gen, self.gate = gen, gate

    def __getattr__(self, name):
        return getattr(self.gen, name)

    def decoder(self):
        inner, gate, count = self.gen.decoder(), self.gate, [0]

        class Decoder:
            def prefill(self, ids):
                return inner.prefill(ids)

            def step(self, token):
                count[0] += 1
                if count[0] == 300:
                    gate.wait(DEADLINE)
                return inner.step(token)

        return Decoder()


async def test_same_text_scoring_shows_progress_and_esc_stops_it(home, prose, prose_text):
    import threading

    for name in ("a", "b"):
        lmcore.train(name, arch="ngram", preset="tiny", corpus=str(prose), home=home)
    gate = threading.Event()
    app = create_app(home, generator_factory=lambda store, name: HeldGenerator(
        lmcore.Generator.from_store(store, name), gate))
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await _open_arena(pilot, app)
            await pilot.press("f3")
            same = app.screen.same_text
            await wait_for(pilot, lambda: same.query_one("TextArea").has_focus)
            same.query_one("TextSource").text = prose_text[:2000]
            summary = same.query_one("#same-summary")
            await pilot.press("ctrl+r")
            await wait_for(pilot, lambda: "%" in str(summary.render()))
            shown = str(summary.render())
            assert "scoring with a (model 1 of 2): " in shown and "Esc stops" in shown, shown
            await pilot.press("escape")
            await wait_for(pilot, lambda: "stopped" in str(summary.render()))
            gate.set()
            await wait_for(pilot, lambda: not [w for w in app.workers if w.group == "scoring" and w.is_running])
            assert same.scores is None and "stopped" in str(summary.render())
            await pilot.press("ctrl+r")  # again, to the end
            await wait_for(pilot, lambda: same.scores is not None)
            assert set(same.scores) == {"a", "b"} and "◀ best" in str(summary.render())
    finally:
        gate.set()


async def test_at_80x24_the_train_tab_shows_the_sample_without_scrolling(home):
    from lmcore import Store

    from .tui_helpers import ScriptedTrainer, fixed_entry

    name = "lstm-a-really-long-model-name-that-goes-on-and-on-" + "x" * 14  # 64: the longest
    fixed_entry(Store(home), name)
    app = create_app(home, trainer_factory=ScriptedTrainer)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("enter")
            await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
            await pilot.press("f2", "s")
            panel = app.screen.training
            sample = panel.query_one("SampleView")
            await wait_for(pilot, lambda: "sample at step 600" in str(sample.render()))
            await pilot.pause()
            assert panel.max_scroll_y == 0  # the chart, the numbers and the sample all fit
            footer = app.screen.query_one("Footer")
            assert sample.region.height >= 2 and sample.region.bottom <= footer.region.y
            header = app.screen.query_one("Header")
            assert name in str(header.format_title())  # the whole name, in the header
    finally:
        app.runs.stop_all()


async def test_at_80x24_arena_columns_wrap_their_headings_instead_of_cutting_them(home):
    from lmcore import Store

    from .tui_helpers import fixed_entry

    store = Store(home)
    for name in ("a-long-model-name-number-one", "b", "c", "d"):
        fixed_entry(store, name, arch="transformer")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        arena = await _open_arena(pilot, app, more=3)
        assert len(arena.columns) == 4
        column = arena.columns[0]
        column.describe("transformer", 1.69)
        await pilot.pause()
        info = column.query_one(".arena-info")
        text = f"prompt ppl 1.69 · transformer · {column.budget}"  # and its budget: time · tokens seen · params
        assert "params" in column.budget
        assert str(info.render()).replace("\n", " ").split() == text.split()
        assert info.size.height * info.content_size.width >= len(text)  # every character has a cell
        heading = column.query_one(".arena-name")
        assert heading.size.height * heading.content_size.width >= len(column.model_name)


async def test_at_80x24_the_picker_status_line_is_one_line(home):
    from lmcore import Store

    from .tui_helpers import ScriptedTrainer, fixed_entry

    store = Store(home)
    fixed_entry(store, "lstm-timemachine")
    (store.root / "broken").mkdir()
    app = create_app(home, trainer_factory=ScriptedTrainer)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            detail = app.screen.query_one("#picker-detail")
            table = app.screen.query_one("#models")
            await wait_for(pilot, lambda: table.row_count == 2)
            for row in range(2):
                table.move_cursor(row=row)
                await pilot.pause()
                assert str(detail.render()).strip() and detail.size.height == 1, str(detail.render())
            app.runs.start(lmcore.RunSpec.continued("lstm-timemachine"))
            await wait_for(pilot, lambda: "training: step 600 / 1,500" in str(detail.render()))
            assert detail.size.height == 1, str(detail.render())
    finally:
        app.runs.stop_all()


async def test_at_80x24_the_new_model_dialog_fits_and_keeps_its_title(home):
    from textual.widgets import Select

    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "NewModelScreen")
        await pilot.pause()
        dialog = app.screen.query_one(".dialog")
        title = dialog.query_one(".title")
        assert dialog.max_scroll_y == 0  # every field and the buttons at once
        assert "New model" in str(title.render())
        dialog.query_one("#corpus", Select).value = "__path__"  # the rows that come and go, shown
        dialog.query_one("#tokens", Select).value = "bpe"
        dialog.query_one("#arch", Select).value = "lstm"
        await wait_for(pilot, lambda: dialog.query_one("#vocab-row").display and dialog.query_one("#path-row").display)
        await pilot.pause()
        assert dialog.max_scroll_y == 0
        assert dialog.region.y < title.region.y < dialog.region.bottom
