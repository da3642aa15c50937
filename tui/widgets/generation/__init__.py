"""Widgets of the generation pane."""
from .chat import ChatPane
from .controls import SettingsBar, TemperatureControl
from .pane import GenerationPane
from .transcript import Continuation, Transcript, Turn

__all__ = ["ChatPane", "Continuation", "GenerationPane", "SettingsBar", "TemperatureControl", "Transcript", "Turn"]
