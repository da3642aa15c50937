"""Sampling controls: the always-visible temperature and the settings bar."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Static, Switch

from lmcore import ConfigError, SamplingSettings, sampling_summary

TEMP_STEP = 0.1
TEMP_MAX = 3.0


class TemperatureControl(Horizontal):
    """− temperature +, clickable; the pane binds keys to the same actions."""

    class Changed(Message):
        def __init__(self, value: float) -> None:
            super().__init__()
            self.value = value

    def __init__(self, value: float, **kw) -> None:
        super().__init__(**kw)
        self.value = value

    def compose(self) -> ComposeResult:
        yield Button("−", id="temp-down")
        yield Static(self._label(), id="temp-value")
        yield Button("+", id="temp-up")

    def _label(self) -> str:
        return f" temperature {self.value:.2f}{' (greedy)' if self.value == 0 else ''} "

    def nudge(self, delta: float) -> None:
        self.set_value(self.value + delta)

    def set_value(self, value: float) -> None:
        self.value = round(min(TEMP_MAX, max(0.0, value)), 2)
        self.query_one("#temp-value", Static).update(self._label())
        self.post_message(self.Changed(self.value))

    @on(Button.Pressed, "#temp-down")
    def _down(self, event: Button.Pressed) -> None:
        event.stop()
        self.nudge(-TEMP_STEP)

    @on(Button.Pressed, "#temp-up")
    def _up(self, event: Button.Pressed) -> None:
        event.stop()
        self.nudge(TEMP_STEP)


FIELDS = [("top_k", "top-k", int), ("top_p", "top-p", float), ("min_p", "min-p", float),
          ("max_tokens", "length", int), ("repetition_penalty", "rep. pen.", float), ("seed", "seed", int),
          ("beam", "beam", int)]


class SettingsBar(Vertical):
    """top-k, top-p, min-p, length, repetition penalty, seed, beam width (0: sample) and probability
    colouring (two rows)."""

    def __init__(self, settings: SamplingSettings, colour: bool, **kw) -> None:
        super().__init__(**kw)
        self.settings = settings
        self.colour = colour

    def compose(self) -> ComposeResult:
        rows = (FIELDS[:4], FIELDS[4:])
        for i, fields in enumerate(rows):
            with Horizontal(classes="settings-row"):
                for key, label, _ in fields:
                    value = getattr(self.settings, key)
                    yield Label(label)
                    yield Input("" if value is None else str(value), id=f"set-{key}",
                                placeholder="random" if key == "seed" else "")
                if i == 1:
                    yield Label("colour by probability")
                    yield Switch(self.colour, id="colour")

    def show(self, settings: SamplingSettings) -> None:
        """Put ``settings`` into the fields (a preset chosen from the palette)."""
        for key, _, _ in FIELDS:
            value = getattr(settings, key)
            self.query_one(f"#set-{key}", Input).value = "" if value is None else str(value)

    def summary_line(self, base: SamplingSettings, note: str = "") -> str:
        """What the next run will use ("next: T 0.8 · …", with ``note``), or what is wrong with a field."""
        try:
            return "next: " + sampling_summary(self.read(base).to_dict()) + note
        except ConfigError as exc:
            return f"⚠ {exc}"

    def read(self, base: SamplingSettings) -> SamplingSettings:
        """The settings typed here over ``base``; raises ConfigError with a clear line if one is off."""
        values = base.to_dict()
        for key, label, kind in FIELDS:
            raw = self.query_one(f"#set-{key}", Input).value.strip()
            if key == "seed" and raw == "":
                values[key] = None
                continue
            try:
                values[key] = kind(raw)
            except ValueError:
                raise ConfigError(f"{label} must be a{'n integer' if kind is int else ' number'} (got {raw!r})") from None
        return SamplingSettings(**values).validate()
