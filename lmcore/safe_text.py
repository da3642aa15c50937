"""Text from files or models made safe to print to a terminal, and JSON made strict.

A vocabulary token, a corpus name or a device string read from a model's files may hold an escape
sequence that retitles the window, clears the screen or writes the clipboard (OSC 52). ``visible``
shows such characters as escapes (``\\x1b``) instead; newline and tab stay (``visible_line`` escapes
them too). ``strict_json`` writes JSON with no NaN/Infinity (null instead), valid UTF-8 only, and every
character a terminal would act on escaped (``\\u009b``), so a ``--json`` line is safe to print too."""
from __future__ import annotations

import json
import math
import re

# C0 controls but tab and newline, DEL, C1 controls, bidirectional overrides, lone surrogates
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
# in JSON text, besides the C0 controls JSON escapes itself: DEL, C1 controls (U+009B is a CSI), the
# bidirectional marks, embeddings, overrides and isolates, the line and paragraph separators
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    o = ord(c)
    return f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}"


def visible(text: str) -> str:
    """``text`` with control characters (other than newline and tab) shown as escapes."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def visible_line(text: str) -> str:
    """``text`` on one line: newline and tab are escaped as well."""
    return _UNSAFE_LINE.sub(_escape, text) if _UNSAFE_LINE.search(text) else text


def visible_token(text: str) -> str:
    """A token on its own (a candidate in a list): :func:`visible_line`, and a token of spaces only shown
    as that many ␣ (a blank label reads as nothing)."""
    return "␣" * len(text) if text and text.strip(" ") == "" else visible_line(text)


def _clean(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, str):
        return obj.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogate(obj) else obj
    if isinstance(obj, dict):
        return {_clean(str(k)): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def strict_json(obj) -> str:
    """One line of strict JSON: NaN and infinities become null, lone surrogates escapes; other non-ASCII
    text stays readable (the line is valid UTF-8). C0 controls are escaped by JSON itself, the other
    characters a terminal acts on (DEL, C1, bidirectional controls, U+2028/U+2029) as ``\\uXXXX``: they
    can only stand inside strings, where the escape reads back as the same character. Every ``--json``
    line of the command line is written by this function."""
    line = json.dumps(_clean(obj), ensure_ascii=False, allow_nan=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", line) if _JSON_UNSAFE.search(line) else line
