"""Snapshot tests at 80x24 (pytest-textual-snapshot): the picker, the training panel mid-training
(a scripted, deterministic run) and the generation pane (an n-gram, greedy)."""
import json

import lmcore
from lmcore import Store
from textual.widgets import Input
from tui.app import create_app

from .tui_helpers import ScriptedTrainer, fixed_entry, open_inspect, wait_for

SIZE = (80, 24)


def _steady_cursor(area) -> None:
    """A text area's cursor shown, not blinking (a blink caught mid-way made snapshots flaky). Its cached
    lines are dropped too: one drawn in a blink's off phase would otherwise be reused without the cursor."""
    area.cursor_blink = False
    area.notify_style_update()
    area.refresh()


def test_picker(snap_compare, home):
    store = Store(home)
    fixed_entry(store, "lstm-timemachine", ppl=4.46)
    fixed_entry(store, "tf-shakespeare", arch="transformer", ppl=4.30, corpus="tinyshakespeare")
    (store.root / "broken").mkdir()
    assert snap_compare(create_app(home), terminal_size=SIZE)


def test_leaderboard(snap_compare, home):
    """b in the picker: each corpus's models ranked by validation bits per character."""
    store = Store(home)
    fixed_entry(store, "lstm-timemachine", ppl=4.46)
    fixed_entry(store, "ngram-timemachine", arch="ngram", ppl=6.10)
    fixed_entry(store, "tf-timemachine", arch="transformer", ppl=4.05)
    fixed_entry(store, "tf-shakespeare", arch="transformer", ppl=4.30, corpus="tinyshakespeare")
    (store.root / "broken").mkdir()
    assert snap_compare(create_app(home), terminal_size=SIZE, press=["b"])


def test_training_panel_mid_training(snap_compare, home):
    fixed_entry(Store(home), "lstm-timemachine")
    app = create_app(home, trainer_factory=ScriptedTrainer)

    async def run_before(pilot):
        await pilot.press("enter")
        await pilot.pause()
        app.screen.action_show_tab("train")
        await pilot.pause()
        panel = app.screen.training
        panel.action_start()
        chart = panel.query_one("PerplexityChart")
        await wait_for(pilot, lambda: len(chart.val) == 3 and len(chart.train) == 60)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await wait_for(pilot, lambda: chart.drawn)

    try:
        assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
    finally:
        app.runs.stop_all()


# the generation pane's text: written by the test, so the snapshot is the same on every Python (the
# built-in corpus is Python's own documentation, which changes with its version)
OBJECTS = """\
The object of a sentence is the thing the verb acts upon. The object of a game is to win it, and the
object of a lesson is to learn something new. An object in a program is a value with a type, and every
object has an identity that never changes while it lives. Two names can refer to the same object; then
a change made through one name is seen through the other. The object is created when it is needed and
forgotten when no name refers to it any more. A list is an object that holds other objects in order,
and a dictionary is an object that maps keys to values. The type of an object decides what can be done
with it: numbers can be added, strings can be joined, and functions can be called. Some objects can be
changed after they are made, and some cannot; the first kind are called mutable and the second kind
immutable. A string is immutable, so every change makes a new string, while a list can grow and shrink
in place. The object model of a language is the set of rules that say how its objects behave.
"""


def test_generation_pane(snap_compare, home, tmp_path):
    corpus = tmp_path / "objects.txt"
    corpus.write_text(OBJECTS * 8, "utf-8")
    lmcore.train("ngram-docs", arch="ngram", preset="small", corpus=str(corpus), home=home)
    app = create_app(home)

    async def run_before(pilot):
        await pilot.press("enter")
        await pilot.pause()
        gen = app.screen.generation
        gen.query_one("TemperatureControl").set_value(0.0)
        gen.query_one("#set-max_tokens", Input).value = "120"
        gen.query_one("#prompt", Input).value = "The object"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not gen.generating and gen.query("Turn"))
        for field in app.screen.query(Input):
            field.cursor_blink = False  # a blinking cursor made this snapshot flaky (caught mid-blink)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_reopened_model_chart_restores_the_whole_history(snap_compare, home):
    """A saved model's chart: every training-loss point and evaluation, the best one, the unigram and the
    n-gram of the same text as reference lines."""
    import math

    store = Store(home)
    fixed_entry(store, "lstm-timemachine")
    fixed_entry(store, "ngram-timemachine", arch="ngram", ppl=6.8)
    p = store.path("lstm-timemachine") / "meta.json"
    meta = json.loads(p.read_text())
    meta["curve"] = [[s, 4.2 * math.exp(-s / 180) + 1.45, s * 0.11] for s in range(10, 1510, 10)]
    meta["history"] = [{"step": s, "val_loss": 4.2 * math.exp(-s / 180) + 1.52, "elapsed": s * 0.11}
                       for s in range(200, 1600, 200)]
    meta["unigram_val_loss"] = 3.2
    p.write_text(json.dumps(meta))
    app = create_app(home)

    async def run_before(pilot):
        await pilot.press("enter")
        await wait_for(pilot, lambda: hasattr(app.screen, "training"))
        app.screen.action_show_tab("train")
        chart = app.screen.training.query_one("PerplexityChart")
        await wait_for(pilot, lambda: chart.drawn and chart.val)
        for field in app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_too_small_terminal_shows_a_notice(snap_compare, home):
    assert snap_compare(create_app(home), terminal_size=(60, 20))


