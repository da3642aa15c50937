"""The chat-style transcript: one Turn per prompt, with the settings it ran with, its continuation
streaming in.

A continuation wraps its own text into lines and draws only the lines that changed, so a frame costs
the same at token 100 and at token 10,000, with colouring on or off. Saved turns keep each
token's probability (one byte each, base64) and its length, so colouring and the probability under the
cursor work after a restart; the alternatives the model considered are not kept on disk."""
from __future__ import annotations

import base64
from bisect import bisect_right
from dataclasses import dataclass
from typing import Callable

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Static

from lmcore import sampling_summary

from ...colours import theme_style

# probability bands, when colouring is on: unlikely choices stand out (theme colours: light and dark)
_BANDS = [(0.8, "success"), (0.5, "primary"), (0.2, "warning"), (0.0, "error")]


def band(p: float) -> int:
    return 0 if p >= 0.8 else 1 if p >= 0.5 else 2 if p >= 0.2 else 3  # the limits of _BANDS


def band_colour(p: float) -> str:
    """The theme colour's name of a token of probability ``p``."""
    return _BANDS[band(p)][1]


@dataclass
class SavedToken:
    """A token of a turn read back from disk: its text and probability (no alternatives)."""

    text: str
    prob: float
    alternatives: tuple = ()
    saved: bool = True


def pack_tokens(tokens) -> dict:
    """Compact per-token data for the transcript file: probabilities as bytes, lengths when not all 1."""
    probs = bytes(min(255, max(0, round(t.prob * 255))) for t in tokens)
    out = {"probs": base64.b64encode(probs).decode("ascii")}
    lens = [len(t.text) for t in tokens]
    if any(n != 1 for n in lens):
        out["lens"] = lens
    return out


def unpack_tokens(text: str, data) -> list[SavedToken] | None:
    """The tokens of a saved turn, or None when the file's data does not fit its text."""
    try:
        probs = base64.b64decode(data["probs"], validate=True)
        lens = data.get("lens") or [1] * len(probs)
        # a length may be 0: a bpe token inside a character adds no text (the next one brings it whole)
        if len(lens) != len(probs) or sum(lens) != len(text) or not all(isinstance(n, int) and n >= 0 for n in lens):
            return None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    out, i = [], 0
    for n, p in zip(lens, probs):
        out.append(SavedToken(text[i: i + n], p / 255))
        i += n
    return out


RESERVE = 4  # lines a growing continuation keeps ahead of its text, at least


def wrap_points(s: str, width: int) -> list[int]:
    """Where greedy word wrapping ends each line of ``s`` (no line breaks in it) at ``width`` cells:
    after the last space that fits (a space may hang past the edge), or in the middle of a word longer
    than the line. Every character is kept, so offsets into the text map onto lines exactly."""
    if s.isascii():
        cuts, i, n = [], 0, len(s)
        while n - i > width:
            j = s.rfind(" ", i + 1, i + width + 1)
            i = j + 1 if j > i else i + width
            if i < n:  # a space that hangs at the very end ends no line
                cuts.append(i)
        return cuts
    cuts, start, cells, last_space = [], 0, 0, -1
    for k, ch in enumerate(s):
        w = cell_len(ch)
        if cells + w > width and ch != " " and k > start:
            cut = last_space + 1 if last_space >= start else k
            cuts.append(cut)
            cells = cell_len(s[cut:k])
            start, last_space = cut, -1
        cells += w
        if ch == " ":
            last_space = k
    return cuts


