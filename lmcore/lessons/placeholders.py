"""A lesson's placeholders: ``{key.field}`` or ``{key.field:.2f}`` in its text, filled from the learner's
own results (a model's summary, a measure's numbers). Only that shape is accepted — no attribute or index
lookups, no conversions, no nested fields — so a lesson file can never reach into the program."""
from __future__ import annotations

import math
import re
import string

from ..safe_text import visible_line
from ..errors import LessonError

_FIELD_RE = re.compile(r"^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$")
_SPEC_RE = re.compile(r"^[<>^=]?[+\- ]?(\d{1,2})?[,_]?(\.\d{1,2})?[%efgdx]?$")
UNFILLED = "…"  # a placeholder whose value the lesson's run has not made yet

# what a lesson's model offers its text: the summary of its checkpoint, and numbers read from its history
MODEL_FIELDS = ("best_val_ppl", "best_val_bpc", "best_val_loss", "step", "elapsed", "minutes", "params",
                "tokens_per_s", "tokens_seen", "best_val_fill_top1", "best_val_fill_top5", "best_val_bleu",
                "best_val_exact", "mlm_loss", "pseudo_ppl", "nsp_accuracy", "first_train_loss",
                "last_train_loss", "max_train_loss", "max_train_ppl", "unigram_val_ppl", "name", "arch")


def fields_of(lesson) -> dict[str, tuple[str, ...]]:
    """Each key of the lesson (model or measure) and the fields its placeholders may name."""
    from .measures import MEASURES

    out = {m.key: MODEL_FIELDS for m in lesson.models}
    out.update({m.key: MEASURES[m.kind].field_names() for m in lesson.measures})
    return out


def placeholders(text: str) -> list[tuple[str, str, str]]:
    """(key, field, format spec) of each placeholder of ``text``; LessonError for a malformed one."""
    out = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise LessonError(f"its text has a broken placeholder ({exc}); write {{{{ and }}}} for braces") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        m = _FIELD_RE.match(name)
        if not m or conversion or not _SPEC_RE.match(spec or ""):
            raise LessonError(f"placeholder {{{visible_line(name)[:40]}}} must be {{key.field}} or "
                              f"{{key.field:.2f}} (a number format)")
        out.append((m.group(1), m.group(2), spec or ""))
    return out


def check_text(lesson) -> None:
    """Every placeholder of the lesson's texts names one of its keys and a field that key has."""
    known = fields_of(lesson)
    for text in (lesson.text, lesson.view.look, lesson.next.say):
        for key, field, _ in placeholders(text):
            if key not in known:
                raise LessonError(f"placeholder {{{key}.{field}}}: no model or measure has key '{key}'")
            if field not in known[key]:
                raise LessonError(f"placeholder {{{key}.{field}}}: '{key}' has no field '{field}' "
                                  f"(it has {', '.join(known[key])})")


def fill(text: str, values: dict) -> str:
    """``text`` with each placeholder replaced by its value in ``values`` ({key: {field: value}});
    ``…`` where the lesson has not run yet, ``n/a`` where the run measured nothing."""
    out = []
    for literal, name, spec, _ in string.Formatter().parse(text):
        out.append(literal)
        if name is None:
            continue
        key, _, field = name.partition(".")
        out.append(render(values.get(key, {}).get(field, UNFILLED) if key in values else UNFILLED, spec or ""))
    return "".join(out)


def render(value, spec: str) -> str:
    if value is UNFILLED:
        return UNFILLED
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a" if value is None else ("∞" if value > 0 else "-∞" if value < 0 else "n/a")
    if isinstance(value, str):
        return visible_line(value)
    try:
        return format(value, spec)
    except (ValueError, TypeError):
        return str(value)


def unfilled(text: str, values: dict) -> list[str]:
    """The placeholders of ``text`` that ``values`` does not fill with a number or a text."""
    return [f"{k}.{f}" for k, f, _ in placeholders(text)
            if not isinstance(values.get(k, {}).get(f), (int, float, str)) or isinstance(values[k][f], bool)]