def test_new_model_dialog(snap_compare, home, monkeypatch):
    monkeypatch.setenv("LMPLAY_CORPUS_MIRROR", str(home / "no-mirror"))  # the same proposal on every machine

    async def run_before(pilot):
        await pilot.press("n")
        await wait_for(pilot, lambda: type(pilot.app.screen).__name__ == "NewModelScreen")
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False

    assert snap_compare(create_app(home), terminal_size=SIZE, run_before=run_before)


def _compare_app(home):
    store = Store(home)
    fixed_entry(store, "lstm-timemachine", ppl=4.46)
    fixed_entry(store, "ngram-timemachine", arch="ngram", ppl=6.10)
    fixed_entry(store, "tf-timemachine", arch="transformer", ppl=4.05)
    return create_app(home)


async def _to_compare(pilot, app):
    """c in the picker, tick the next two models, Compare."""
    await pilot.press("c")
    await pilot.pause()
    await pilot.press("down", "space", "down", "space", "tab", "tab", "enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "CompareScreen")
    return app.screen


def test_arena(snap_compare, home):
    """Three models continue one prompt with the same settings and seed, a column each."""
    app = _compare_app(home)

    async def run_before(pilot):
        arena = (await _to_compare(pilot, app)).arena
        arena.query_one("#set-max_tokens", Input).value = "90"
        arena.query_one("#set-seed", Input).value = "7"
        arena.query_one("#arena-prompt", Input).value = "a cab "
        await pilot.press("enter")
        await wait_for(pilot, lambda: not arena.generating and arena.columns[0].continuation is not None)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_same_text(snap_compare, home):
    """One text scored by each model: loss per token, bits per character, coloured by which of the
    first two found each token likelier."""
    app = _compare_app(home)

    async def run_before(pilot):
        screen = await _to_compare(pilot, app)
        await pilot.press("f3")
        same = screen.same_text
        same.query_one("TextArea").text = "a bad cafe\nhead ache\nbeef fed a dace"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: same.scores is not None and same.query("Continuation"))
        _steady_cursor(same.query_one("TextArea"))
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


INSPECT_TEXT = "a bad cafe\nhead ache\nbeef fed a dace\n'a fad' bead, a deaf cab\nfade"


def _inspect_snapshot(snap_compare, app, view: str, text: str | None = INSPECT_TEXT, after=None):
    """A model's Inspect tab on ``view`` (with ``text`` typed and shown)."""

    async def run_before(pilot):
        pane = await open_inspect(pilot, app, view, text)
        if after:
            await after(pilot, pane.view)
        _steady_cursor(pane.query_one("TextArea"))
        await pilot.pause()

    return snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_inspect_surprisal(snap_compare, home):
    fixed_entry(Store(home), "lstm-timemachine")
    assert _inspect_snapshot(snap_compare, create_app(home), "surprisal")


def test_inspect_neurons(snap_compare, home):
    fixed_entry(Store(home), "lstm-timemachine")
    assert _inspect_snapshot(snap_compare, create_app(home), "neurons")


def test_inspect_attention(snap_compare, home):
    fixed_entry(Store(home), "tf-timemachine", arch="transformer")

    async def head_1(pilot, view):
        view.query_one("#attention-head").value = 1
        await pilot.pause()

    assert _inspect_snapshot(snap_compare, create_app(home), "attention", after=head_1)


def test_inspect_gradients(snap_compare, home):
    fixed_entry(Store(home), "lstm-timemachine")
    assert _inspect_snapshot(snap_compare, create_app(home), "gradients", text=None)


def test_inspect_corpus(snap_compare, home, tmp_path):
    words = ["".join(chr(97 + (i // 26 ** k) % 26) for k in range(2)) + "x" for i in range(1, 300)]
    text = " ".join(w for i, w in enumerate(words, 1) for _ in range(max(1, 600 // i)))  # a Zipf-like text
    corpus = tmp_path / "zipfian.txt"
    corpus.write_text(text, "utf-8")
    lmcore.train("ngram-zipfian", arch="ngram", preset="tiny", corpus=str(corpus), home=home)
    assert _inspect_snapshot(snap_compare, create_app(home), "corpus", text=None)
