"""The lessons that ship (``assets/lessons/*.md``, in the order of their numbers) and the lesson a learner
names: a number of a shipped lesson, or the path of a lesson file (one a teacher exported). A broken file
is listed as broken with its one line; it never hides the others."""
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


def catalog(folder: Path | None = None) -> list[Entry]:
    """Every lesson file of ``folder`` (default: the shipped ones), usable ones by number, broken ones after."""
    folder = folder or lessons_dir()
    entries = []
    for p in sorted(folder.glob("*.md")) if folder.is_dir() else []:
        try:
            entries.append(Entry(p, read(p)))
        except LessonError as exc:
            entries.append(Entry(p, error=str(exc)))
    good = sorted((e for e in entries if e.ok), key=lambda e: e.lesson.number)
    numbers = [e.lesson.number for e in good]
    dupes = {n for n in numbers if numbers.count(n) > 1}
    if dupes:
        good = [e if e.lesson.number not in dupes else Entry(e.path, error=f"lesson {e.path.name}: another lesson "
                f"has number {e.lesson.number}") for e in good]
    return [e for e in good if e.ok] + [e for e in entries if not e.ok] + [e for e in good if not e.ok]


def find(ref: str | int) -> Lesson:
    """The lesson ``ref`` names: a shipped lesson's number, or a lesson file's path."""
    text = str(ref).strip()
    if text.isdigit():
        for e in catalog():
            if e.ok and e.lesson.number == int(text):
                return e.lesson
        broken = [e for e in catalog() if not e.ok and e.path.name.startswith(f"{int(text):02d}")]
        if broken:
            raise LessonError(broken[0].error)
        known = ", ".join(str(e.lesson.number) for e in catalog() if e.ok)
        raise LessonError(f"no lesson {visible_line(text)[:20]}: the lessons are {known}")
    p = Path(text).expanduser()
    if not p.is_file():
        raise LessonError(f"no lesson file {visible_line(text)[:200]}: give a lesson's number (lmcore lesson list) "
                          f"or the path of a lesson file")
    return read(p)
