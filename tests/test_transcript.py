"""The generation transcript's continuation: word wrapping, streaming in batches, the cursor, resizing."""
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.cells import cell_len
from textual.app import App

import lmcore

from tui.widgets.generation import Continuation, Transcript, Turn
from tui.widgets.generation.transcript import wrap_points


@given(st.text(alphabet=st.sampled_from("ab  xyz.é漢😀"), max_size=200), st.integers(1, 40))
@settings(max_examples=300, deadline=None)
def test_wrap_points_keep_every_character_and_fit_the_width(s, width):
    cuts = wrap_points(s, width)
    if not s:
        assert cuts == []
        return
    edges = [0, *cuts, len(s)]
    assert all(a < b for a, b in zip(edges, edges[1:]))  # always progresses, no empty lines
    for a, b in zip(edges, edges[1:]):
        line = s[a:b]
        # a space may hang past the edge; a character wider than the line stands alone
        assert cell_len(line.rstrip(" ")) <= width or len(line.rstrip(" ")) == 1


def test_wrap_points_break_after_words():
    assert wrap_points("the time machine", 9) == [9]  # "the time " (its space hangs) / "machine"
    assert wrap_points("the time machine", 7) == [4, 9]
    assert wrap_points("abcdefghij", 4) == [4, 8]  # a word longer than the line is cut
    assert wrap_points("short", 10) == []


@dataclass
class Tok:
    text: str
    prob: float = 0.9
    alternatives: tuple = ()


class OneTurn(App):
    CSS_PATH = str(lmcore.assets_dir() / "lmplay.tcss")  # the app's own styles

    def __init__(self, tokens=None, text=""):
        super().__init__()
        self.turn = Turn("prompt", {"temperature": 1.0, "seed": 1}, tokens, text)

    def compose(self):
        with Transcript():
            yield self.turn


def _screen_lines(c: Continuation) -> list[str]:
    return [c.render_line(y).text.rstrip() for y in range(c.size.height)]


TEXT = "The Time Traveller (for so it will be convenient to speak of him)\nwas expounding a recondite matter to us."


async def test_streamed_text_wraps_like_the_whole_text_and_shows_the_cursor():
    tokens = [Tok(ch) for ch in TEXT]
    whole = OneTurn(tokens)
    async with whole.run_test(size=(32, 20)) as pilot:
        await pilot.pause()
        expected = _screen_lines(whole.turn.continuation)
    assert all(len(line) <= 30 for line in expected)  # 32 columns less the transcript's padding
    assert [line.rstrip() for line in "\n".join(expected).split("\n")] == expected
    assert "".join(line.replace(" ", "") for line in expected) == TEXT.replace(" ", "").replace("\n", "")

    app = OneTurn()
    async with app.run_test(size=(32, 20)) as pilot:
        c = app.turn.continuation
        for i in range(0, len(tokens), 7):  # in frames, as the pane hands them over
            c.add(tokens[i: i + 7])
            await pilot.pause()
        c.settle()
        await pilot.pause()
        assert _screen_lines(c) == expected and c.size.height == len(expected)
        assert c.plain == TEXT
        # the cursor starts on the last token; then the line break at the end of the first line
        c.focus()
        await pilot.pause()
        assert c.cursor == len(TEXT) - 1
        last = c.render_line(len(expected) - 1)
        assert any("reverse" in str(seg.style) for seg in last if seg.text == ".")
        c.action_move(-(len(TEXT) - 1 - TEXT.index("\n")))
        await pilot.pause()
        assert c.tokens[c.cursor].text == "\n"
        row = next(y for y, line in enumerate(expected) if line.endswith("him)"))
        segs = [seg for seg in c.render_line(row) if seg.style and "reverse" in str(seg.style)]
        assert [seg.text for seg in segs] == [" "]  # the line break shows as a space under the cursor

        await pilot.resize_terminal(60, 20)  # wider: wrapped again
        await pilot.pause()
        wide = _screen_lines(c)
        assert len(wide) < len(expected) and max(len(line) for line in wide) > 30


async def test_a_saved_turn_without_probabilities_shows_its_text():
    app = OneTurn(text=TEXT)
    async with app.run_test(size=(40, 20)) as pilot:
        await pilot.pause()
        c = app.turn.continuation
        assert c.plain == TEXT and not c.tokens
        assert " ".join(_screen_lines(c)).split() == TEXT.split()


def _last_text_row(c: Continuation) -> int:
    """Screen row of the last line of text (the continuation may keep blank room under it)."""
    rows = [y for y in range(c.size.height) if c.render_line(y).text.strip()]
    return c.region.y + rows[-1]


async def test_the_view_follows_the_stream_until_the_user_scrolls_up():
    app = OneTurn()
    words = [Tok(w + " ") for w in ("time machine traveller dimension " * 200).split()]
    async with app.run_test(size=(40, 12)) as pilot:
        transcript, c = app.query_one(Transcript), app.turn.continuation

        async def frame(i):
            c.add(words[i * 12: (i + 1) * 12])
            transcript.follow(c.blank_below())
            await pilot.pause()

        def end_in_view() -> bool:
            return transcript.region.y <= _last_text_row(c) < transcript.region.bottom

        transcript.start_following()
        for i in range(20):
            await frame(i)
            assert end_in_view()
        transcript.scroll_home(animate=False)  # the user reads from the start
        await pilot.pause()
        for i in range(20, 30):
            await frame(i)
            assert transcript.scroll_y == 0 and not transcript.following  # not pulled back down
        transcript.scroll_end(animate=False)  # back to the end: followed again
        await pilot.pause()
        for i in range(30, 40):
            await frame(i)
        assert transcript.following and end_in_view()
        c.settle()
        transcript.scroll_end(animate=False, immediate=False)
        await pilot.pause()
        assert end_in_view() and c.size.height == _last_text_row(c) - c.region.y + 1  # no blank room left
