"""The arena: several models continue the same prompt with the same sampling settings and seed, side
by side, one column each, with each model's perplexity on the prompt itself.

One worker thread takes a token from each model in turn (each stream has its own random generator, so
a column is exactly what that model generates alone with these settings); the columns are drawn once
per frame, as in the generation pane."""
from __future__ import annotations

import threading
import time

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static, Switch

import lmcore
from lmcore import ConfigError, LmError, SamplingSettings, visible, visible_line

from ...messages import GenerationFinished
from ..generation import Continuation, SettingsBar, TemperatureControl, Transcript

FRAME = 1 / 10


class ArenaColumn(Vertical):
    """One model's column: its name, architecture and perplexity on the prompt, then its text."""

    def __init__(self, name: str, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.prompt_ppl: float | None = None
        self.arch = ""

    def compose(self) -> ComposeResult:
        yield Static(Text(visible_line(self.model_name), style="bold"), classes="arena-name")
        yield Static("", classes="arena-info")
        yield Transcript()

    def describe(self, arch: str, prompt_ppl: float | None) -> None:
        self.arch, self.prompt_ppl = arch, prompt_ppl
        ppl = f"prompt ppl {prompt_ppl:.2f}" if prompt_ppl is not None else "prompt too short to score"
        self.query_one(".arena-info", Static).update(Text(f"{ppl} · {arch}", style="dim"))  # wraps in a narrow column

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


class Arena(Vertical):
    BINDINGS = [
        Binding("escape", "stop_generation", "Stop", priority=True, tooltip="stop generating"),
        Binding("ctrl+up", "temperature(0.1)", "Temp+", tooltip="temperature up (every model)"),
        Binding("ctrl+down", "temperature(-0.1)", "Temp−", tooltip="temperature down"),
    ]

    def __init__(self, names: list[str], **kw) -> None:
        super().__init__(**kw)
        self.names = names
        self.settings = self.app.generation_defaults()
        self.colour = bool(self.app.settings.get("colour_by_probability", False))
        self.stop_event = threading.Event()
        self.generating = False
        self._lock = threading.Lock()
        self._pending: list[list] = [[] for _ in names]
        self._stream_settings: list[SamplingSettings] = []
        self._started = 0.0

    def compose(self) -> ComposeResult:
        with Horizontal(id="arena-columns"):
            for name in self.names:
                yield ArenaColumn(name)
        with Horizontal(id="gen-status"):
            yield TemperatureControl(self.settings.temperature)
            yield Static("", id="arena-state")
        yield Static("", id="arena-next", classes="summary-line")
        yield SettingsBar(self.settings, self.colour, id="gen-settings")
        yield Input(placeholder="A prompt for every model, then Enter (Esc stops)", id="arena-prompt")

    def on_mount(self) -> None:
        self._set_state("ready")
        self._show_summary()
        self._timer = self.set_interval(FRAME, self._flush, pause=True)

    @property
    def columns(self) -> list[ArenaColumn]:
        return list(self.query(ArenaColumn))

    # ------------------------------------------------------------ controls
    def action_temperature(self, delta: float) -> None:
        self.query_one(TemperatureControl).nudge(delta)

    @on(TemperatureControl.Changed)
    def _temperature_changed(self, message: TemperatureControl.Changed) -> None:
        self.settings.temperature = message.value
        for s in self._stream_settings:  # every model's stream reads it at its next token
            s.temperature = message.value
        self.app.save_generation_settings(self.settings)  # remembered as the Generate tab's are
        self._show_summary()

    @on(Input.Changed, "#gen-settings Input")
    def _show_summary(self) -> None:
        line = self.query_one(SettingsBar).summary_line(self.settings, " · the same for every model")
        self.query_one("#arena-next", Static).update(Text(line))

    @on(Switch.Changed, "#colour")
    def _colour_changed(self, message: Switch.Changed) -> None:
        self.colour = message.value
        for c in self.query(Continuation):
            c.set_colour(self.colour)
        self.app.remember("colour_by_probability", self.colour)

    @on(Continuation.CursorMoved)
    def _show_token(self, message: Continuation.CursorMoved) -> None:
        t = message.token
        column = next((a for a in message.control.ancestors if isinstance(a, ArenaColumn)), None) \
            if message.control is not None else None
        who = visible_line(column.model_name) if column else ""
        alts = "  ".join(f"{a!r} {p:.2f}" for a, p in t.alternatives)
        self.query_one("#arena-next", Static).update(Text(f"{who}: {t.text!r} p={t.prob:.2f} · alternatives: {alts}"))

    def action_stop_generation(self) -> None:
        if self.generating:
            self.stop_event.set()
        else:
            self.query_one("#arena-prompt", Input).focus()

    def _set_state(self, text: str) -> None:
        self.query_one("#arena-state", Static).update(f" │ {text}", layout=False)

    # ------------------------------------------------------------ generation
    @on(Input.Submitted, "#arena-prompt")
    def _submit(self, message: Input.Submitted) -> None:
        message.stop()
        self.generate(message.value)

    def generate(self, prompt: str) -> None:
        if self.generating:
            self.app.notify("Still generating: press Esc to stop first.", severity="warning")
            return
        try:
            settings = self.query_one(SettingsBar).read(self.settings)
        except LmError as exc:
            self.app.notify(str(exc), title="Settings", severity="error")
            return
        self.settings = settings
        self.app.save_generation_settings(settings)
        self._stream_settings = [SamplingSettings(**settings.to_dict()) for _ in self.names]
        self._pending = [[] for _ in self.names]
        for column in self.columns:
            column.begin(prompt, self.colour)
        prompt_input = self.query_one("#arena-prompt", Input)
        prompt_input.value = ""
        prompt_input.cursor_blink = False
        self.prompt = prompt
        self.stop_event = threading.Event()
        self.generating = True
        self._started = time.monotonic()
        self._set_state("generating… (Esc stops)")
        self._timer.resume()
        self.run_arena(prompt, self._stream_settings)

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def run_arena(self, prompt: str, settings: list[SamplingSettings]) -> None:
        try:
            streams = []
            for i, name in enumerate(self.names):
                gen = self.app.get_generator(name)
                try:
                    ppl = lmcore.score_text(gen, prompt, self.stop_event).ppl
                except ConfigError:
                    ppl = None  # fewer than two tokens: nothing to score
                self.app.call_from_thread(self.columns[i].describe, gen.model.config.arch, ppl)
                stream = gen.stream(prompt, settings[i], stop_event=self.stop_event)
                if note := stream.info.message():
                    self.app.call_from_thread(self.app.notify, note, title=f"Prompt ({name})", severity="warning")
                streams.append(iter(stream))
            live = list(range(len(streams)))
            while live:  # one token from each model in turn: the columns grow together
                for i in list(live):
                    tok = next(streams[i], None)
                    if tok is None:
                        live.remove(i)
                        continue
                    tok.text = visible(tok.text)
                    with self._lock:
                        self._pending[i].append(tok)
        except LmError as exc:
            self.post_message(GenerationFinished("error", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            self.post_message(GenerationFinished("error", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(GenerationFinished("stopped" if self.stop_event.is_set() else "done"))

    def _flush(self) -> None:
        with self._lock:
            batches, self._pending = self._pending, [[] for _ in self.names]
        for column, batch in zip(self.columns, batches):
            c = column.continuation
            if batch and c is not None:
                c.add(batch)
                column.query_one(Transcript).follow(c.blank_below())
        n = sum(len(c.continuation.tokens) for c in self.columns if c.continuation is not None)
        rate = n / max(time.monotonic() - self._started, 1e-6)
        self._set_state(f"{n:,} tokens · {rate:,.0f}/s · Esc stops")

    @on(GenerationFinished)
    def _finished(self, message: GenerationFinished) -> None:
        message.stop()
        self._timer.pause()
        self._flush()
        for column in self.columns:
            if column.continuation is not None:
                column.continuation.settle()
                transcript = column.query_one(Transcript)
                if transcript.following:  # the end of the text in view, not where the last frame left it
                    transcript.scroll_end(animate=False, immediate=False)
        self.generating = False
        self._stream_settings = []
        self.query_one("#arena-prompt", Input).cursor_blink = True
        if message.error:
            self.app.notify(message.error, title="Cannot generate", severity="error", timeout=8)
            self._set_state("ready")
        else:
            counts = " / ".join(str(len(c.continuation.tokens)) if c.continuation else "0" for c in self.columns)
            self._set_state(f"{message.reason}: {counts} tokens")

    def texts(self) -> dict[str, str]:
        """Each model's continuation, as shown."""
        return {c.model_name: (c.continuation.plain if c.continuation else "") for c in self.columns}
