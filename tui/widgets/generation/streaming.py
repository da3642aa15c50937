"""What the Generate tab and the arena share: a prompt is read with the settings bar's settings, a thread
worker streams tokens into buffers (one per stream), the buffers are drawn once per frame (10 a second,
never one UI call per token), and the end (done, stopped or an error) is shown. Esc stops; the
temperature can change mid-stream (every stream reads it at its next token).

A subclass composes a ``TemperatureControl``, a ``SettingsBar`` (id ``gen-settings``), a state line
(``STATE``) and an Input with the class ``stream-prompt``, and says what a turn is: ``start_turn``,
``produce`` (in the worker), ``draw``, ``settle`` and ``show_end``."""
from __future__ import annotations

import threading
import time

from textual import on, work
from textual.containers import Vertical
from textual.widgets import Input, Static, Switch

from lmcore import LmError, SamplingSettings

from ...messages import GenerationFinished
from .controls import SettingsBar, TemperatureControl
from .transcript import Continuation

FRAME = 1 / 10  # a frame of the growing text: each costs the generator thread time (the GIL)


class StreamingPane(Vertical):
    STATE = "#gen-state"  # the Static the state line is written to

    def __init__(self, streams: int, **kw) -> None:
        super().__init__(**kw)
        core = self.app.core
        self.settings = core.generation_defaults()
        self.colour = bool(core.settings.get("colour_by_probability", False))
        self.stop_event = threading.Event()
        self.generating = False
        self._lock = threading.Lock()
        self._pending: list[list] = [[] for _ in range(streams)]  # tokens not drawn yet, per stream
        self._stream_settings: list[SamplingSettings] = []  # what the running streams read, per token
        self._started = 0.0
        self._skip_frame = False

    def on_mount(self) -> None:
        self.show_ready()
        self._timer = self.set_interval(FRAME, self._flush, pause=True)  # runs only while generating

    # ------------------------------------------------------------ what a subclass says
    def show_ready(self) -> None:
        """On mount: what shows before the first prompt."""
        self._set_state("ready")

    def check_model(self) -> bool:
        """Whether there is something to generate with (else a notification says why not)."""
        return True

    def start_turn(self, prompt: str) -> None:
        """A new prompt: the place its tokens are drawn in."""
        raise NotImplementedError

    def produce(self, prompt: str, settings: list[SamplingSettings]) -> None:
        """In the worker thread: stream tokens into the buffers (``emit``) until done or stopped."""
        raise NotImplementedError

    def draw(self, batches: list[list]) -> None:
        """Once per frame: the tokens of each stream that arrived since the last frame."""
        raise NotImplementedError

    def settle(self) -> None:
        """The streams ended: the texts as they stay."""

    def show_end(self, reason: str, error: str | None) -> None:
        """How it ended: ``reason`` done or stopped, or an ``error`` (already notified)."""

    def _show_summary(self) -> None:
        """What the next turn will run with (or what is wrong with a field)."""

    # ------------------------------------------------------------ controls
    def action_temperature(self, delta: float) -> None:
        self.query_one(TemperatureControl).nudge(delta)

    @on(TemperatureControl.Changed)
    def _temperature_changed(self, message: TemperatureControl.Changed) -> None:
        self.settings.temperature = message.value
        for s in self._stream_settings:  # read at every token: takes effect mid-stream
            s.temperature = message.value
        self.app.core.save_generation_settings(self.settings)
        self._show_summary()

    @on(Input.Changed, "#gen-settings Input")
    def _settings_typed(self) -> None:
        self._show_summary()

    @on(Switch.Changed, "#colour")
    def _colour_changed(self, message: Switch.Changed) -> None:
        self.colour = message.value
        for c in self.query(Continuation):
            c.set_colour(self.colour)
        self.app.core.remember("colour_by_probability", self.colour)

    def action_stop_generation(self) -> None:
        prompt = self.query_one(".stream-prompt", Input)
        if self.generating:
            self.stop_event.set()
        elif self.screen.focused is not prompt:
            prompt.focus()

    def _set_state(self, text: str) -> None:
        self.query_one(self.STATE, Static).update(f" │ {text}", layout=False)  # one fixed line: no layout

    # ------------------------------------------------------------ generation
    @on(Input.Submitted, ".stream-prompt")
    def _submit(self, message: Input.Submitted) -> None:
        message.stop()
        self.generate(message.value)

    def generate(self, prompt: str) -> None:
        if self.generating:
            self.app.notify("Still generating: press Esc to stop first.", severity="warning")
            return
        if not self.check_model():
            return
        try:
            settings = self.query_one(SettingsBar).read(self.settings)
        except LmError as exc:
            self.app.notify(str(exc), title="Settings", severity="error")
            return
        self.settings = settings
        self.app.core.save_generation_settings(settings)
        self._stream_settings = [SamplingSettings(**settings.to_dict()) for _ in self._pending]
        self._pending = [[] for _ in self._pending]
        prompt_input = self.query_one(".stream-prompt", Input)
        prompt_input.value = ""
        prompt_input.cursor_blink = False  # a blink redraws the prompt's styles: the stream needs the time
        self.start_turn(prompt)
        self.stop_event = threading.Event()
        self.generating = True
        self._started = time.monotonic()
        self._set_state("generating… (Esc stops)")
        self._timer.resume()
        self._stream(prompt, self._stream_settings)

    @work(thread=True, exclusive=True, group="generation", exit_on_error=False)
    def _stream(self, prompt: str, settings: list[SamplingSettings]) -> None:
        try:
            self.produce(prompt, settings)
        except LmError as exc:
            self.post_message(GenerationFinished("error", str(exc)))
            return
        except Exception as exc:  # noqa: BLE001 - one notification, never a traceback
            self.post_message(GenerationFinished("error", f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(GenerationFinished("stopped" if self.stop_event.is_set() else "done"))

    def emit(self, stream: int, token) -> None:
        """In the worker thread: a token of stream ``stream``, drawn at the next frame."""
        with self._lock:
            self._pending[stream].append(token)

    def _flush(self) -> None:
        """Once per frame: draw what arrived. A subclass may skip the next frame (``_skip_frame``) when
        the text scrolls by faster than anyone reads it, which leaves the generator more of the CPU."""
        if self._skip_frame:
            self._skip_frame = False
            return
        with self._lock:
            batches, self._pending = self._pending, [[] for _ in self._pending]
        self.draw(batches)

    @on(GenerationFinished)
    def _finished(self, message: GenerationFinished) -> None:
        message.stop()
        self._timer.pause()
        self._skip_frame = False  # the last tokens are drawn, whatever the last frame did
        self._flush()
        self.settle()
        self.generating = False
        self._stream_settings = []
        self.query_one(".stream-prompt", Input).cursor_blink = True
        if message.error:
            self.app.notify(message.error, title="Cannot generate", severity="error", timeout=8)
        self.show_end(message.reason, message.error)
