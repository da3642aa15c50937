"""Theme colours as Rich styles. The app draws some of its own text with Rich (the charts, the legends,
tokens coloured by probability), in the theme's colours; but a theme may name a colour in a way only
Textual reads: the ANSI themes' "ansi_cyan" or "ansi_red 50%". Those become Rich's names ("cyan",
"red"); a value Rich cannot draw at all becomes no colour, never an error that ends the app."""
from __future__ import annotations

import re
from functools import lru_cache

from rich.errors import StyleSyntaxError
from rich.style import Style


@lru_cache(maxsize=512)
def rich_style(value: str) -> str:
    """``value`` (a theme's colour) as a style Rich can parse, or "" when there is none."""
    for candidate in (value, re.sub(r"^ansi_|\s+\d+%$", "", value.strip())):
        try:
            Style.parse(candidate)
            return candidate
        except (StyleSyntaxError, ValueError):
            continue
    return ""


def theme_style(app, name: str, default: str = "") -> str:
    """The theme colour ``name`` ("success", "warning", …) of ``app`` as a Rich style; a name that is
    no theme colour is taken as a style of its own ("on rgb(40,40,200)")."""
    value = app.theme_variables.get(name)
    style = rich_style(value) if value is not None else rich_style(name)
    return style or default