class Continuation(Widget, can_focus=True):
    """Generated text, token by token. Focus it and move the cursor (←/→) to see each token's
    probability and the top alternatives the model considered.

    It wraps its own text into lines (Textual's line API), so a frame re-wraps only the last line, redraws
    only the lines that changed, and the screen is laid out again only when the text outgrows the room
    it reserved (a layout of the whole screen at every frame halved the generation speed)."""

    DEFAULT_CSS = "Continuation { height: auto; }"
    BINDINGS = [
        Binding("left", "move(-1)", "Prev token", show=False, tooltip="the token before"),
        Binding("right", "move(1)", "Next token", show=False, tooltip="the token after"),
        Binding("home", "move(-1000000)", "First token", show=False, tooltip="the first token"),
        Binding("end", "move(1000000)", "Last token", show=False, tooltip="the last token"),
    ]

    class CursorMoved(Message):
        def __init__(self, token, continuation: "Continuation | None" = None) -> None:
            super().__init__()
            self.token = token
            self.continuation = continuation

        @property
        def control(self) -> "Continuation | None":
            return self.continuation

    def __init__(self, tokens: list | None = None, text: str = "", colour: bool = False,
                 styler: Callable[[object], str] | None = None, **kw) -> None:
        super().__init__(**kw)
        self.tokens: list = []  # lmcore TokenOut, or SavedToken for a turn read back from disk
        self.colour = colour
        self.styler = styler or (lambda t: band_colour(t.prob))  # a token -> a theme colour name or a style
        self.cursor: int | None = None
        self._parts: list[str] = []
        self._starts: list[int] = []  # each token's offset in the text
        self._length = 0
        self._text_only = text if not tokens else ""  # a saved turn whose probabilities are not kept
        self._width = 0               # the width the lines are wrapped at (0: not laid out yet)
        self._lines: list[Text] = [Text()]
        self._line_starts: list[int] = [0]
        self._strips: dict[int, Strip] = {}
        self._room: int | None = None  # lines reserved while the text grows; None: exactly its lines
        if tokens:
            self._record(tokens)

    # ------------------------------------------------------------ text and lines
    @property
    def plain(self) -> str:
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else self._text_only

    def _record(self, tokens: list) -> None:
        for t in tokens:
            self._starts.append(self._length)
            self._length += len(t.text)
        self.tokens.extend(tokens)
        self._parts.append("".join(t.text for t in tokens))

    def _pieces(self, tokens: list):
        """(text, style) of each token, when colouring is on: the theme colour its styler names (by
        default its probability band's)."""
        if not self.colour:
            return ((t.text, "") for t in tokens)
        app, styler = self.app, self.styler
        return ((t.text, theme_style(app, s)) for t, s in ((t, styler(t)) for t in tokens))  # a theme colour or a style

    def _extend(self, pieces) -> int:
        """Styled text onto the lines, re-wrapping only the last one; the first line that changed."""
        first = len(self._lines) - 1
        open_ = self._lines[-1]
        for text, style in pieces:
            if "\n" not in text:
                open_.append(text, style)
                continue
            for k, part in enumerate(text.split("\n")):
                if k:
                    self._wrap_open(newline=True)
                    open_ = self._lines[-1]
                if part:
                    open_.append(part, style)
        self._wrap_open()
        return first

    def _wrap_open(self, newline: bool = False) -> None:
        """Wrap the last line; with ``newline`` it is ended and an empty one begins."""
        open_, start = self._lines.pop(), self._line_starts.pop()
        cuts = wrap_points(open_.plain, max(1, self._width))
        # divide splits the spans in one pass (slicing per line costs every span per line: a long
        # coloured text with no line break took minutes)
        for a, line in zip([0, *cuts], open_.divide(cuts) if cuts else [open_]):
            self._lines.append(line)
            self._line_starts.append(start + a)
        if newline:
            self._lines.append(Text())
            self._line_starts.append(start + len(open_) + 1)

    def _rewrap(self, width: int) -> None:
        self._width = width
        self._lines, self._line_starts, self._strips = [Text()], [0], {}
        self._extend(self._pieces(self.tokens) if self.tokens else [(self._text_only, "")])

    # ------------------------------------------------------------ layout and drawing
    def get_content_height(self, container, viewport, width: int) -> int:
        if width != self._width:
            self._rewrap(width)
        return len(self._lines)

    def on_resize(self) -> None:
        if self.size.width != self._width:
            self._rewrap(self.size.width)
            self._grow()
            self.refresh()

    def _grow(self, reserve: int = RESERVE) -> None:
        """While the text streams in: lay the screen out again only when the text outgrows its room."""
        if self._room is not None and len(self._lines) > self._room:
            self._room = len(self._lines) + reserve
            self.styles.height = self._room

    @property
    def line_count(self) -> int:
        """Lines of text, as wrapped at the current width."""
        return len(self._lines)

    def blank_below(self) -> int:
        """Reserved lines under the text (the view follows the text, not the blank room)."""
        return max(0, self.size.height - len(self._lines))

    def add(self, tokens: list) -> None:
        """More tokens while the text streams in."""
        if self._room is None:
            self._room = 0
        self._record(tokens)
        if not self._width:
            return  # not laid out yet: wrapped when it is
        before = len(self._lines)
        first = self._extend(self._pieces(tokens))
        for y in range(first, len(self._lines)):
            self._strips.pop(y, None)
        # room for about a second more of text at this rate: a few layouts a second at most
        self._grow(max(RESERVE, 16 * (len(self._lines) - before)))
        self.refresh(Region(0, first, self.size.width, len(self._lines) - first))

    def settle(self) -> None:
        """The stream ended: the text takes its exact height."""
        self._room = None
        self.styles.height = "auto"

    def _cursor_lines(self) -> range:
        """The lines the cursor's token is on."""
        c = self.cursor
        if c is None or not self.tokens:
            return range(0)
        a = self._starts[c]
        b = a + max(1, len(self.tokens[c].text))
        return range(bisect_right(self._line_starts, a) - 1, bisect_right(self._line_starts, b - 1))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        style = self.rich_style
        if y >= len(self._lines):
            return Strip.blank(width, style)
        cursor = self.has_focus and y in self._cursor_lines()
        strip = None if cursor else self._strips.get(y)
        if strip is None:
            line = self._lines[y]
            if cursor:
                line = line.copy()
                a = self._starts[self.cursor] - self._line_starts[y]
                b = a + max(1, len(self.tokens[self.cursor].text))
                if a >= len(line):  # a line break under the cursor: show it as a space
                    line.append(" ")
                line.stylize("reverse", max(0, a), min(b, len(line)))
            strip = Strip(line.render(self.app.console), line.cell_len).apply_style(style)
            strip = strip.crop_extend(0, width, style)
            if not cursor:
                self._strips[y] = strip
        return strip

    def _refresh_lines(self, lines) -> None:
        for y in lines:
            self._strips.pop(y, None)
            self.refresh(Region(0, y, self.size.width, 1))

    def set_colour(self, on: bool) -> None:
        self.colour = on
        if self._width:
            self._rewrap(self._width)
        self.refresh()

    def action_move(self, delta: int) -> None:
        if not self.tokens:
            return
        old = self._cursor_lines()
        cur = len(self.tokens) - 1 if self.cursor is None else self.cursor
        self.cursor = max(0, min(len(self.tokens) - 1, cur + delta))
        self._refresh_lines({*old, *self._cursor_lines()})
        lines = self._cursor_lines()
        transcript = next((a for a in self.ancestors if isinstance(a, Transcript)), None)
        if lines and transcript is not None:
            transcript.show_line(self, lines[0])
        self.post_message(self.CursorMoved(self.tokens[self.cursor], self))

    def on_focus(self) -> None:
        if self.tokens:  # the cursor where it was (at first: the last token, or where it was put)
            self.action_move(0)

    def on_blur(self) -> None:
        self._refresh_lines(self._cursor_lines())


