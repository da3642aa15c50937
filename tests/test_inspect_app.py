"""The Inspect tab: each view shows what lmcore computes headless for the same model and text."""
import pytest
from textual.widgets import Input, Select

import lmcore
from lmcore import Store
from lmcore.inspect import trace_text, zipf_stats
from tui.app import create_app
from tui.screens.model import ModelScreen
from tui.screens.new_model import NewModelScreen
from tui.widgets.generation import Continuation

from .tui_helpers import (fixed_entry, new_model_dialog_on_path, notes, open_inspect,  # noqa: F401
                          record_notifications, wait_for)

TEXT = "a bad cafe\nhead ache\nbeef fed a dace\n'a fad' bead"


pytestmark = pytest.mark.usefixtures("record_notifications")


async def _inspect(pilot, app, view: str, text: str | None = TEXT):
    """Open the only model's Inspect tab on ``view``; with a text, type it and press ctrl+r."""
    pane = await open_inspect(pilot, app, view, text)
    await pilot.pause()
    return pane, pane.view


def _summary(view) -> str:
    return str(view.query_one(".view-summary").render())


async def test_surprisal_view_shows_the_models_probabilities_and_ranks(home):
    store = Store(home)
    fixed_entry(store, "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, view = await _inspect(pilot, app, "surprisal")
        score = lmcore.score_text(lmcore.Generator.from_store(store, "m"), TEXT, top=5)
        assert f"ppl {score.ppl:.2f}" in _summary(view) and f"{score.bits_per_char:.3f} bits/char" in _summary(view)
        text = view.query_one(Continuation)
        assert text.plain == TEXT
        text.focus()  # the cursor starts on the first scored token
        await pilot.pause()
        for t in score.tokens[:3]:
            line = str(view.query_one(".view-token").render())
            assert f"p={t.prob:.3f} rank {t.rank}" in line, line
            await pilot.press("right")


async def test_neuron_view_colours_the_text_by_the_units_own_values(home):
    store = Store(home)
    fixed_entry(store, "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, view = await _inspect(pilot, app, "neurons")
        trace = trace_text(lmcore.Generator.from_store(store, "m"), TEXT)
        assert "inside quotes:" in str(view.query_one(".neuron-ranking").render())
        view.query_one("#neuron-value", Select).value = "f"
        view.query_one("#neuron-unit", Input).value = "7"
        await wait_for(pilot, lambda: "layer 0 f7" in _summary(view))  # drawn once the typing pauses
        view.query_one(Continuation).focus()
        await pilot.pause()
        await pilot.press("right")
        value = trace.unit(0, "f", 7)[1]
        assert f"f7 = {value:+.3f}" in str(view.query_one(".view-token").render())
        view.query_one("#neuron-unit", Input).value = "999"  # no such unit: said, nothing breaks
        await wait_for(pilot, lambda: "unit must be between 0 and 63" in _summary(view))
        view.query_one("#neuron-unit", Input).value = "-"
        await wait_for(pilot, lambda: "unit must be a whole number from 0 to 63" in _summary(view))
        view.query_one("#neuron-unit", Input).value = "7"
        pane.query_one(".source-text").focus()
        await pilot.press("ctrl+r")  # a new run keeps the unit chosen by hand
        await wait_for(pilot, lambda: not pane.busy)
        assert "layer 0 f7" in _summary(view) and view.query_one("#neuron-unit", Input).value == "7"


async def test_attention_view_and_a_view_the_model_cannot_show(home):
    store = Store(home)
    fixed_entry(store, "tf", arch="transformer")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, view = await _inspect(pilot, app, "attention")
        assert "layer 0 head 0 mostly looks at" in _summary(view)
        view.query_one("#attention-head", Select).value = 1
        await pilot.pause()
        assert "layer 0 head 1 mostly looks at" in _summary(view)
        pane.query_one("#inspect-views").active = "view-neurons"
        await pilot.pause()
        pane.query_one(".source-text").focus()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("neurons are shown for rnn" in n for n in notes(app)))
        assert isinstance(app.screen, ModelScreen)


async def test_the_attention_view_of_an_encoder_decoder_is_its_alignment(home):
    store = Store(home)
    fixed_entry(store, "s2s", arch="seq2seq-transformer")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, view = await _inspect(pilot, app, "attention", text="a bad cafe\nbad\tdab")  # the last line
        assert "layer 0 head 0 · reply: dab · rows: its 4 tokens, columns: the source's 3" in _summary(view)
        assert "source" in str(view.query_one(".attention-map").render())
        view.query_one("#attention-head", Select).value = 1
        await pilot.pause()
        assert "layer 0 head 1 · reply: dab" in _summary(view)


async def test_gradient_and_corpus_charts(home, prose, prose_text):
    lmcore.train("rec", arch="gru", preset="tiny", corpus=str(prose), steps=2, home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, view = await _inspect(pilot, app, "gradients", text=None)  # a chart computes when shown
        legend = str(view.query_one(".chart-legend").render())
        assert "rnn" in legend and "lstm, forget bias 1" in legend and "this model" in legend
        assert "keeps" in _summary(view) and "the plain RNN's gradient" in _summary(view)
        assert not pane.query_one("TextSource").display  # no text for a chart
        pane.query_one("#inspect-views").active = "view-corpus"
        await wait_for(pilot, lambda: getattr(pane.view, "shown", False))
        words = zipf_stats(prose_text, "word").tokens
        assert f"{words:,} word tokens" in _summary(pane.view)
        pane.view.query_one("#zipf-level", Select).value = "char"
        await wait_for(pilot, lambda: "char tokens" in _summary(pane.view))


async def test_the_new_model_dialog_shows_a_corpus_through_zipfs_law(home, prose):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await new_model_dialog_on_path(pilot, app, prose)
        app.screen.query_one("#zipf").press()
        await wait_for(pilot, lambda: type(app.screen).__name__ == "CorpusScreen")
        view = app.screen.query_one("CorpusView")
        await wait_for(pilot, lambda: getattr(view, "shown", False))
        assert "prose (" in _summary(view) and "word tokens" in _summary(view)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))


