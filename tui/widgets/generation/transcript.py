"""The chat-style transcript: one Turn per prompt, its continuation streaming in."""
from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

# probability -> colour, when colouring is on: unlikely choices stand out
_BANDS = [(0.8, "green"), (0.5, "yellow3"), (0.2, "dark_orange"), (0.0, "red")]


def colour_for(p: float) -> str:
    return next(c for limit, c in _BANDS if p >= limit)


class Continuation(Static, can_focus=True):
    """Generated text, token by token. Focus it and move the cursor (←/→) to see each token's
    probability and the top alternatives the model considered."""

    BINDINGS = [
        Binding("left", "move(-1)", "Prev token", show=False),
        Binding("right", "move(1)", "Next token", show=False),
        Binding("home", "move(-1000000)", show=False),
        Binding("end", "move(1000000)", show=False),
    ]

    class CursorMoved(Message):
        def __init__(self, token) -> None:
            super().__init__()
            self.token = token

    def __init__(self, text: str = "", colour: bool = False, **kw) -> None:
        super().__init__("", **kw)
        self.tokens: list = []  # lmcore TokenOut
        self.plain = text
        self.colour = colour
        self.cursor: int | None = None
        self._draw()

    def add(self, tokens: list) -> None:
        self.tokens.extend(tokens)
        self.plain += "".join(t.text for t in tokens)
        self._draw()

    def set_colour(self, on: bool) -> None:
        self.colour = on
        self._draw()

    def action_move(self, delta: int) -> None:
        if not self.tokens:
            return
        cur = len(self.tokens) - 1 if self.cursor is None else self.cursor
        self.cursor = max(0, min(len(self.tokens) - 1, cur + delta))
        self._draw()
        self.post_message(self.CursorMoved(self.tokens[self.cursor]))

    def on_focus(self) -> None:
        if self.tokens and self.cursor is None:
            self.action_move(0)

    def _draw(self) -> None:
        if not self.tokens:
            self.update(Text(self.plain))
            return
        out = Text()
        prefix = self.plain[: len(self.plain) - sum(len(t.text) for t in self.tokens)]
        out.append(prefix)
        for i, t in enumerate(self.tokens):
            style = colour_for(t.prob) if self.colour else ""
            if i == self.cursor and self.has_focus:
                style = (style + " reverse").strip()
            out.append(t.text.replace("\n", "⏎\n") if i == self.cursor and self.has_focus else t.text, style=style)
        self.update(out)

    def on_blur(self) -> None:
        self._draw()


class Turn(Vertical):
    def __init__(self, prompt: str, text: str = "", colour: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.prompt = prompt
        self._text = text
        self._colour = colour

    def compose(self):
        yield Static(Text("› " + (self.prompt if self.prompt else "(empty prompt)")), classes="prompt")
        yield Continuation(self._text, self._colour, classes="continuation")

    @property
    def continuation(self) -> Continuation:
        return self.query_one(Continuation)


class Transcript(VerticalScroll):
    """Scrolls with the text only while the view is already at the bottom."""

    def at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def follow(self, was_at_bottom: bool) -> None:
        if was_at_bottom:
            self.scroll_end(animate=False, immediate=False)
