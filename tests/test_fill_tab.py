"""The model screen's Fill tab, driven as a user drives it: a text with blanks typed, Enter, and what the
tab shows (the filled text, each blank's candidates with probabilities, how the model filled them); bad
input as one notification; a model that cannot fill says why in the tab."""
import random

import pytest
from textual.widgets import Input

import lmcore
from lmcore import Store
from tui.app import create_app

from . import factories
from .tui_helpers import notes, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")

SENTENCES = ["i am very hungry .", "you are so tired .", "we were not cold ."]
SIZE = (80, 24)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A word-level birnn, forward LSTM and n-gram on three sentences in a random order (the answers are obvious)."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("filltab")
    corpus = root / "sentences.txt"
    corpus.write_text("\n".join(rng.choice(SENTENCES) for _ in range(3000)), "utf-8")
    lmcore.train("ng", arch="ngram", preset="small", corpus=str(corpus), tokens="word", home=root / "home")
    for name, arch in (("bi", "birnn"), ("fw", "lstm"), ("bt", "bert")):
        done = lmcore.train(name, arch=arch, preset="tiny", corpus=str(corpus), tokens="word", steps=150,
                            eval_every=150, lr=1e-2, home=root / "home")
        assert done.saved
    return root / "home"


def _text(widget) -> str:
    return str(widget.render())


async def _open(pilot, app, name: str):
    """Open ``name`` from the picker; the screen."""
    table = app.screen.query_one("#models")
    await wait_for(pilot, lambda: table.row_count > 0)
    names = [r.name for r in app.screen.rows]
    table.move_cursor(row=names.index(name))
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
    return app.screen


async def _fill(pilot, pane, text: str):
    """Type ``text`` into the Fill tab's field and press Enter; wait until the answer is shown."""
    field = pane.query_one("#fill-text", Input)
    field.value = ""
    shown = pane.result
    await pilot.click(field)
    field.value = text
    await pilot.press("end", "enter")
    await wait_for(pilot, lambda: not pane.filling and (pane.result is not shown or notes(pane.app)))


async def test_a_birnn_opens_on_fill_and_fills_from_both_sides(trained):
    app = create_app(trained)
    async with app.run_test(size=SIZE) as pilot:
        scr = await _open(pilot, app, "bi")
        await wait_for(pilot, lambda: scr.query_one("TabbedContent").active == "fill")  # it cannot generate
        pane = scr.query_one("FillPane")
        assert "Both directions" in _text(pane.query_one("#fill-method"))
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press(*"i am _ hungry .", "enter")
        await wait_for(pilot, lambda: pane.result is not None)
        shown = _text(pane.query_one("#fill-result"))
        assert shown.splitlines()[0] == "i am very hungry."
        rows = [line.split() for line in shown.splitlines() if "%" in line]
        assert len(rows) == 5 and rows[0][0] == "very"  # top 5, the answer first, with its bar
        probs = [float(r[-1].rstrip("%")) for r in rows]
        assert probs == sorted(probs, reverse=True) and probs[0] > 50 and "█" in shown
        assert "1 blank filled" in _text(pane.query_one("#fill-state"))
        assert not notes(app)
        await pilot.press("ctrl+down", "ctrl+down")  # fewer candidates: filled again
        await wait_for(pilot, lambda: not pane.filling and len(pane.result.blanks[0].candidates) == 3)
        assert sum("%" in line for line in _text(pane.query_one("#fill-result")).splitlines()) == 3


async def test_a_bert_fills_every_blank_at_once_and_says_so(trained):
    app = create_app(trained)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one("#models")
        await wait_for(pilot, lambda: table.row_count > 0)
        assert str(table.get_row("bt")[4]).endswith(" mask")  # its perplexity is of masked tokens
        assert not str(table.get_row("bi")[4]).endswith("mask")
        scr = await _open(pilot, app, "bt")
        await wait_for(pilot, lambda: scr.query_one("TabbedContent").active == "fill")  # it cannot generate
        pane = scr.query_one("FillPane")
        assert "Mask-predict" in _text(pane.query_one("#fill-method"))
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press(*"we _ not _ .", "enter")
        await wait_for(pilot, lambda: pane.result is not None)
        shown = _text(pane.query_one("#fill-result"))
        assert "blank 1 · filled" in shown and "blank 2 · filled" in shown and not notes(app)


async def test_a_forward_model_says_it_scores_and_fills_two_blanks(trained):
    app = create_app(trained)
    async with app.run_test(size=SIZE) as pilot:
        scr = await _open(pilot, app, "fw")
        assert scr.query_one("TabbedContent").active == "generate"
        await pilot.press("f10")
        pane = scr.query_one("FillPane")
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press(*"we _ not _ .", "enter")
        await wait_for(pilot, lambda: pane.result is not None)
        method = _text(pane.query_one("#fill-method"))
        assert "slower" in method and "top 100 candidates" in method
        shown = _text(pane.query_one("#fill-result"))
        assert shown.splitlines()[0] == "we were not cold."
        assert "blank 1 · filled" in shown and "blank 2 · filled" in shown
        assert "2 blanks filled" in _text(pane.query_one("#fill-state"))


