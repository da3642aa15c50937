"""Widgets of the compare screen: the arena and the same-text comparison."""
from .arena import Arena, ArenaColumn
from .same_text import SameText

__all__ = ["Arena", "ArenaColumn", "SameText"]
