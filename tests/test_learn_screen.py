"""The Learn screen and a lesson's screen in the app: the lessons listed with their state (a broken file
with its one line), lesson 2 (n-grams, seconds) run end to end on a built-in corpus chosen in the settings
dialog, leaving and coming back while it runs, stopping, failing, and ``lmplay --lesson``."""
from __future__ import annotations

import json
import shutil

import pytest
from textual.widgets import DataTable, Input, Markdown

import lmcore.lessons as L
import lmcore.lessons.library as library
from lmcore import LmError
from tui.app import create_app, run as run_app

from .tui_helpers import ScriptedTrainer, notes, palette_hits, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")

SIZE = (80, 24)
BROKEN = "+++\nnumber = 42\ntitle = 'half a lesson'\n"  # its front matter never closes


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """The shipped lessons 1 and 2 only, so the screens stay the same as more lessons ship."""
    folder = tmp_path / "shipped"
    folder.mkdir()
    for p in sorted(L.lessons_dir().glob("0[12]-*.md")):
        shutil.copy(p, folder / p.name)
    monkeypatch.setattr(library, "lessons_dir", lambda: folder)
    return folder


def _rows(app) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def _text(app, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


async def _open_lesson_2(pilot, app) -> None:
    await pilot.press("l")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")
    await pilot.press("down", "enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")


async def _use_builtin_corpus(pilot, app) -> None:
    """e, then the built-in corpus typed into the corpus field, Enter."""
    await pilot.press("e")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonSettingsScreen")
    app.screen.query_one("#setting-corpus", Input).value = "pythondocs"
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")


def test_learn_screen_snapshot(snap_compare, home, shipped):
    (home / "lessons").mkdir(parents=True)
    (home / "lessons" / "42-mine.md").write_text(BROKEN, "utf-8")
    assert snap_compare(create_app(home), terminal_size=SIZE, press=["l"])


def test_lesson_screen_snapshot(snap_compare, home, shipped):
    assert snap_compare(create_app(home), terminal_size=SIZE, press=["l", "down", "enter"])


async def test_broken_lesson_listed_with_its_line(home, shipped):
    (home / "lessons").mkdir(parents=True)
    (home / "lessons" / "42-mine.md").write_text(BROKEN, "utf-8")
    app = create_app(home, opens="learn")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")
        rows = _rows(app)
        assert [r[0] for r in rows] == ["1", "2", ""]
        assert rows[2][1:] == ["broken", "", "42-mine.md"] and rows[0][1] == "not started"
        await pilot.press("down", "down")
        assert "no closing '+++'" in _text(app, "#learn-detail")
        await pilot.press("enter")  # a broken lesson does not open: it says why
        assert type(app.screen).__name__ == "LearnScreen" and any("no closing" in n for n in notes(app))


async def test_learn_in_the_palette(home, shipped):
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        hits = await palette_hits(pilot, app, "Learn")
        assert [h.splitlines()[0] for h in hits] == ["Learn"]
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")


async def test_lesson_2_runs_end_to_end(home, shipped):
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        md = app.screen.query_one("#lesson-markdown", Markdown)
        assert L.UNFILLED in md.source and "not started" not in _text(app, "#lesson-status")
        await _use_builtin_corpus(pilot, app)
        assert "corpus = pythondocs" in _text(app, "#lesson-settings")
        await pilot.press("r")
        await wait_for(pilot, lambda: "done" in _text(app, "#lesson-status"))
        assert L.UNFILLED not in md.source and "Look:" in md.source and "Next:" in md.source
        progress = L.load_progress(2, home)
        assert progress.state == "done" and progress.settings == {"corpus": "pythondocs"}
        assert f"{progress.values['bigram']['best_val_ppl']:.2f}" in md.source
        assert any("Lesson 2 done" in n for n in notes(app))
        await pilot.press("v")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
        assert app.screen.names == [f"lesson02-{k}" for k in ("unigram", "bigram", "trigram", "fivegram", "eightgram")]
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        await pilot.press("ctrl+b")  # the Learn screen says it is done
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen" and _rows(app)[1][1] == "done")


async def test_leave_and_come_back_while_running_then_stop(home, shipped):
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "model 1 of 5: lesson02-unigram" in _text(app, "#lesson-status"))
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen" and _rows(app)[1][1] == "running")
        assert app.runs.is_running("lesson02-unigram")
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        chart = app.screen.query_one("#lesson-live PerplexityChart")  # attached: every point of the run
        await wait_for(pilot, lambda: len(chart.train) == 60 and len(chart.val) == 3)
        await pilot.press("s")
        await wait_for(pilot, lambda: "stopped" in _text(app, "#lesson-status") and not app.runs.runs)
        assert L.load_progress(2, home).state == "stopped"
        await pilot.press("r")  # runs again: a fresh start, its earlier model cleared
        await wait_for(pilot, lambda: "model 1 of 5" in _text(app, "#lesson-status"))
        await pilot.press("r")  # not while it runs
        assert list(app.runs.runs) == ["lesson02-unigram"]
        await pilot.press("escape")  # Esc stops it too
        await wait_for(pilot, lambda: "stopped" in _text(app, "#lesson-status") and not app.runs.runs)


