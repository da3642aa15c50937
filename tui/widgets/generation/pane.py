"""The generation pane: transcript, prompt, temperature and settings.

Generation runs in a thread worker; tokens are collected in a buffer and drawn once per frame
(10 a second), never one UI call per character (``StreamingPane``). Esc stops; the temperature can
change mid-stream."""
from __future__ import annotations

import time

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static

import lmcore
from lmcore import LmError, SamplingSettings, visible

from .controls import SettingsBar, TemperatureControl
from .streaming import StreamingPane
from .transcript import Continuation, Transcript, Turn, unpack_tokens

STATE_EVERY = 0.25  # seconds between updates of the token count and rate
MAX_TURNS_KEPT = 200


class GenerationPane(StreamingPane):
    BINDINGS = [
        Binding("escape", "stop_generation", "Stop", priority=True, tooltip="stop generating"),
        Binding("ctrl+up", "temperature(0.1)", "Temp+", tooltip="temperature up"),
        Binding("ctrl+down", "temperature(-0.1)", "Temp−", tooltip="temperature down"),
        # in the help and the palette: the footer is full
        Binding("ctrl+y", "copy_last", "Copy", show=False, tooltip="copy the last continuation"),
        Binding("ctrl+l", "clear", "Clear", show=False, tooltip="clear the transcript"),
    ]

    PLACEHOLDER = "Type a prompt and press Enter (Esc stops, ctrl+↑/↓ temperature)"

    def __init__(self, name: str, **kw) -> None:
        super().__init__(1, **kw)
        self.model_name = name
        self._current: Turn | None = None
        self._state_shown = 0.0

    @property
    def stream_settings(self) -> SamplingSettings | None:
        """What the running stream reads, per token (None between turns)."""
        return self._stream_settings[0] if self._stream_settings else None

    def compose(self) -> ComposeResult:
        yield Transcript()
        with Horizontal(id="gen-status"):
            yield TemperatureControl(self.settings.temperature)
            yield Static("", id="gen-state")
        yield Static("", id="alternatives")
        yield SettingsBar(self.settings, self.colour, id="gen-settings")
        yield Input(placeholder=self.PLACEHOLDER, id="prompt", classes="stream-prompt")

    def show_ready(self) -> None:
        transcript = self.query_one(Transcript)
        for prompt, settings, tokens, text in self._saved_turns():
            transcript.mount(Turn(prompt, settings, tokens, text, self.colour))
        transcript.scroll_end(animate=False, immediate=False)
        self._set_state("ready")
        self.call_after_refresh(self._show_summary)

    def _saved_turns(self) -> list[tuple]:
        """The saved transcript's turns (prompt, settings, tokens or None, text); anything malformed in
        the file is skipped or shown as plain text."""
        core = self.app.core
        if not core.model_exists(self.model_name):
            return []
        try:
            doc = core.store.read_extra(self.model_name, "transcript", {})
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

    def _show_summary(self) -> None:
        """What the next turn will run with (or what is wrong with a field), on the line under the status."""
        self.query_one("#alternatives", Static).update(Text(self.query_one(SettingsBar).summary_line(self.settings)))

    @on(Continuation.CursorMoved)
    def _show_alternatives(self, message: Continuation.CursorMoved) -> None:
        t = message.token
        if getattr(t, "saved", False):
            line = f"{t.text!r} p={t.prob:.2f} · alternatives are not kept for turns of an earlier session"
        else:
            line = f"{t.text!r} p={t.prob:.2f} · alternatives: " + "  ".join(f"{a!r} {p:.2f}" for a, p in t.alternatives)
        self.query_one("#alternatives", Static).update(Text(line))

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

    # ------------------------------------------------------------ a turn
    def check_model(self) -> bool:
        core = self.app.core
        if core.model_exists(self.model_name):
            return True
        new = getattr(self.screen, "training", None) is not None and self.screen.training.spec is not None
        self.app.notify(core.why_no_checkpoint(self.model_name, new), severity="warning", markup=False)
        return False

    def start_turn(self, prompt: str) -> None:
        turn = Turn(prompt, self.stream_settings.to_dict(), colour=self.colour)
        transcript = self.query_one(Transcript)
        transcript.mount(turn)
        transcript.start_following()  # a new turn always comes into view
        self._current = turn

    def produce(self, prompt: str, settings: list[SamplingSettings]) -> None:
        stream = self.open_stream(self.app.core.get_generator(self.model_name), prompt, settings[0])
        note = stream.info.message()
        if note:
            self.app.call_from_thread(self.app.notify, note, title="Prompt", severity="warning")
        for tok in stream:
            tok.text = visible(tok.text)  # a vocabulary token never reaches the terminal raw
            self.emit(0, tok)

    def open_stream(self, gen: lmcore.Generator, prompt: str, settings: SamplingSettings):
        """In the worker thread: the tokens of a turn (an iterable of TokenOut with ``info``)."""
        return gen.stream(prompt, settings, stop_event=self.stop_event)

    def draw(self, batches: list[list]) -> None:
        """When the text scrolls by more than half the view per frame nobody reads it as it passes: the
        next frame is skipped."""
        batch = batches[0]
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

    def settle(self) -> None:
        if self._current is not None:
            transcript = self.query_one(Transcript)
            self._current.continuation.settle()
            if transcript.following:
                transcript.scroll_end(animate=False, immediate=False)

    def show_end(self, reason: str, error: str | None) -> None:
        if error:
            if self._current is not None:
                self._current.remove()
            self._set_state("ready")
        else:
            n = len(self._current.continuation.tokens) if self._current else 0
            self._set_state(f"{reason}: {n} tokens")
            self._save_transcript()
        self._current = None

    def _save_transcript(self) -> None:
        core = self.app.core
        if not core.model_exists(self.model_name):
            return
        turns = [t.to_json() for t in self.query(Turn)]
        try:
            core.store.write_extra(self.model_name, "transcript", {"turns": turns[-MAX_TURNS_KEPT:]})
        except (LmError, OSError) as exc:
            self.app.notify(f"Could not save the transcript: {exc}", severity="warning")
