"""One lesson: its text (Markdown) filled with the learner's last numbers, its settings, and its experiment.

r runs it: the lesson's models train one after another in the app's run registry (``app.lessons``), the
live chart of the one training now above the text; leaving the screen keeps them going and coming back
shows where they are. Once measured, the text is filled, a line says what to look at, v opens the view
that makes the lesson's point and n runs the lesson again with its next setting. s / Esc stop it."""
from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Markdown, Static

import lmcore.lessons as L
from lmcore import LmError, visible_line

from ..lessons import LessonChanged
from ..messages import RunEvent, RunPreparing
from ..widgets.training import TrainingPanel
from .learn import lesson_state
from .lesson_settings import LessonSettingsScreen

STATUS = {"not started": "r runs the experiment", "done": "done · v opens the view · n tries the next step · r runs it again",
          "interrupted": "interrupted (the app quit while it ran) · r runs it again"}


class LessonScreen(Screen):
    BINDINGS = [
        Binding("r", "run", "Run", tooltip="run the lesson's experiment (its models train anew)"),
        Binding("s", "stop", "Stop", tooltip="stop the lesson (its model saves)"),
        Binding("escape", "stop_or_back", "Stop/back", show=False, tooltip="stop the lesson; when stopped, back"),
        Binding("e", "settings", "Settings", tooltip="change the lesson's settings"),
        Binding("v", "view", "View", tooltip="open the view that makes the lesson's point"),
        Binding("n", "next", "Next", tooltip="set the next setting and run again"),
        Binding("ctrl+b", "back", "Back", tooltip="back (the lesson goes on running)"),
        Binding("t", "toggle_time", "Axis", show=False, tooltip="the live chart's axis: steps or time"),
    ]

    def __init__(self, lesson, own_settings: bool = False) -> None:
        """``own_settings``: the file's settings (an exported lesson), not the last run's."""
        super().__init__()
        self.lesson = lesson
        self.own_settings = own_settings
        self._panel_lock = asyncio.Lock()
        self.title = f"Lesson {lesson.number}"
        self.sub_title = visible_line(lesson.title)[:60]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="lesson-status")
        yield Static("", id="lesson-settings")
        yield Vertical(id="lesson-live")
        with VerticalScroll(id="lesson-text"):
            yield Markdown("", id="lesson-markdown")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        app = self.app
        live = app.lessons.get(self.lesson.number)
        if live is not None and live.active:
            self.lesson = live.lesson
        elif not self.own_settings:  # changed and not run yet, else the last run's
            home = app.core.store.home
            saved = app.lessons.chosen.get(self.lesson.number, L.load_progress(self.lesson.number, home).settings)
            try:
                self.lesson = self.lesson.with_settings({k: v for k, v in saved.items() if k in self.lesson.settings})
            except LmError:
                pass  # the lesson changed since: its own settings
        app.core.follow(self)
        self.show()
        self.query_one("#lesson-text").focus()

    def on_screen_resume(self) -> None:
        self.show()

    # ------------------------------------------------------------ what it shows
    def state(self) -> tuple[str, str]:
        return lesson_state(self.app, self.lesson.number)

    def show(self) -> None:
        """The text filled with the last numbers, the status line, the live chart while a model trains."""
        self.app.lessons.chosen[self.lesson.number] = dict(self.lesson.settings)
        live = self.app.lessons.get(self.lesson.number)
        state, line = self.state()
        if live is not None and live.result is not None and state == "done":
            result = live.result
        else:
            result = L.result(self.lesson, L.load_progress(self.lesson.number, self.app.core.store.home))
        text = result.text
        if state == "done":
            text += f"\n\n---\n\n**Look:** {result.look} (`v` opens the view)\n"
            if result.next:
                text += f"\n**Next:** {result.next}" + (" (`n` runs it)" if self.lesson.next.setting else "") + "\n"
        self.query_one("#lesson-markdown", Markdown).update(text)
        self._status(state, line)
        self._settings_line()
        self.run_worker(self._live_panel(), group="lesson-panel", exit_on_error=False)
        self.refresh_bindings()

    def _status(self, state: str, line: str) -> None:
        out = Text()
        if state == "running":
            live = self.app.lessons.get(self.lesson.number)
            run = self.app.core.runs.get(live.current) if live else None
            out.append(line, style="bold")
            out.append(f" · {run.status() if run else 'starting…'} · s stops")
        elif state == "measuring":
            out.append("measuring… · s stops", style="bold")
        elif state in ("stopped", "failed"):
            out.append(state, style="red" if state == "failed" else "yellow")
            out.append(f": {visible_line(line)}" if line else "")
            out.append("" if "r runs" in line else " · r runs it again")
        else:
            out.append(f"~{self.lesson.minutes:g} min · " if state == "not started" else "")
            out.append(STATUS.get(state, state))
            if line and state == "not started":  # its saved progress could not be read
                out.append(f" · {visible_line(line)}", style="yellow")
        self.query_one("#lesson-status", Static).update(out)

    def _settings_line(self) -> None:
        settings = self.lesson.settings
        out = Text("settings: ", style="dim")
        out.append(" · ".join(f"{k} = {visible_line(str(v))}" for k, v in settings.items()) or "none")
        if settings:
            out.append(" · e changes them", style="dim")
        self.query_one("#lesson-settings", Static).update(out)

    async def _live_panel(self) -> None:
        """The training panel of the model training now (a new one when the lesson moved to the next); none
        shown when no model trains. One change at a time, each panel mounted before the next replaces it."""
        async with self._panel_lock:
            live = self.app.lessons.get(self.lesson.number)
            live = live if live is not None and live.state == "running" else None
            box = self.query_one("#lesson-live", Vertical)
            box.display = live is not None
            panels = list(box.query(TrainingPanel))
            if live is None or (panels and panels[0].model_name == live.current):
                return
            await box.remove_children()
            await box.mount(TrainingPanel(live.current, live.specs[live.index][1]))

    def on_lesson_changed(self, message: LessonChanged) -> None:
        if message.number == self.lesson.number:
            self.show()

    def on_run_event(self, message: RunEvent) -> None:
        self._run_news(message.name)

    def on_run_preparing(self, message: RunPreparing) -> None:
        self._run_news(message.name)

    def _run_news(self, name: str) -> None:
        live = self.app.lessons.get(self.lesson.number)
        if live is not None and live.state == "running" and live.current == name:
            self._status(*self.state())

    # ------------------------------------------------------------ keys
    def check_action(self, action: str, parameters) -> bool | None:
        try:
            state, _ = self.state()
        except Exception:  # noqa: BLE001 - not mounted yet
            return True
        active = state in ("running", "measuring")
        if action == "stop":
            return active
        if action in ("run", "settings"):
            return not active
        if action == "view":
            return state == "done"
        if action == "next":
            return state == "done" and self.lesson.next.setting is not None
        return True

    def action_toggle_time(self) -> None:
        for chart in self.query("#lesson-live PerplexityChart"):
            chart.toggle_x()
            self.app.core.remember("chart_by_time", chart.by_time)

    def action_run(self) -> None:
        try:
            self.app.lessons.start(self.lesson)
        except LmError as exc:
            self.app.notify(str(exc), title=f"Lesson {self.lesson.number}", severity="error", timeout=8, markup=False)
        self.show()

    def action_stop(self) -> None:
        self.app.lessons.stop(self.lesson.number)
        self.show()

    def action_stop_or_back(self) -> None:
        live = self.app.lessons.get(self.lesson.number)
        if live is not None and live.active:
            self.action_stop()
        else:
            self.action_back()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_settings(self) -> None:
        if not self.lesson.settings:
            self.app.notify("This lesson has no settings to change.")
            return

        def changed(lesson) -> None:
            if lesson is not None:
                self.lesson = lesson
                self.show()

        self.app.push_screen(LessonSettingsScreen(self.lesson), changed)

    def action_next(self) -> None:
        nxt = self.lesson.next
        if nxt.setting is None:
            self.app.notify("This lesson has no next setting to try.")
            return
        try:
            self.lesson = self.lesson.with_settings({nxt.setting: nxt.value})
        except LmError as exc:
            self.app.notify(str(exc), severity="error", markup=False)
            return
        self.app.notify(f"{nxt.setting} = {visible_line(str(nxt.value))}: the lesson runs again.", markup=False)
        self.action_run()

    async def action_view(self) -> None:
        from .lesson_view import open_view

        await open_view(self.app, self.lesson)