class FailingTrainer(ScriptedTrainer):
    def prepare(self, spec, progress=None):
        raise LmError("the corpus ran away")


async def test_a_failed_model_fails_the_lesson_with_its_line(home, shipped):
    app = create_app(home, trainer_factory=FailingTrainer)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "failed" in _text(app, "#lesson-status"))
        assert "the corpus ran away" in _text(app, "#lesson-status")
        assert L.load_progress(2, home).state == "failed"
        assert type(app.screen).__name__ == "LessonScreen"  # no new-model dialog for a lesson's model


async def test_an_unknown_corpus_fails_the_lesson_in_one_line(home, shipped):
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonSettingsScreen")
        app.screen.query_one("#setting-corpus", Input).value = "no-such-corpus"
        await pilot.press("enter", "r")
        await wait_for(pilot, lambda: "failed" in _text(app, "#lesson-status"))
        assert "no-such-corpus" in _text(app, "#lesson-status") and type(app.screen).__name__ == "LessonScreen"
        await pilot.press("v")  # no view for a failed lesson
        assert type(app.screen).__name__ == "LessonScreen"


MEASURES_ONLY = """+++
number = 60
title = "Only counting"
chapter = "mine"
minutes = 0.1

[settings]
corpus = "pythondocs"

[[measures]]
key = "text"
kind = "corpus"
corpus = "$corpus"

[view]
kind = "compare"
look = "Nothing trained."
+++
# Counting

Characters: {text.chars}.
"""


async def test_a_lesson_that_trains_nothing_measures_and_is_done(home, shipped):
    (home / "lessons").mkdir(parents=True)
    (home / "lessons" / "60-count.md").write_text(MEASURES_ONLY, "utf-8")
    app = create_app(home, opens="learn")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")
        await pilot.press("down", "down", "enter", "r")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen"
                       and "done" in _text(app, "#lesson-status"))
        assert L.UNFILLED not in app.screen.query_one(Markdown).source
        await pilot.press("v")
        assert any("nothing to compare" in n for n in notes(app))


async def test_a_lesson_left_running_shows_interrupted(home, shipped):
    (home / "lessons").mkdir(parents=True)
    (home / "lessons" / "state-02.json").write_text(json.dumps(
        {"format": 1, "lesson": 2, "state": "running", "settings": {}, "values": {}}), "utf-8")
    app = create_app(home, opens="learn")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")
        assert _rows(app)[1][1] == "interrupted"
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        assert "r runs it again" in _text(app, "#lesson-status")


