"""User settings: the shipped defaults (``assets/defaults.json``) overlaid by ``<home>/settings.json``.

settings.json may be damaged or hand-edited: a value whose type differs from the default's is dropped
(the default applies) and reported in ``problems``, for the app to show once."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from . import paths
from .errors import LmError
from .store.files import BadFile, read_json, write_json

MAX_SETTINGS_BYTES = 1 << 20  # a settings file larger than this is damaged (it holds a few lines)


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _same_kind(default, value) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and value == value and abs(value) != float("inf")
    return isinstance(value, type(default))


def _checked(defaults: dict, user: dict, where: str, problems: list[str]) -> dict:
    """``user`` without the values whose type differs from the default's."""
    out = {}
    for k, v in user.items():
        if k not in defaults:
            out[k] = v  # a setting this version does not know: kept, unused
        elif isinstance(defaults[k], dict):
            if isinstance(v, dict):
                out[k] = _checked(defaults[k], v, f"{where}{k}.", problems)
            else:
                problems.append(f"{where}{k} must be an object")
        elif defaults[k] is None or _same_kind(defaults[k], v):
            out[k] = v
        else:
            problems.append(f"{where}{k} must be {type(defaults[k]).__name__}, not {json.dumps(v)[:40]}")
    return out


class Settings:
    def __init__(self, home: str | Path | None = None):
        self.home = paths.home(home)
        self.path = paths.settings_file(self.home)
        self.defaults = read_json(paths.assets_dir() / "defaults.json", MAX_SETTINGS_BYTES, follow_links=True)
        self.problems: list[str] = []
        self.unreadable = False  # the whole file was refused: it is never overwritten (hand edits kept)
        user: dict = {}
        try:  # a link is followed (a settings file kept with one's dotfiles), to a regular file only
            user = read_json(self.path, MAX_SETTINGS_BYTES, follow_links=True)
        except FileNotFoundError:
            pass
        except BadFile as exc:
            self.problems.append(f"it {exc}")
            self.unreadable = True
        if not isinstance(user, dict):
            self.problems.append("it does not hold an object")
            self.unreadable, user = True, {}
        self.user = _checked(self.defaults, user, "", self.problems)

    def problem_message(self) -> str | None:
        if not self.problems:
            return None
        return f"{self.path}: {'; '.join(self.problems[:5])}. The defaults apply" + \
            ("." if self.unreadable else " for those.")

    @property
    def data(self) -> dict:
        return _merge(self.defaults, self.user)

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def set(self, key: str, value) -> None:
        """Remember a setting; raises LmError (one line) when the settings file cannot be written."""
        self.user[key] = value
        if self.unreadable:
            raise LmError(f"could not save settings to {self.path}: it could not be read, so it is not "
                          f"overwritten (fix or delete it)")
        try:
            write_json(self.path, self.user)
        except OSError as exc:
            raise LmError(f"could not save settings to {self.path} ({exc.strerror or exc})") from None
