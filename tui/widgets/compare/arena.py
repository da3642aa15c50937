"""The arena: several models continue the same prompt with the same sampling settings and seed, side
by side, one column each, with each model's perplexity on the prompt itself. Models that answer sources
(an encoder-decoder, a decoder-only model trained on a pairs corpus; only beside models of the same pairs
corpus: ``lmcore.side_by_side_problem``) are each given the same source line and reply to it, each reply
streamed in its column (``lmcore.answer_stream``: the decoder-only model continues the source and a tab up
to the newline); a column's line then says whether its reply ended or was cut at the length.

One worker thread takes a token from each model in turn (each stream has its own random generator, so
a column is exactly what that model generates alone with these settings); the columns are drawn once
per frame, as in the generation pane (``StreamingPane``)."""
from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

import lmcore
from lmcore import ConfigError, SamplingSettings, visible, visible_line

from ..generation import Continuation, SettingsBar, TemperatureControl, Transcript
from ..generation.streaming import StreamingPane


class ArenaColumn(Vertical):
    """One model's column: its name, architecture and perplexity on the prompt, then its text."""

    def __init__(self, name: str, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.prompt_ppl: float | None = None
        self.arch = ""
        self.budget = ""  # its training budget: time · tokens seen · params

    def compose(self) -> ComposeResult:
        budget = self.app.core.budgets([self.model_name])[0].get(self.model_name)
        self.budget = budget.describe() if budget is not None else ""
        yield Static(Text(visible_line(self.model_name), style="bold"), classes="arena-name")
        yield Static(Text(self.budget, style="dim"), classes="arena-info")
        yield Transcript()

    def describe(self, arch: str, prompt_ppl: float | None, what: str | None = None) -> None:
        """Its line: the perplexity on the prompt (or ``what``, said instead) and the architecture."""
        self.arch, self.prompt_ppl = arch, prompt_ppl
        ppl = f"prompt ppl {prompt_ppl:.2f}" if prompt_ppl is not None else "prompt too short to score"
        info = " · ".join(x for x in (what or ppl, arch, self.budget) if x)
        self.query_one(".arena-info", Static).update(Text(info, style="dim"))  # wraps in a narrow column

    def begin(self, prompt: str, colour: bool) -> Continuation:
        """A new prompt: the old text goes; the prompt and an empty continuation come."""
        transcript = self.query_one(Transcript)
        transcript.remove_children()
        self.query_one(".arena-info", Static).update(Text("…", style="dim"))
        c = Continuation(colour=colour)
        transcript.mount(Static(Text("› " + (visible(prompt) or "(empty prompt)"), style="bold"), classes="arena-prompt"))
        transcript.mount(c)
        transcript.start_following()
        return c

    @property
    def continuation(self) -> Continuation | None:
        found = self.query(Continuation)
        return found.first() if found else None


class Arena(StreamingPane):
    STATE = "#arena-state"
    BINDINGS = [
        Binding("escape", "stop_generation", "Stop", priority=True, tooltip="stop generating"),
        Binding("ctrl+up", "temperature(0.1)", "Temp+", tooltip="temperature up (every model)"),
        Binding("ctrl+down", "temperature(-0.1)", "Temp−", tooltip="temperature down"),
    ]

    def __init__(self, names: list[str], **kw) -> None:
        super().__init__(len(names), **kw)
        self.names = names
        core = self.app.core
        self.answering = any(ck is not None and lmcore.answers_sources(ck)
                             for ck in (core.model_checkpoint(n) for n in names))  # each replies to a source
        self._streams: list = []  # the running turn's streams (whether each reply ended)

    def compose(self) -> ComposeResult:
        with Horizontal(id="arena-columns"):
            for name in self.names:
                yield ArenaColumn(name)
        with Horizontal(id="gen-status"):
            yield TemperatureControl(self.settings.temperature)
            yield Static("", id="arena-state")
        yield Static("", id="arena-next", classes="summary-line")
        yield SettingsBar(self.settings, self.colour, id="gen-settings")
        hint = "A source for every model to answer" if self.answering else "A prompt for every model"
        yield Input(placeholder=f"{hint}, then Enter (Esc stops)", id="arena-prompt", classes="stream-prompt")

    def show_ready(self) -> None:
        self._set_state("ready")
        self._show_summary()

    @property
    def columns(self) -> list[ArenaColumn]:
        return list(self.query(ArenaColumn))

    def _show_summary(self) -> None:
        line = self.query_one(SettingsBar).summary_line(self.settings, " · the same for every model")
        self.query_one("#arena-next", Static).update(Text(line))

    @on(Continuation.CursorMoved)
    def _show_token(self, message: Continuation.CursorMoved) -> None:
        t = message.token
        column = next((a for a in message.control.ancestors if isinstance(a, ArenaColumn)), None) \
            if message.control is not None else None
        who = visible_line(column.model_name) if column else ""
        alts = "  ".join(f"{a!r} {p:.2f}" for a, p in t.alternatives)
        self.query_one("#arena-next", Static).update(Text(f"{who}: {t.text!r} p={t.prob:.2f} · alternatives: {alts}"))

    # ------------------------------------------------------------ a turn
    def start_turn(self, prompt: str) -> None:
        for column in self.columns:
            column.begin(prompt, self.colour)
        self.prompt = prompt

    def _open(self, i: int, prompt: str, settings: SamplingSettings):
        """Model ``i``'s stream for this turn (in the worker), its column told what it does."""
        gen = self.app.core.get_generator(self.names[i])
        arch = gen.model.config.arch
        if self.answering:
            stream = lmcore.answer_stream(gen, prompt, settings, stop_event=self.stop_event)
            self.app.call_from_thread(self.columns[i].describe, arch, None, "replying")
            return stream
        try:
            ppl = lmcore.score_text(gen, prompt, self.stop_event).ppl
        except ConfigError:
            ppl = None  # fewer than two tokens: nothing to score
        self.app.call_from_thread(self.columns[i].describe, arch, ppl)
        return gen.stream(prompt, settings, stop_event=self.stop_event)

    def produce(self, prompt: str, settings: list[SamplingSettings]) -> None:
        self._streams, streams = [], []
        for i, name in enumerate(self.names):
            stream = self._open(i, prompt, settings[i])
            if note := stream.info.message():
                self.app.call_from_thread(self.app.notify, note, title=f"Source ({name})" if self.answering
                                          else f"Prompt ({name})", severity="warning")
            self._streams.append(stream)
            streams.append(iter(stream))
        live = list(range(len(streams)))
        while live:  # one token from each model in turn: the columns grow together
            for i in list(live):
                tok = next(streams[i], None)
                if tok is None:
                    live.remove(i)
                    continue
                tok.text = visible(tok.text)
                self.emit(i, tok)

    def draw(self, batches: list[list]) -> None:
        for column, batch in zip(self.columns, batches):
            c = column.continuation
            if batch and c is not None:
                c.add(batch)
                column.query_one(Transcript).follow(c.blank_below())
        n = sum(len(c.continuation.tokens) for c in self.columns if c.continuation is not None)
        rate = n / max(time.monotonic() - self._started, 1e-6)
        self._set_state(f"{n:,} tokens · {rate:,.0f}/s · Esc stops")

    def settle(self) -> None:
        for column in self.columns:
            if column.continuation is not None:
                column.continuation.settle()
                transcript = column.query_one(Transcript)
                if transcript.following:  # the end of the text in view, not where the last frame left it
                    transcript.scroll_end(animate=False, immediate=False)

    def show_end(self, reason: str, error: str | None) -> None:
        if error:
            self._set_state("ready")
        else:
            counts = " / ".join(str(len(c.continuation.tokens)) if c.continuation else "0" for c in self.columns)
            self._set_state(f"{reason}: {counts} tokens")
        if self.answering and not error and len(self._streams) == len(self.columns):
            for column, stream in zip(self.columns, self._streams):
                n = len(column.continuation.tokens) if column.continuation else 0
                ended = bool(getattr(stream, "ended", False))
                column.describe(column.arch, None, "reply ended" if ended else
                                f"cut at {n} tokens" if reason == "done" else f"{reason} at {n} tokens")
        self._streams = []

    def texts(self) -> dict[str, str]:
        """Each model's continuation, as shown."""
        return {c.model_name: (c.continuation.plain if c.continuation else "") for c in self.columns}