async def test_settings_dialog_refuses_a_bad_value(home, shipped, tmp_path):
    lesson = L.read_lesson(shipped / next(p.name for p in shipped.iterdir() if p.name.startswith("02")))
    exported = tmp_path / "mine.md"
    exported.write_text(L.dumps(lesson.with_settings({"corpus": "pythondocs"})), "utf-8")
    app = create_app(home, opens=(L.find(str(exported)), True))  # lmplay --lesson FILE: its own settings
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        assert "corpus = pythondocs" in _text(app, "#lesson-settings")
        await pilot.press("e")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonSettingsScreen")
        app.screen.query_one("#setting-corpus", Input).value = ""
        await pilot.press("enter")
        assert type(app.screen).__name__ == "LessonSettingsScreen" and any("setting corpus" in n for n in notes(app))
        await pilot.press("escape")
        await wait_for(pilot, lambda: "corpus = pythondocs" in _text(app, "#lesson-settings"))


def test_lmplay_lesson_bad_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.md"
    bad.write_text(BROKEN, "utf-8")
    assert run_app(["--lesson", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: lesson bad.md") and err.count("\n") == 1 and "Traceback" not in err
    assert run_app(["--lesson", str(tmp_path / "none.md")]) == 1
    assert "no lesson file" in capsys.readouterr().err


async def test_a_lesson_model_training_elsewhere_is_not_cleared(home, shipped):
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        _, spec = L.run_specs(L.find(2, home))[1]
        app.runs.start(spec)  # lesson02-bigram, trained from its own screen
        await pilot.press("r")
        assert any("'lesson02-bigram' is training: stop it first" in n for n in notes(app))
        assert list(app.runs.runs) == ["lesson02-bigram"] and L.load_progress(2, home).state == "not started"
        app.runs.stop_all()
        await wait_for(pilot, lambda: not app.runs.runs)


async def test_quitting_during_a_lesson_stops_it_and_its_run_saves(home, shipped):
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "model 1 of 5" in _text(app, "#lesson-status"))
        run = app.runs.get("lesson02-unigram")
        await app.shutdown_workers()  # what ctrl+q does before the app exits
        assert run.closed.is_set() and run.end is not None and run.end.reason == "stopped"
    assert L.load_progress(2, home).state == "stopped"


async def test_lesson_1_view_opens_the_inspect_tab_at_its_view(home, shipped):
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        await _use_builtin_corpus(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "done" in _text(app, "#lesson-status"))
        await pilot.press("v")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        screen = app.screen
        assert screen.model_name == "lesson01-words" and screen.query_one("TabbedContent").active == "inspect"
        assert screen.query_one("#inspect-views").active == "view-corpus"


ONE_MODEL = """+++
number = 61
title = "One n-gram"
chapter = "mine"
minutes = 0.1

[settings]
corpus = "pythondocs"

[[models]]
key = "tri"
arch = "ngram"
corpus = "$corpus"
options = {{ order = 3 }}
train = {{ steps = 1 }}

[view]
kind = "{kind}"
model = "tri"
{text}
look = "Look."
+++
# One n-gram: {{tri.best_val_ppl:.2f}}
"""


@pytest.mark.parametrize("kind, tab, field", [("generate", "generate", "#prompt"), ("fill", "fill", "#fill-text"),
                                              ("chart", "train", None)])
async def test_a_lesson_view_opens_its_tab_with_its_text(home, shipped, kind, tab, field):
    (home / "lessons").mkdir(parents=True)
    text = 'text = "The _ of"' if field else ""
    (home / "lessons" / "61-one.md").write_text(ONE_MODEL.format(kind=kind, text=text), "utf-8")
    app = create_app(home, opens=(L.find(61, home), False))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        await pilot.press("r")
        await wait_for(pilot, lambda: "done" in _text(app, "#lesson-status"))
        await pilot.press("v")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        assert app.screen.query_one("TabbedContent").active == tab
        if field:
            assert app.screen.query_one(field, Input).value == "The _ of"
        if kind == "fill":  # filled at once: its candidates are the view's point
            await wait_for(pilot, lambda: "1 blank filled" in _text(app, "#fill-state"))
        await pilot.press("ctrl+b")  # back to the lesson
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")


class SlowStartTrainer(ScriptedTrainer):
    """Its corpus takes until the run is stopped to prepare: stopped, it saved nothing."""

    def prepare(self, spec, progress=None):
        self.stop.wait(120)
        return self


async def test_stopping_a_lesson_before_its_model_saved_is_no_failed_start(home, shipped):
    app = create_app(home, trainer_factory=SlowStartTrainer)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        await pilot.press("r")
        await wait_for(pilot, lambda: "model 1 of 5" in _text(app, "#lesson-status"))
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.runs.runs)
        await pilot.pause()
        assert "stopped" in _text(app, "#lesson-status") and type(app.screen).__name__ == "LessonScreen"
        assert not any("new-model dialog" in n for n in notes(app))


