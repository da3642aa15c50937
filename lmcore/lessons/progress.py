"""Where each lesson stands for this learner, remembered across sessions: not started, running, done
(stopped, failed), the settings it ran with and the numbers it measured. One small JSON file per lesson in
``<data folder>/lessons/``, written atomically; a damaged one reads as not started, with the reason."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import paths
from ..store.files import BadFile, read_json, write_json

FORMAT = 1
STATES = ("not started", "running", "done", "stopped", "failed")
LIMIT = 1 << 20


@dataclass
class Progress:
    number: int
    state: str = "not started"
    settings: dict = field(default_factory=dict)   # the settings of the last run
    values: dict = field(default_factory=dict)     # {key: {field: number or text}} of the last run
    message: str = ""                              # a failed run's line; a damaged file's reason
    updated: str = ""

    def to_json(self) -> dict:
        return {"format": FORMAT, "lesson": self.number, "state": self.state, "settings": self.settings,
                "values": finite(self.values), "message": self.message, "updated": self.updated}


def finite(values):
    """``values`` with the numbers JSON cannot hold (NaN, infinities) as None."""
    if isinstance(values, dict):
        return {k: finite(v) for k, v in values.items()}
    if isinstance(values, float) and not math.isfinite(values):
        return None
    return values


def folder(home=None) -> Path:
    return paths.home(home) / "lessons"


def path(number: int, home=None) -> Path:
    return folder(home) / f"state-{number:02d}.json"


def load(number: int, home=None) -> Progress:
    """Lesson ``number``'s progress (not started when it has none, or when its file is damaged)."""
    p = path(number, home)
    if not p.exists():
        return Progress(number)
    try:
        d = read_json(p, LIMIT)
        return _parse(number, d)
    except (OSError, BadFile, ValueError) as exc:
        return Progress(number, message=f"its saved progress ({p.name}) is damaged and was ignored: {exc}")


def _parse(number: int, d) -> Progress:
    if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("lesson") != number:
        raise ValueError("not a lesson progress file of this version")
    state, settings, values = d.get("state"), d.get("settings", {}), d.get("values", {})
    if state not in STATES or not isinstance(settings, dict) or not isinstance(values, dict):
        raise ValueError("its state, settings or values are not what they should be")
    for key, fields in values.items():
        if not isinstance(fields, dict) or not all(v is None or isinstance(v, (int, float, str)) for v in fields.values()):
            raise ValueError(f"the values of '{key}' are not numbers or texts")
    for value in settings.values():
        if not isinstance(value, (int, float, str, bool)):
            raise ValueError("a setting is not a number, a text or true/false")
    return Progress(number, state, settings, values, str(d.get("message", ""))[:500], str(d.get("updated", ""))[:40])


def save(progress: Progress, home=None) -> None:
    """Write ``progress`` atomically (StoreError-free: an OSError is the caller's to report)."""
    progress.updated = time.strftime("%Y-%m-%dT%H:%M:%S")
    target = path(progress.number, home)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json(target, progress.to_json())
