"""User settings: the shipped defaults (``assets/defaults.json``) overlaid by ``<home>/settings.json``."""
from __future__ import annotations

import copy
import json
from pathlib import Path

from . import paths
from .fsutil import write_json


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


class Settings:
    def __init__(self, home: str | Path | None = None):
        self.home = paths.home(home)
        self.path = paths.settings_file(self.home)
        self.defaults = json.loads((paths.assets_dir() / "defaults.json").read_text("utf-8"))
        try:
            user = json.loads(self.path.read_text("utf-8"))
            self.user = user if isinstance(user, dict) else {}
        except (OSError, ValueError):
            self.user = {}  # missing or damaged: the defaults apply

    @property
    def data(self) -> dict:
        return _merge(self.defaults, self.user)

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    def set(self, key: str, value) -> None:
        self.user[key] = value
        write_json(self.path, self.user)
