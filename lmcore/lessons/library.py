"""The lessons: those that ship (``assets/lessons/*.md``) and the learner's own (``<data folder>/lessons/
*.md``: anyone can write one), in the order of their numbers; and the lesson a learner names: a number,
or the path of a lesson file (one a teacher exported). A broken file is listed as broken with its one
line; it never hides the others. A lesson of the learner's with the number of a shipped one is broken."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..safe_text import visible_line
from .lesson_file import Lesson, LessonError, read


@dataclass(frozen=True)
class Entry:
    path: Path
    lesson: Lesson | None = None
    error: str = ""               # why the file cannot be used

    @property
    def ok(self) -> bool:
        return self.lesson is not None


def lessons_dir() -> Path:
    return paths.assets_dir() / "lessons"


def own_dir(home=None) -> Path:
    """The learner's own lessons: ``<data folder>/lessons/``."""
    return paths.home(home) / "lessons"


def catalog(home=None) -> list[Entry]:
    """Every lesson, usable ones by number, then the broken ones (shipped first, then the learner's)."""
    entries, seen = [], set()
    for folder in (lessons_dir(), own_dir(home)):
        try:
            files = sorted(folder.glob("*.md")) if folder.is_dir() else []
        except OSError:
            files = []
        for p in files:
            try:
                lesson = read(p)
            except LessonError as exc:
                entries.append(Entry(p, error=str(exc)))
                continue
            if lesson.number in seen:
                entries.append(Entry(p, error=f"lesson {visible_line(p.name)}: another lesson has number "
                                              f"{lesson.number}: give it another"))
                continue
            seen.add(lesson.number)
            entries.append(Entry(p, lesson))
    return sorted((e for e in entries if e.ok), key=lambda e: e.lesson.number) + [e for e in entries if not e.ok]


def find(ref: str | int, home=None) -> Lesson:
    """The lesson ``ref`` names: a lesson's number, or a lesson file's path."""
    text = str(ref).strip()
    if text.isdigit():
        entries = catalog(home)
        for e in entries:
            if e.ok and e.lesson.number == int(text):
                return e.lesson
        broken = [e for e in entries if not e.ok and e.path.name.startswith(f"{int(text):02d}")]
        if broken:
            raise LessonError(broken[0].error)
        known = ", ".join(str(e.lesson.number) for e in entries if e.ok)
        raise LessonError(f"no lesson {visible_line(text)[:20]}: the lessons are {known}")
    p = Path(text).expanduser()
    if not p.is_file():
        raise LessonError(f"no lesson file {visible_line(text)[:200]}: give a lesson's number (lmcore lesson list) "
                          f"or the path of a lesson file")
    return read(p)
