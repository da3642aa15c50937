"""The generation pane: transcript, prompt, temperature and settings.

Generation runs in a thread worker; tokens are collected in a buffer and drawn once per frame
(10 a second), never one UI call per character. Esc stops; the temperature can change mid-stream."""
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
from lmcore import LmError, SamplingSettings, visible

from ...messages import GenerationFinished
from .controls import SettingsBar, TemperatureControl
from .transcript import Continuation, Transcript, Turn, unpack_tokens

FRAME = 1 / 10  # a frame of the growing text: each costs the generator thread time (the GIL)
STATE_EVERY = 0.25  # seconds between updates of the token count and rate
MAX_TURNS_KEPT = 200


class GenerationPane(Vertical):
    BINDINGS = [
        Binding("escape", "stop_generation", "Stop", priority=True, tooltip="stop generating"),
        Binding("ctrl+up", "temperature(0.1)", "Temp+", tooltip="temperature up"),
        Binding("ctrl+down", "temperature(-0.1)", "Temp−", tooltip="temperature down"),
        # in the help and the palette: the footer is full
        Binding("ctrl+y", "copy_last", "Copy", show=False, tooltip="copy the last continuation"),
        Binding("ctrl+l", "clear", "Clear", show=False, tooltip="clear the transcript"),
    ]

    def __init__(self, name: str, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.settings = self.app.generation_defaults()
        self.colour = bool(self.app.settings.get("colour_by_probability", False))
        self.stop_event = threading.Event()
        self.generating = False
        self._pending: list = []
        self._lock = threading.Lock()
        self._current: Turn | None = None
        self.stream_settings: SamplingSettings | None = None  # what the running stream reads, per token
        self._state_shown = 0.0
        self._skip_frame = False

    def compose(self) -> ComposeResult:
        yield Transcript()
        with Horizontal(id="gen-status"):
            yield TemperatureControl(self.settings.temperature)
            yield Static("", id="gen-state")
        yield Static("", id="alternatives")
        yield SettingsBar(self.settings, self.colour, id="gen-settings")
        yield Input(placeholder="Type a prompt and press Enter (Esc stops, ctrl+↑/↓ temperature)", id="prompt")

    def on_mount(self) -> None:
        transcript = self.query_one(Transcript)
        for prompt, settings, tokens, text in self._saved_turns():
            transcript.mount(Turn(prompt, settings, tokens, text, self.colour))
        transcript.scroll_end(animate=False, immediate=False)
        self._set_state("ready")
        self.call_after_refresh(self._show_summary)
        self._timer = self.set_interval(FRAME, self._flush, pause=True)  # runs only while generating

    def _saved_turns(self) -> list[tuple]:
        """The saved transcript's turns (prompt, settings, tokens or None, text); anything malformed in
        the file is skipped or shown as plain text."""
        if not self.app.model_exists(self.model_name):
            return []
        try:
            doc = self.app.store.read_extra(self.model_name, "transcript", {})
        except LmError as exc:  # a FIFO, a huge or a deeply nested file: start a new transcript
            self.app.notify(f"The saved transcript was not read: {exc}. A new one starts here.",
                            title="Transcript", severity="warning", timeout=10)
            doc = {}
        turns = doc.get("turns") if isinstance(doc, dict) else None
        out = []
        for t in turns[-MAX_TURNS_KEPT:] if isinstance(turns, list) else []:
            if not (isinstance(t, dict) and isinstance(t.get("prompt", ""), str) and isinstance(t.get("text", ""), str)):
                continue
            text = visible(t.get("text", ""))
            settings = t.get("settings") if isinstance(t.get("settings"), dict) else {}
            tokens = unpack_tokens(text, t["tokens"]) if "tokens" in t else None
            out.append((visible(t.get("prompt", "")), settings, tokens, text))
        return out

    # ------------------------------------------------------------ actions
    def action_temperature(self, delta: float) -> None:
        self.query_one(TemperatureControl).nudge(delta)

    @on(TemperatureControl.Changed)
    def _temperature_changed(self, message: TemperatureControl.Changed) -> None:
        self.settings.temperature = message.value
        if self.stream_settings is not None:  # read at every token: takes effect mid-stream
            self.stream_settings.temperature = message.value
        self.app.save_generation_settings(self.settings)
        self._show_summary()

    def apply_preset(self, name: str) -> None:
        """A sampling preset from the palette: temperature, top-k, top-p and min-p; sampling, not beams."""
        try:
            current = self.query_one(SettingsBar).read(self.settings)
        except LmError:
            current = self.settings
        preset = lmcore.sampling_preset(name, max_tokens=current.max_tokens, seed=current.seed,
                                        repetition_penalty=current.repetition_penalty)
        self.query_one(SettingsBar).show(preset)
        self.query_one(TemperatureControl).set_value(preset.temperature)
        self.app.notify(f"Sampling: {name} ({lmcore.sampling_summary(preset.to_dict())})")

    @on(Input.Changed, "#gen-settings Input")
    def _settings_typed(self) -> None:
        self._show_summary()

    def _show_summary(self) -> None:
        """What the next turn will run with (or what is wrong with a field), on the line under the status."""
        self.query_one("#alternatives", Static).update(Text(self.query_one(SettingsBar).summary_line(self.settings)))

    @on(Switch.Changed, "#colour")
    def _colour_changed(self, message: Switch.Changed) -> None:
        self.colour = message.value
        for c in self.query(Continuation):
            c.set_colour(self.colour)
        self.app.remember("colour_by_probability", self.colour)

    @on(Continuation.CursorMoved)
    def _show_alternatives(self, message: Continuation.CursorMoved) -> None:
        t = message.token
        if getattr(t, "saved", False):
            line = f"{t.text!r} p={t.prob:.2f} · alternatives are not kept for turns of an earlier session"
        else:
            line = f"{t.text!r} p={t.prob:.2f} · alternatives: " + "  ".join(f"{a!r} {p:.2f}" for a, p in t.alternatives)
        self.query_one("#alternatives", Static).update(Text(line))

    def action_stop_generation(self) -> None:
        if self.generating:
            self.stop_event.set()
        elif self.screen.focused is not self.query_one("#prompt", Input):
            self.query_one("#prompt", Input).focus()

    def action_copy_last(self) -> None:
        turns = list(self.query(Turn))
        if not turns:
            self.app.notify("Nothing generated yet.", severity="warning")
            return
        text = turns[-1].continuation.plain
        self.app.copy_to_clipboard(text)
        self.app.notify(f"Copied the last continuation ({len(text):,} characters).")

    def action_clear(self) -> None:
        if self.generating:
            return
        self.query_one(Transcript).remove_children()
        self._save_transcript()

    @on(Input.Submitted, "#prompt")
    def _submit(self, message: Input.Submitted) -> None:
        message.stop()
        self.generate(message.value)

    # ------------------------------------------------------------ generation
    def generate(self, prompt: str) -> None:
        if self.generating:
            self.app.notify("Still generating: press Esc to stop first.", severity="warning")
            return
        if not self.app.model_exists(self.model_name):
            new = getattr(self.screen, "training", None) is not None and self.screen.training.spec is not None
            self.app.notify(self.app.why_no_checkpoint(self.model_name, new), severity="warning", markup=False)
            return
        try:
            settings = self.query_one(SettingsBar).read(self.settings)
        except LmError as exc:
            self.app.notify(str(exc), title="Settings", severity="error")
            return
        self.settings = settings
        self.app.save_generation_settings(settings)
        self.stream_settings = SamplingSettings(**settings.to_dict())
        prompt_input = self.query_one("#prompt", Input)
        prompt_input.value = ""
        prompt_input.cursor_blink = False  # a blink redraws the prompt's styles: the stream needs the time
        turn = Turn(prompt, self.stream_settings.to_dict(), colour=self.colour)
        transcript = self.query_one(Transcript)
        transcript.mount(turn)
        transcript.start_following()  # a new turn always comes into view
        self._current = turn
        self.stop_event = threading.Event()
        self.generating = True
        self._started = time.monotonic()
        self._set_state("generating… (Esc stops)")
        self._timer.resume()
        self.run_generation(prompt, self.stream_settings)

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def run_generation(self, prompt: str, settings: SamplingSettings) -> None:
        try:
            gen = self.app.get_generator(self.model_name)
            stream = gen.stream(prompt, settings, stop_event=self.stop_event)
            note = stream.info.message()
            if note:
                self.app.call_from_thread(self.app.notify, note, title="Prompt", severity="warning")
            for tok in stream:
                tok.text = visible(tok.text)  # a vocabulary token never reaches the terminal raw
                with self._lock:
                    self._pending.append(tok)
        except LmError as exc:
            self.post_message(GenerationFinished("error", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            self.post_message(GenerationFinished("error", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(GenerationFinished("stopped" if self.stop_event.is_set() else "done"))

    def _flush(self) -> None:
        """Once per frame: draw the tokens that arrived since the last frame. When the text scrolls by
        more than half the view per frame nobody reads it as it passes: every other frame is skipped,
        which leaves the generator more of the CPU."""
        if self._skip_frame:
            self._skip_frame = False
            return
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch or self._current is None:
            return
        transcript = self.query_one(Transcript)
        continuation = self._current.continuation
        before = continuation.line_count
        continuation.add(batch)
        transcript.follow(continuation.blank_below())
        self._skip_frame = transcript.following and continuation.line_count - before > transcript.size.height // 2
        now = time.monotonic()
        if now - self._state_shown >= STATE_EVERY:
            self._state_shown = now
            n = len(continuation.tokens)
            self._set_state(f"generating… {n} tokens, {n / max(now - self._started, 1e-6):,.0f}/s (Esc stops)")

    @on(GenerationFinished)
    def _finished(self, message: GenerationFinished) -> None:
        self._timer.pause()
        self._flush()
        if self._current is not None:
            transcript = self.query_one(Transcript)
            self._current.continuation.settle()
            if transcript.following:
                transcript.scroll_end(animate=False, immediate=False)
        self.generating = False
        self.stream_settings = None
        self.query_one("#prompt", Input).cursor_blink = True
        if message.error:
            self.app.notify(message.error, title="Cannot generate", severity="error", timeout=8)
            if self._current is not None:
                self._current.remove()
            self._set_state("ready")
        else:
            n = len(self._current.continuation.tokens) if self._current else 0
            self._set_state(f"{message.reason}: {n} tokens")
            self._save_transcript()
        self._current = None

    def _set_state(self, text: str) -> None:
        self.query_one("#gen-state", Static).update(f" │ {text}", layout=False)  # one fixed line: no layout

    def _save_transcript(self) -> None:
        if not self.app.model_exists(self.model_name):
            return
        turns = [t.to_json() for t in self.query(Turn)]
        try:
            self.app.store.write_extra(self.model_name, "transcript", {"turns": turns[-MAX_TURNS_KEPT:]})
        except (LmError, OSError) as exc:
            self.app.notify(f"Could not save the transcript: {exc}", severity="warning")
