"""The chat-style transcript: one Turn per prompt, with the settings it ran with, its continuation
streaming in.

A continuation is kept as a rich Text that grows by appending (tokens of the same probability band
share one span), so drawing a frame costs the same with colouring on or off. Saved turns keep each
token's probability (one byte each, base64) and its length, so colouring and the probability under the
cursor work after a restart; the alternatives the model considered are not kept on disk."""
from __future__ import annotations

import base64
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

# probability bands, when colouring is on: unlikely choices stand out (theme colours: light and dark)
_BANDS = [(0.8, "success"), (0.5, "primary"), (0.2, "warning"), (0.0, "error")]


def band(p: float) -> int:
    return next(i for i, (limit, _) in enumerate(_BANDS) if p >= limit)


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
        if len(lens) != len(probs) or sum(lens) != len(text) or not all(isinstance(n, int) and n > 0 for n in lens):
            return None
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    out, i = [], 0
    for n, p in zip(lens, probs):
        out.append(SavedToken(text[i: i + n], p / 255))
        i += n
    return out


CHUNK = 800  # characters: past this, the text so far is frozen at the next line break
RESERVE = 4  # lines a growing chunk keeps ahead of its text


class Chunk(Static):
    """A run of tokens drawn as one block. Only the last chunk of a continuation grows; the others are
    drawn once, so a frame costs the same at token 100 and at token 10,000."""

    def show(self, renderable, growing: bool = False) -> None:
        """Draw. A layout of the whole screen at every frame halves the generation speed, so a growing
        chunk reserves room for RESERVE more lines and the screen is laid out again only when the text
        outgrows it; ``settle`` gives it its exact height at the end."""
        width = self.content_region.width
        if not growing or width <= 0:
            self.update(renderable)
            return
        self.update(renderable, layout=False)
        # lines the text needs, estimated generously (exact word wrapping costs a render per frame)
        need = sum(1 + int(len(line) * 1.2) // width for line in self.text.plain.split("\n"))
        if need > self.content_region.height:
            self.styles.height = need + RESERVE  # one layout for the next RESERVE lines

    def settle(self) -> None:
        self.styles.height = "auto"

    def __init__(self, first: int, **kw) -> None:
        super().__init__("", **kw)
        self.first = first   # index of its first token in the continuation
        self.count = 0       # tokens in it
        self.text = Text()
        self.last_band: int | None = None
        self.span_start = 0


class Continuation(Vertical, can_focus=True):
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

    def __init__(self, tokens: list | None = None, text: str = "", colour: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.tokens: list = []  # lmcore TokenOut, or SavedToken for a turn read back from disk
        self.plain = ""
        self.colour = colour
        self.cursor: int | None = None
        self._initial = (tokens, text)

    def compose(self):
        yield Chunk(0)

    def on_mount(self) -> None:
        tokens, text = self._initial
        if tokens:
            self.add(tokens)
        elif text:  # a saved turn whose probabilities are not kept
            self.plain = text
            chunk = self._chunks()[-1]
            chunk.text.append(text)
            chunk.show(chunk.text)

    def _chunks(self) -> list[Chunk]:
        return list(self.query_children(Chunk))

    def _style(self, b: int) -> str:
        return self.app.theme_variables.get(_BANDS[b][1], "") if self.colour else ""

    def _close_span(self, chunk: Chunk) -> None:
        end = len(chunk.text)
        if self.colour and chunk.last_band is not None and end > chunk.span_start:
            chunk.text.stylize(self._style(chunk.last_band), chunk.span_start, end)
        chunk.span_start = end

    def _append(self, chunk: Chunk, tokens: list) -> None:
        """Tokens onto ``chunk``'s text, one style span per run of tokens in the same probability band."""
        for t in tokens:
            if self.colour:
                b = band(t.prob)
                if b != chunk.last_band:
                    self._close_span(chunk)
                    chunk.last_band = b
            chunk.text.append(t.text)
        chunk.count += len(tokens)

    def add(self, tokens: list) -> None:
        start = len(self.tokens)
        self.tokens.extend(tokens)
        self.plain += "".join(t.text for t in tokens)
        chunk = self._chunks()[-1]
        pending: list = []
        long = len(chunk.text)
        for i, t in enumerate(tokens):
            pending.append(t)
            long += len(t.text)
            if (long >= CHUNK and t.text.endswith("\n")) or (long >= 4 * CHUNK and t.text.endswith(" ")):
                self._append(chunk, pending)
                pending, long = [], 0
                self._draw(chunk)  # frozen from here on
                chunk.settle()
                chunk = Chunk(start + i + 1)
                self.mount(chunk)
        self._append(chunk, pending)
        self._draw(chunk, growing=True)

    def settle(self) -> None:
        """The stream ended: every chunk takes its exact height."""
        for chunk in self._chunks():
            chunk.settle()

    def _draw(self, chunk: Chunk, growing: bool = False) -> None:
        self._close_span(chunk)
        c = self.cursor
        if c is not None and self.has_focus and chunk.first <= c < chunk.first + chunk.count:
            out = chunk.text.copy()
            start = sum(len(t.text) for t in self.tokens[chunk.first: c])
            out.stylize("reverse", start, start + max(1, len(self.tokens[c].text)))
            chunk.show(out, growing)
        else:
            chunk.show(chunk.text, growing)

    def _chunk_of(self, index: int | None) -> Chunk | None:
        if index is None:
            return None
        return next((ch for ch in self._chunks() if ch.first <= index < ch.first + ch.count), None)

    def set_colour(self, on: bool) -> None:
        self.colour = on
        for chunk in self._chunks():
            toks = self.tokens[chunk.first: chunk.first + chunk.count]
            if not toks:
                continue
            chunk.text, chunk.last_band, chunk.span_start, chunk.count = Text(), None, 0, 0
            self._append(chunk, toks)
            self._draw(chunk)

    def action_move(self, delta: int) -> None:
        if not self.tokens:
            return
        old = self._chunk_of(self.cursor)
        cur = len(self.tokens) - 1 if self.cursor is None else self.cursor
        self.cursor = max(0, min(len(self.tokens) - 1, cur + delta))
        for chunk in {id(c): c for c in (old, self._chunk_of(self.cursor)) if c is not None}.values():
            self._draw(chunk)
        self.post_message(self.CursorMoved(self.tokens[self.cursor]))

    def on_focus(self) -> None:
        if self.tokens and self.cursor is None:
            self.action_move(0)
        elif (chunk := self._chunk_of(self.cursor)) is not None:
            self._draw(chunk)

    def on_blur(self) -> None:
        if (chunk := self._chunk_of(self.cursor)) is not None:
            self._draw(chunk)


def settings_line(settings: dict) -> str:
    """What a turn ran with, in one short line."""
    t = settings.get("temperature")
    parts = ["greedy" if t == 0 else f"T {t:g}" if isinstance(t, (int, float)) else ""]
    if settings.get("top_k"):
        parts.append(f"top-k {settings['top_k']}")
    if isinstance(settings.get("top_p"), (int, float)) and settings["top_p"] < 1:
        parts.append(f"top-p {settings['top_p']:g}")
    if settings.get("min_p"):
        parts.append(f"min-p {settings['min_p']:g}")
    if isinstance(settings.get("repetition_penalty"), (int, float)) and settings["repetition_penalty"] != 1:
        parts.append(f"rep {settings['repetition_penalty']:g}")
    parts.append(f"seed {settings['seed']}" if settings.get("seed") is not None else "seed random")
    return " · ".join(p for p in parts if p)


class Turn(Vertical):
    """One prompt (shown once, with the settings it ran with) and its continuation."""

    def __init__(self, prompt: str, settings: dict, tokens: list | None = None, text: str = "",
                 colour: bool = False, **kw) -> None:
        super().__init__(**kw)
        self.prompt = prompt
        self.settings = settings
        self._tokens, self._text, self._colour = tokens, text, colour

    def compose(self):
        head = Text("› ", style="bold")
        head.append(self.prompt if self.prompt else "(empty prompt)", style="bold")
        head.append(f"   {settings_line(self.settings)}", style="dim")
        yield Static(head, classes="prompt")
        yield Continuation(self._tokens, self._text, self._colour, classes="continuation")

    @property
    def continuation(self) -> Continuation:
        return self.query_one(Continuation)

    def to_json(self) -> dict:
        c = self.continuation
        d = {"prompt": self.prompt, "text": c.plain, "settings": self.settings}
        if c.tokens:
            d["tokens"] = pack_tokens(c.tokens)
        return d


class Transcript(VerticalScroll):
    """Scrolls with the text only while the view is already at the bottom."""

    def at_bottom(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def follow(self, was_at_bottom: bool) -> None:
        if was_at_bottom:
            self.scroll_end(animate=False, immediate=False)
