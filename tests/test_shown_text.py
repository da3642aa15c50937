"""What the app shows of a text is the text it scored: a text with CRLF line ends is shown once, with its
line ends, not with a character repeated per CR (the views used to cut the first, unscored token out of
the text as given, by the length of the tokens of the text as preprocessed)."""
import pytest
from textual.widgets import TextArea

import lmcore
from lmcore import Store
from tui.app import create_app
from tui.screens.compare import ChooseModelsScreen, CompareScreen
from tui.widgets.generation import Continuation

from .tui_helpers import fixed_entry, open_inspect, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")

LINES = ["a bad cafe", "head ache", "beef fed a dace"]
CRLF, SHOWN = "\r\n".join(LINES), "\n".join(LINES)


async def test_the_surprisal_view_shows_crlf_text_once(home):
    fixed_entry(Store(home), "m")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = await open_inspect(pilot, app, "surprisal", CRLF)
        assert pane.view.query_one(Continuation).plain == SHOWN


async def test_the_same_text_view_shows_crlf_text_once(home):
    store = Store(home)
    fixed_entry(store, "a-lstm")
    fixed_entry(store, "b-ngram", arch="ngram")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChooseModelsScreen))
        await pilot.press("down", "space", "tab", "tab", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("f3")
        same = app.screen.same_text
        await wait_for(pilot, lambda: same.query_one(TextArea).has_focus)
        same.query_one(TextArea).text = CRLF
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: same.scores is not None and same.query(Continuation))
        assert same.query_one(Continuation).plain == SHOWN


async def test_the_corpus_chart_reads_a_models_corpus_in_the_encoding_it_was_trained_with(home, tmp_path, prose_text):
    from lmcore.inspect import zipf_stats

    p = tmp_path / "utf16.txt"
    p.write_text(prose_text[:20_000], "utf-16")
    lmcore.train("m", arch="gru", preset="tiny", corpus=str(p), encoding="utf-16", steps=2, home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = await open_inspect(pilot, app, "corpus", None)
        summary = str(pane.view.query_one(".view-summary").render())
        assert f"{zipf_stats(prose_text[:20_000], 'word').tokens:,} word tokens" in summary


def test_a_token_of_spaces_is_shown_as_open_boxes():
    """A candidate that is a space would read as an empty label: it shows as ␣ (one per space); other
    tokens read as on one line."""
    assert lmcore.visible_token(" ") == "␣" and lmcore.visible_token("  ") == "␣␣"
    assert lmcore.visible_token("\n") == "\\n" and lmcore.visible_token(" a") == " a"
