"""The app's lesson runs: one lesson's models trained one after another through the app's run registry,
then its numbers measured (``lmcore.lessons.finish``, in a worker). The app owns it (``app.lessons``), not a
screen: leaving the lesson screen keeps the lesson going, and coming back shows where it is.

The app hands every run's end to :meth:`LessonRuns.run_finished`; each change is announced as a
``LessonChanged`` news (``Core.announce``) to the screens that follow it."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import lmcore.lessons as L
from lmcore import Cancelled, LmError, visible_line

from .messages import News

RUNNING = ("running", "measuring")  # a live lesson's states while it is not over


class LessonChanged(News):
    """Lesson ``number`` moved on: its next model started, it is measuring, done, stopped or failed."""

    def __init__(self, number: int) -> None:
        super().__init__()
        self.number = number


@dataclass
class LessonLive:
    lesson: object                     # lmcore.lessons.Lesson, with the settings it runs with
    specs: list                        # (key, RunSpec) of each model, in order
    index: int = 0                     # the model training now
    state: str = "running"             # running, measuring, done, stopped, failed
    message: str = ""
    result: object = None              # the LessonRun once done
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def active(self) -> bool:
        return self.state in RUNNING

    @property
    def current(self) -> str:
        """The name of the model training now (the last one once all trained; none when it trains none)."""
        return self.specs[min(self.index, len(self.specs) - 1)][1].name if self.specs else ""

    def line(self) -> str:
        """One line: which model of how many trains now."""
        return f"model {self.index + 1} of {len(self.specs)}: {self.current}"


class LessonRuns:
    def __init__(self, app, core) -> None:
        self.app = app
        self.core = core
        self.live: dict[int, LessonLive] = {}
        self.chosen: dict[int, dict] = {}  # the settings each lesson's screen last showed (this session)

    def get(self, number: int) -> LessonLive | None:
        return self.live.get(number)

    def state(self, number: int) -> str | None:
        """The live state of lesson ``number`` in this app, or None when it has not run here."""
        live = self.live.get(number)
        return live.state if live else None

    def start(self, lesson) -> LessonLive:
        """Clear the lesson's earlier models, mark it running and train its first model (LmError: why not)."""
        live = self.live.get(lesson.number)
        if live is not None and live.active:
            raise LmError(f"lesson {lesson.number} is already running: s stops it")
        specs = L.run_specs(lesson)
        busy = [self.core.runs.get(spec.name) for _, spec in specs if self.core.runs.is_running(spec.name)]
        if busy and busy[0].stop.is_set():
            raise LmError(f"'{busy[0].name}' is still saving (it was stopped): r again in a moment")
        if busy:
            raise LmError(f"'{busy[0].name}' is training: stop it first (open it, then x)")
        store = self.core.store
        try:
            L.clear_models(lesson, store)
            L.mark(lesson, store, "running")
        except OSError as exc:
            raise LmError(f"cannot write the lesson's progress: {exc.strerror or exc}") from None
        live = self.live[lesson.number] = LessonLive(lesson, specs)
        if specs:
            self._train(live)
        else:  # a lesson that only measures
            self._measure(live)
        return live

    def _train(self, live: LessonLive) -> None:
        try:
            self.core.runs.start(live.specs[live.index][1])
        except LmError as exc:
            self._end(live, "failed", str(exc))
            return
        self._changed(live)

    def owns(self, name: str) -> bool:
        """Whether model ``name`` trains for a lesson running now (its end is the lesson's news, not its own)."""
        return any(lv.state == "running" and lv.current == name for lv in self.live.values())

    def stop(self, number: int) -> None:
        """Stop the lesson: its model's run stops (it saves), the lesson is marked stopped."""
        live = self.live.get(number)
        if live is None or not live.active:
            return
        live.stop.set()
        if live.current:
            self.core.runs.stop(live.current)
        self._end(live, "stopped", "stopped before it finished: r runs it again")

    def stop_all(self) -> None:
        for number in list(self.live):
            self.stop(number)

    def run_finished(self, name: str, error: str | None, run) -> bool:
        """A run ended (the app's RunFinished; ``run``: the registry's record of it, or None): the lesson
        it belongs to moves on. Whether it was a lesson's (one this app ran: its end is the lesson's news)."""
        live = next((lv for lv in self.live.values() if any(spec.name == name for _, spec in lv.specs)), None)
        if live is None:
            return False
        if live.state != "running" or live.current != name:
            return True  # the lesson was stopped meanwhile: this is its model saving
        end = getattr(run, "end", None)
        if error or (end is not None and end.kind == "failed"):
            self._end(live, "failed", f"model {name} failed: {error or end.message}")
        elif (run is not None and run.stop.is_set()) or getattr(end, "reason", "") == "stopped":
            self._end(live, "stopped", f"model {name} was stopped: r runs the lesson again")
        elif live.index + 1 < len(live.specs):
            live.index += 1
            self._train(live)
        else:
            self._measure(live)
        return True

    def _measure(self, live: LessonLive) -> None:
        live.state = "measuring"
        self._changed(live)
        self.app.run_worker(lambda: self._finish(live), thread=True, group="lesson",
                            name=f"lesson:{live.lesson.number}", exit_on_error=False)

    def _finish(self, live: LessonLive) -> None:
        """In a worker thread: the lesson's numbers (the models' and its measures'), saved as done."""
        try:
            result = L.finish(live.lesson, self.core.store, stop=live.stop)
        except Cancelled as exc:
            self._from_thread(live, "stopped", str(exc) or "stopped while measuring: r runs it again")
            return
        except (LmError, OSError) as exc:
            self._from_thread(live, "failed", str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a measure's bug is one line, never a traceback
            self._from_thread(live, "failed", f"{type(exc).__name__}: {exc}")
            return
        live.result = result
        self._from_thread(live, "done", "")

    def _from_thread(self, live: LessonLive, state: str, message: str) -> None:
        try:
            self.app.call_from_thread(self._end, live, state, message)
        except RuntimeError:  # the app has ended: record it all the same
            self._end(live, state, message, announce=False)

    def _end(self, live: LessonLive, state: str, message: str, announce: bool = True) -> None:
        if not live.active and state != "done":
            return  # already stopped or failed: the first reason stands
        live.state, live.message = state, message
        if state in ("stopped", "failed"):
            try:
                L.mark(live.lesson, self.core.store, state, message)
            except OSError:
                pass  # the lesson screen says it; the file keeps "running", read as interrupted
        if announce:
            self._changed(live)
            if state == "done":
                self.app.notify(f"Lesson {live.lesson.number} done: its text shows your numbers; v opens the view.",
                                title=visible_line(live.lesson.title)[:60], markup=False)

    def _changed(self, live: LessonLive) -> None:
        self.core.announce(LessonChanged(live.lesson.number))
