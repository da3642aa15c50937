"""Lessons: the chapters as runnable experiments on the learner's machine and text. A lesson is a file
(Markdown with a TOML front matter, lesson_file.py) that ships in ``assets/lessons/`` or that anyone
writes; its experiment trains a few models and measures a few things (experiment.py, measures.py), and
its text is filled with the learner's own numbers (placeholders.py). Where each lesson stands is kept
per learner (progress.py). The app's Learn screen and ``lmcore lesson`` use these names."""
from __future__ import annotations

import importlib

_WHERE = {"Lesson": "lesson_file", "LessonError": "lesson_file", "ModelPlan": "lesson_file",
          "MeasurePlan": "lesson_file", "ViewPlan": "lesson_file", "NextStep": "lesson_file",
          "read_lesson": "lesson_file:read", "dumps": "lesson_file", "Entry": "library", "catalog": "library",
          "find": "library", "lessons_dir": "library", "own_dir": "library", "LessonRun": "experiment", "run": "experiment",
          "run_specs": "experiment", "finish": "experiment", "result": "experiment", "mark": "experiment",
          "clear_models": "experiment", "budget_steps": "experiment", "STEPS_ENV": "experiment",
          "Progress": "progress", "load_progress": "progress:load", "save_progress": "progress:save",
          "MEASURES": "measures", "fill": "placeholders", "unfilled": "placeholders", "UNFILLED": "placeholders"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = _WHERE[name].partition(":")
    value = getattr(importlib.import_module(f".{module}", __name__), attr or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