@pytest.mark.parametrize("text,says", [
    ("i am very hungry .", "no blank"),
    ("_ _", "only blanks"),
    ("i am ve_y hungry .", "inside the word"),
])
async def test_bad_input_is_one_notification(trained, text, says):
    app = create_app(trained)
    async with app.run_test(size=SIZE) as pilot:
        scr = await _open(pilot, app, "bi")
        pane = scr.query_one("FillPane")
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press(*text, "enter")
        await wait_for(pilot, lambda: notes(app))
        assert len(notes(app)) == 1 and says in notes(app)[0] and "\n" not in notes(app)[0]
        assert "Traceback" not in notes(app)[0] and pane.result is None and not pane.filling


async def test_a_text_longer_than_the_window_and_an_unknown_token(home):
    store = Store(home)
    factories.save(store, "tf", "transformer", context=8)  # characters a-h, a window of 8
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        scr = await _open(pilot, app, "tf")
        await pilot.press("f10")
        pane = scr.query_one("FillPane")
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press(*"abc_defgh abc", "enter")
        await wait_for(pilot, lambda: notes(app))
        assert "longer than the model's context of 8" in notes(app)[0] and pane.result is None
        await pilot.press(*["backspace"] * 13, *"ab_z", "enter")
        await wait_for(pilot, lambda: pane.result is not None)
        assert "z" in pane.result.unknown and "read as <unk>" in notes(app)[-1]
        assert "read as <unk>" in _text(pane.query_one("#fill-result"))


async def test_a_model_that_cannot_fill_says_why_in_the_tab(home):
    store = Store(home)
    factories.save(store, "cheat", "lstm", bidirectional=True)
    app = create_app(home)
    async with app.run_test(size=SIZE) as pilot:
        scr = await _open(pilot, app, "cheat")
        assert scr.query_one("TabbedContent").active == "train"  # it can neither generate nor fill
        await pilot.press("f10")
        pane = scr.query_one("FillPane")
        said = _text(pane.query_one("#fill-method"))
        assert "cannot fill blanks" in said and "bidirectional" in said
        await pilot.press(*"a _ b", "enter")
        await wait_for(pilot, lambda: notes(app))
        assert "cannot fill blanks" in notes(app)[0]
        assert pane.result is None


async def test_a_new_request_replaces_the_old_and_esc_stops(trained):
    """Fillings held until the test lets them go: the first is replaced by the second, which Esc stops;
    neither answer is shown when it arrives, the next request's is."""
    import threading

    app = create_app(trained)
    async with app.run_test(size=SIZE) as pilot:
        real, gate, asked = app.core.fill, threading.Event(), []

        def held(name, text, top=5):
            asked.append(text)
            gate.wait()
            return real(name, text, top)

        app.core.fill = held
        scr = await _open(pilot, app, "fw")
        await pilot.press("f10")
        pane = scr.query_one("FillPane")
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press(*"i am _ hungry .", "enter")
        assert pane.filling and "filling" in _text(pane.query_one("#fill-state"))
        pane.query_one("#fill-text", Input).value = "you _ so tired ."
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(asked) == 2)
        await pilot.press("escape")
        assert not pane.filling and "stopped" in _text(pane.query_one("#fill-state"))
        gate.set()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert pane.result is None and "stopped" in _text(pane.query_one("#fill-state"))
        pane.query_one("#fill-text", Input).value = "we _ not cold ."
        await pilot.press("enter")
        await wait_for(pilot, lambda: pane.result is not None and not pane.filling)
        assert _text(pane.query_one("#fill-result")).splitlines()[0] == "we were not cold."


def test_fill_tab_snapshot(snap_compare, trained):
    """The Fill tab at 80x24 after filling a blank with an n-gram (counted: the same numbers everywhere), three
    candidates (ctrl+down twice): the fourth and fifth are at the smoothing's floor, 5.2e-13, where two CPUs
    order them differently by the last bits of their sums."""
    app = create_app(trained)

    async def run_before(pilot):
        scr = await _open(pilot, app, "ng")
        await pilot.press("f10")
        pane = scr.query_one("FillPane")
        await wait_for(pilot, lambda: pane.query_one("#fill-text").has_focus)
        await pilot.press("ctrl+down", "ctrl+down")
        await wait_for(pilot, lambda: pane.top == 3)
        await pilot.press(*"i am _ hungry .", "enter")
        await wait_for(pilot, lambda: pane.result is not None)
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