class Turn(Vertical):
    """One prompt (shown once, with the settings it ran with) and its continuation."""

    def __init__(self, prompt: str, settings: dict, tokens: list | None = None, text: str = "",
                 colour: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.prompt = prompt
        self.settings = settings
        # made here, not in compose: a turn read (ctrl+y, the transcript saved, the stream's first frame
        # or its end) before it is mounted has its continuation all the same
        self._continuation = Continuation(tokens, text, colour, classes="continuation")

    def compose(self):
        head = Text("› ", style="bold")
        head.append(self.prompt if self.prompt else "(empty prompt)", style="bold")
        head.append(f"   {sampling_summary(self.settings)}", style="dim")
        yield Static(head, classes="prompt")
        yield self._continuation

    @property
    def continuation(self) -> Continuation:
        return self._continuation

    def to_json(self) -> dict:
        c = self.continuation
        d = {"prompt": self.prompt, "text": c.plain, "settings": self.settings}
        if c.tokens:
            d["tokens"] = pack_tokens(c.tokens)
        return d


class Transcript(VerticalScroll):
    """Follows the text while it streams in, until the user scrolls up; scrolling back to the end of
    the text follows again."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.following = True
        self._followed_y: float | None = None  # where following last put the view

    def at_bottom(self, blank: int = 0) -> bool:
        """At the end of the text (``blank``: reserved lines under it that do not count)."""
        return self.scroll_y >= self.max_scroll_y - blank - 1

    def start_following(self) -> None:
        """A new turn: bring it into view (once it is laid out) and follow it."""
        self.following, self._followed_y = True, None
        self.call_after_refresh(self._to_new_turn)

    def _to_new_turn(self) -> None:
        if self._followed_y is None:  # text that already came in has placed the view
            self.scroll_end(animate=False, immediate=True)

    def follow(self, blank: int = 0) -> None:
        """After more text: keep its end in view, unless the user scrolled away from it."""
        if self.following and self._followed_y is not None and self.scroll_y < self._followed_y - 1:
            self.following = False  # the user scrolled up
        elif not self.following and self.at_bottom(blank):
            self.following = True   # ... and back down to the end of the text
        if self.following:
            # blank and max_scroll_y come from the same layout; the target never passes max_scroll_y,
            # so it is where the view really is at the next frame, whatever the user does meanwhile
            self._followed_y = max(0, self.max_scroll_y - blank)
            self.scroll_to(y=self._followed_y, animate=False, immediate=True)

    def show_line(self, widget, y: int) -> None:
        """Scroll so that line ``y`` of ``widget`` (inside the transcript) is in view."""
        top = widget.region.y - self.content_region.y + round(self.scroll_y) + y
        self.scroll_to_region(Region(0, top, 1, 1), animate=False, immediate=False)
