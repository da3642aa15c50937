"""Reading dataclasses from untrusted JSON: every value is checked against the field's declared type.

meta.json, settings.json and vocabularies may be damaged or hostile; ``from_mapping`` turns a wrong type
into one :class:`ValueError` naming the field, never a ``TypeError`` somewhere later."""
from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, fields


def _allowed(tp) -> tuple[set, bool]:
    """The plain types a hint allows and whether None is allowed (``int | None`` -> ({int}, True))."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        out, none = set(), False
        for a in typing.get_args(tp):
            if a is type(None):
                none = True
            else:
                out.add(typing.get_origin(a) or a)
        return out, none
    return {typing.get_origin(tp) or tp}, False


def check_value(where: str, value, tp):
    """``value`` if it fits the type hint ``tp`` (ints are accepted for floats; bools are not ints);
    raises ValueError otherwise. Floats must be finite."""
    allowed, none_ok = _allowed(tp)
    if value is None:
        if none_ok:
            return None
        raise ValueError(f"{where} must not be null")
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif isinstance(value, int) and int in allowed:
        return value
    elif isinstance(value, (int, float)) and float in allowed:
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number")
        return float(value)
    elif isinstance(value, str) and str in allowed:
        return value
    elif isinstance(value, list) and list in allowed:
        return value
    elif isinstance(value, dict) and dict in allowed:
        return value
    names = " or ".join(sorted(t.__name__ for t in allowed)) + (" or null" if none_ok else "")
    raise ValueError(f"{where} must be {names} (got {type(value).__name__})")


def from_mapping(cls, d, where: str, strict: bool = False):
    """An instance of dataclass ``cls`` from a JSON object. Unknown keys are ignored (or refused when
    ``strict``); missing keys take the field's default, or are an error when it has none."""
    if not isinstance(d, dict):
        raise ValueError(f"{where} must be an object (got {type(d).__name__})")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if f.init}
    if strict and (extra := set(d) - set(known)):
        raise ValueError(f"{where} has unknown key(s): {', '.join(sorted(map(str, extra)))}")
    kw = {}
    for name, f in known.items():
        if name in d:
            kw[name] = check_value(f"{where}.{name}", d[name], hints[name])
        elif f.default is MISSING and f.default_factory is MISSING:
            raise ValueError(f"{where} lacks '{name}'")
    return cls(**kw)
