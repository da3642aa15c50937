"""A lesson's experiment: its models' runs (``run_specs``: the app hands them to its run registry, so the
learner can leave and come back), then its numbers (``finish``: each model's summary and the lesson's
measures), kept as the lesson's progress. ``run`` does it all headless (``lmcore lesson run``).

Each model trains as ``lesson<NN>-<key>`` in the learner's store, a new model each run: the lesson's
earlier model of that name is replaced (it belongs to the lesson). ``steps`` (or ``$LMPLAY_LESSON_STEPS``)
overrides every model's budget with that many steps: a tiny run for tests and a quick look."""
from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass
from typing import Callable

from ..errors import Cancelled, ConfigError, LmError
from ..safe_text import visible_line
from .lesson_file import Lesson, LessonError
from .measures import MEASURES, Context
from .placeholders import fill
from . import progress as saved

STEPS_ENV = "LMPLAY_LESSON_STEPS"


@dataclass
class LessonRun:
    """What a finished lesson run shows: its numbers and its text filled with them."""
    lesson: Lesson
    progress: saved.Progress
    text: str
    look: str
    next: str

    def to_json(self) -> dict:
        return {"lesson": self.lesson.number, "title": self.lesson.title, "chapter": self.lesson.chapter,
                "state": self.progress.state, "settings": self.progress.settings,
                "models": {m.key: self.lesson.model_name(m.key) for m in self.lesson.models},
                "values": saved.finite(self.progress.values), "text": self.text, "look": self.look,
                "next": self.next}


def budget_steps(steps: int | None = None) -> int | None:
    """The test budget: ``steps``, else ``$LMPLAY_LESSON_STEPS``, else None (the lesson's own budgets)."""
    if steps is None:
        raw = os.environ.get(STEPS_ENV, "").strip()
        if not raw:
            return None
        try:
            steps = int(raw)
        except ValueError:
            raise ConfigError(f"{STEPS_ENV} must be a whole number of steps (got {visible_line(raw)[:20]!r})") from None
    if not 1 <= steps <= 1_000_000:
        raise ConfigError(f"a lesson's step budget must be between 1 and 1,000,000 (got {steps})")
    return steps


def run_specs(lesson: Lesson, steps: int | None = None) -> list:
    """(key, RunSpec) of each model the lesson trains, its settings applied (``steps``: every budget)."""
    from ..training.config import TrainConfig
    from ..training.spec import RunSpec

    steps = budget_steps(steps)
    models, _ = lesson.resolved()
    out = []
    for m in models:
        train = dict(m.train)
        if steps is not None:
            train = {k: v for k, v in train.items() if k not in ("minutes", "steps", "eval_every")}
            train.update(steps=steps, eval_every=max(1, steps // 2))
        try:
            spec = RunSpec.new(lesson.model_name(m.key), str(m.corpus), arch=m.arch, preset=m.preset,
                               options=m.options, tokens=m.tokens, prep=m.prep, train=TrainConfig(**train))
        except TypeError as exc:
            raise LessonError(f"model {m.key}: {exc}") from None
        out.append((m.key, spec))
    return out


def clear_models(lesson: Lesson, store) -> None:
    """Remove the lesson's earlier models (a run trains them anew); one in use elsewhere is an LmError."""
    for m in lesson.models:
        name = lesson.model_name(m.key)
        if store.exists(name):
            store.delete(name)


def model_values(lesson: Lesson, store) -> dict:
    """Each model's numbers for the lesson's text: its summary, and what its history shows."""
    out = {}
    for m in lesson.models:
        name = lesson.model_name(m.key)
        entry = store.check(name) if store.exists(name) else None
        if entry is None or not entry.ok:
            raise LmError(f"the lesson's model {name} is missing or damaged: run the lesson again")
        ck = entry.checkpoint
        s = entry.summary()
        losses = [pt[1] for pt in ck.curve]
        tr = ck.train
        tokens = ck.step * tr.batch_size * tr.seq_len if ck.model.family.trainable and tr.batch_size else None
        out[m.key] = {k: s.get(k) for k in ("best_val_ppl", "best_val_bpc", "best_val_loss", "step", "elapsed",
                                             "params", "tokens_per_s", "best_val_fill_top1", "best_val_fill_top5",
                                             "best_val_bleu", "best_val_exact", "mlm_loss", "pseudo_ppl",
                                             "nsp_accuracy", "name", "arch")}
        out[m.key].update(
            minutes=ck.elapsed / 60, tokens_seen=tokens,
            first_train_loss=losses[0] if losses else None, last_train_loss=losses[-1] if losses else None,
            max_train_loss=max(losses) if losses else None,
            max_train_ppl=_exp(max(losses)) if losses else None,
            unigram_val_ppl=_exp(ck.unigram_val_loss) if ck.unigram_val_loss is not None else None)
    return saved.finite(out)


def _exp(x: float) -> float:
    return math.exp(x) if x < 700 else math.inf


def finish(lesson: Lesson, store, steps: int | None = None, stop: threading.Event | None = None) -> LessonRun:
    """After the lesson's models trained: their numbers and the measures, saved as the lesson's progress."""
    values = model_values(lesson, store)
    _, measures = lesson.resolved()
    ctx = Context(store, {m.key: lesson.model_name(m.key) for m in lesson.models}, budget_steps(steps) is not None,
                  stop or threading.Event())
    for m in measures:
        ctx.check_stop()
        values[m.key] = MEASURES[m.kind].run(m.args, ctx)
    progress = saved.Progress(lesson.number, "done", dict(lesson.settings), saved.finite(values))
    saved.save(progress, store.home)
    return result(lesson, progress)


def result(lesson: Lesson, progress: saved.Progress) -> LessonRun:
    """The lesson's texts filled with ``progress``'s numbers (``…`` where it has none yet)."""
    v = progress.values
    return LessonRun(lesson, progress, fill(lesson.text, v), fill(lesson.view.look, v), fill(lesson.next.say, v))


def mark(lesson: Lesson, store, state: str, message: str = "") -> None:
    """Record that the lesson is running / stopped / failed (its last numbers stay)."""
    p = saved.load(lesson.number, store.home)
    p.state, p.message = state, message
    if state == "running":
        p.settings = dict(lesson.settings)
    saved.save(p, store.home)


def run(lesson: Lesson, store=None, home=None, steps: int | None = None,
        on_event: Callable[[str, object], None] | None = None, stop: threading.Event | None = None) -> LessonRun:
    """The whole experiment headless: each model trained in turn (``on_event(key, event)`` sees its
    events), then :func:`finish`. A stop or a failed model ends the lesson (stopped / failed), saving what
    was trained."""
    from ..store.model_store import Store
    from ..training.trainer import Trainer

    store = store or Store(home)
    stop = stop or threading.Event()
    specs = run_specs(lesson, steps)
    clear_models(lesson, store)
    mark(lesson, store, "running")
    try:
        for key, spec in specs:
            trainer = Trainer(store, spec.name, (lambda e, k=key: on_event(k, e)) if on_event else None, stop)
            trainer.prepare(spec)
            end = trainer.run()
            if end.kind == "failed":
                raise LmError(f"model {spec.name} failed: {end.message}")
            if stop.is_set():
                raise Cancelled("the lesson was stopped")
        return finish(lesson, store, steps, stop)
    except Cancelled:
        mark(lesson, store, "stopped", "stopped before it finished: run it again")
        raise
    except LmError as exc:
        mark(lesson, store, "failed", str(exc))
        raise