NEXT_ORDER = """+++
number = 62
title = "Order"
chapter = "mine"
minutes = 0.1

[settings]
corpus = "pythondocs"
order = 3

[[models]]
key = "a"
arch = "ngram"
corpus = "$corpus"
options = { order = "$order" }
train = { steps = 1 }

[[models]]
key = "b"
arch = "ngram"
corpus = "$corpus"
options = { order = 1 }
train = { steps = 1 }

[view]
look = "Compare them."

[next]
setting = "order"
value = 2
say = "Try order 2."
+++
# Order: {a.best_val_ppl:.2f} against {b.best_val_ppl:.2f}
"""


async def test_n_sets_the_next_setting_and_runs_again(home, shipped):
    (home / "lessons").mkdir(parents=True)
    (home / "lessons" / "62-order.md").write_text(NEXT_ORDER, "utf-8")
    app = create_app(home, opens=(L.find(62, home), False))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        await pilot.press("r")
        await wait_for(pilot, lambda: "done" in _text(app, "#lesson-status"))
        await pilot.press("n")
        await wait_for(pilot, lambda: L.load_progress(62, home).settings.get("order") == 2
                       and L.load_progress(62, home).state == "done" and "done" in _text(app, "#lesson-status"))
        assert "order = 2" in _text(app, "#lesson-settings")
        assert L.load_progress(62, home).settings == {"corpus": "pythondocs", "order": 2}
        assert any("order = 2: the lesson runs again" in n for n in notes(app))


async def test_changed_settings_stay_when_the_learner_leaves_and_comes_back(home, shipped):
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        await _open_lesson_2(pilot, app)
        await _use_builtin_corpus(pilot, app)
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LearnScreen")
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        assert "corpus = pythondocs" in _text(app, "#lesson-settings")


SHIPPED_LESSONS = sorted(p.name for p in L.lessons_dir().glob("*.md"))


@pytest.mark.parametrize("file", SHIPPED_LESSONS)
async def test_every_shipped_lesson_opens_its_view_after_a_tiny_run(home, file):
    """Each shipped lesson run at one step a model on a built-in corpus (tests/test_lessons.py's settings),
    then its screen shows it done and v opens the view that makes its point."""
    from .test_lessons import tiny

    lesson = tiny(L.read_lesson(L.lessons_dir() / file))
    L.run(lesson, home=home, steps=1)
    app = create_app(home, opens=(L.find(lesson.number, home), False))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: type(app.screen).__name__ == "LessonScreen")
        await wait_for(pilot, lambda: "done" in str(app.screen.query_one("#lesson-status").render()))
        await pilot.press("v")
        want = "CompareScreen" if lesson.view.kind == "compare" else "ModelScreen"
        await wait_for(pilot, lambda: type(app.screen).__name__ == want)
        if want == "ModelScreen":
            tab = {"inspect": "inspect", "fill": "fill", "generate": "generate", "chat": "generate", "chart": "train"}
            assert app.screen.model_name == lesson.model_name(lesson.view.model)
            assert app.screen.query_one("TabbedContent").active == tab[lesson.view.kind]
