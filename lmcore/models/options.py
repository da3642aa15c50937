"""Options several families share, as :func:`~.family.option` fields with the same names, help and
ranges everywhere (a family's options dataclass uses the ones it has)."""
from __future__ import annotations

from .family import option


def _dropout(value) -> str | None:
    ok = isinstance(value, (int, float)) and 0.0 <= value < 1.0  # NaN fails too
    return None if ok else "dropout must be in [0, 1)"


def num_layers(default: int = 2):
    return option(default, "layers", range=(1, 64), flag="layers")


def hidden(default: int = 256, help: str = "state size"):
    return option(default, help, range=(1, 16384))


def dropout(default: float = 0.0):
    return option(default, "dropout between layers while training", check=_dropout)
