"""How the app writes a key for people: ``ctrl+↑``, ``F5``, ``Esc`` (the help, tab labels)."""
from __future__ import annotations

import re

KEY_NAMES = {"enter": "Enter", "escape": "Esc", "delete": "Delete", "space": "Space", "tab": "Tab", "up": "↑",
             "down": "↓", "left": "←", "right": "→", "home": "Home", "end": "End"}


def key_label(key: str) -> str:
    """A key as the help writes it: ``ctrl+↑``, ``F5``, ``Esc``."""
    *mods, last = key.split("+")
    last = KEY_NAMES.get(last, last.upper() if re.fullmatch(r"f\d+", last) else last)
    return "+".join([*mods, last])