async def test_a_long_view_shows_progress_and_quitting_stops_it(home):
    store = Store(home)
    fixed_entry(store, "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await pilot.press("f4")
        pane = app.screen.query_one("InspectPane")
        pane.query_one("#inspect-views").active = "view-neurons"
        await pilot.pause()
        pane.query_one("TextSource").text = TEXT * 400  # 20,000 tokens: a few seconds
        state, shown, running = pane.query_one("#inspect-state"), [], []
        update = state.update

        def recording(content="", **kw):
            # every line the state shows, as it shows it (a fast machine may finish between two looks);
            # at the first progress line the worker waits for this very call, so it is running now
            if "%" in str(content) and not running:
                running.extend(w for w in app.workers if w.group == "inspect" and not w.is_finished)
            shown.append(str(content))
            return update(content, **kw)

        state.update = recording
        pane.query_one(".source-text").focus()
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("%" in line for line in shown))
        assert running  # the view was computing when its progress showed
        await app.quit_and_wait()
        assert all(w.is_finished for w in running)


async def test_a_corpus_that_cannot_be_read_closes_only_its_own_window(home, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", "utf-8")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await new_model_dialog_on_path(pilot, app, empty)
        app.screen.query_one("#zipf").focus()
        await pilot.press("enter", "enter")
        await wait_for(pilot, lambda: any("empty" in n for n in notes(app)))
        # every window the two Enters opened has read (and failed on) the corpus and closed
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen)
                       and all(w.is_finished for w in app.workers if w.group == "inspect"))
        assert isinstance(app.screen, NewModelScreen)  # the dialog and its choices are still there
        assert app.screen.query_one("#path", Input).value == str(empty)
        assert 1 <= sum("empty" in n for n in notes(app)) <= 2  # one per Enter, at most


async def test_a_birnns_units_are_shown_in_both_directions(home):
    """A birnn (it does not generate) opens its Inspect tab's neuron view on its own units: the layer list
    names the forward and the backward layers, and the summary says which direction is drawn."""
    store = Store(home)
    fixed_entry(store, "bi", arch="birnn")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane, view = await _inspect(pilot, app, "neurons")
        assert not notes(app)
        layer = view.query_one("#neuron-layer", Select)
        ranking = str(view.query_one(".neuron-ranking").render())
        assert "forward 0" in ranking or "backward 0" in ranking
        layer.value = 0
        await wait_for(pilot, lambda: _summary(view).startswith("forward 0 "))
        layer.value = 1  # the second entry: the backward layer of this one-layer model
        await wait_for(pilot, lambda: _summary(view).startswith("backward 0 "))
        assert "red above" in _summary(view)


async def test_the_surprisal_of_a_model_that_does_not_generate_is_one_notification(home):
    """Surprisal scores text left to right: a birnn cannot, and says so in one line (it was an
    AttributeError on a loaded model)."""
    store = Store(home)
    fixed_entry(store, "bi", arch="birnn")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await open_inspect(pilot, app, "surprisal", TEXT, shown=False)
        await wait_for(pilot, lambda: notes(app))
        said = " ".join(notes(app))
        assert "fills blanks" in said and "AttributeError" not in said
