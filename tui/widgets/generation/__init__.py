"""Widgets of the generation pane."""
from .controls import SettingsBar, TemperatureControl
from .pane import GenerationPane
from .transcript import Continuation, Transcript, Turn

__all__ = ["Continuation", "GenerationPane", "SettingsBar", "TemperatureControl", "Transcript", "Turn"]
