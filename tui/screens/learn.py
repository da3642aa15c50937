"""The Learn screen: the lessons in order (number, title, about how long, where the learner stands),
then the lesson files that cannot be used, each with its one line. Enter opens a lesson."""
from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

import lmcore.lessons as L
from lmcore import visible_line

from ..lessons import LessonChanged

STATE_STYLE = {"running": "bold", "measuring": "bold", "done": "green", "stopped": "yellow", "failed": "red",
               "interrupted": "yellow", "broken": "red"}


def lesson_state(app, number: int) -> tuple[str, str]:
    """Where lesson ``number`` stands: (state, its line). A lesson running in this app says so; one left
    "running" by an app that quit is interrupted."""
    live = app.lessons.get(number)
    if live is not None and live.state != "done":
        line = live.line() if live.state == "running" else live.message
        return live.state, line
    progress = L.load_progress(number, app.core.store.home)
    if progress.state == "running":
        return "interrupted", "the app quit while it ran: r runs it again"
    return progress.state, progress.message


def minutes_label(minutes: float) -> str:
    return "<1 min" if minutes < 1 else f"{minutes:g} min"


class LearnScreen(Screen):
    BINDINGS = [
        # not a priority binding: the table's own Enter (RowSelected) comes after the keys before it (a ↓
        # typed just before Enter moves the cursor first)
        Binding("enter", "open", "Open"),
        Binding("ctrl+b,escape", "back", "Back", tooltip="back to the models"),
        Binding("f5", "refresh", "Refresh", show=False, tooltip="read the lessons again"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="learn-title")
        yield DataTable(id="lessons", cursor_type="row", zebra_stripes=True)
        yield Static("", id="learn-detail")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "learn"
        self.app.core.follow(self)  # a lesson running here moves on: its row says so
        table = self.query_one(DataTable)
        # the title last: at 80 columns a long one is cut, never the state
        for key, label in (("n", "#"), ("state", "state"), ("minutes", "takes"), ("title", "lesson")):
            table.add_column(label, key=key)
        self.action_refresh()

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def on_lesson_changed(self, message: LessonChanged) -> None:
        self.action_refresh()

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        selected = table.cursor_row if table.row_count else 0
        table.clear()
        self.entries = L.catalog(self.app.core.store.home)
        for i, e in enumerate(self.entries):
            if e.ok:
                state, _ = lesson_state(self.app, e.lesson.number)
                table.add_row(str(e.lesson.number), Text(state, style=STATE_STYLE.get(state, "")),
                              minutes_label(e.lesson.minutes), escape(visible_line(e.lesson.title)), key=str(i))
            else:
                table.add_row("", Text("broken", style="red"), "", escape(visible_line(e.path.name)), key=str(i))
        usable = sum(e.ok for e in self.entries)
        broken = len(self.entries) - usable
        self.query_one("#learn-title", Static).update(
            f"{usable} lesson(s){f', {broken} broken' if broken else ''} · Enter opens one · each is an "
            "experiment you run")
        if self.entries:
            table.move_cursor(row=min(selected, len(self.entries) - 1))
            table.focus()
        self._detail(table.cursor_row)

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    def _detail(self, row: int | None) -> None:
        detail = self.query_one("#learn-detail", Static)
        entries = getattr(self, "entries", [])
        if row is None or not 0 <= row < len(entries):
            detail.update("No lessons found." if not entries else "")
            return
        e = entries[row]
        if not e.ok:
            detail.update(Text(visible_line(e.error), style="red"))
            return
        state, line = lesson_state(self.app, e.lesson.number)
        out = Text(visible_line(e.lesson.chapter), style="dim")
        if line:
            out.append(" · ")
            out.append(visible_line(line))
        detail.update(out)

    @on(DataTable.RowSelected)
    def action_open(self) -> None:
        table = self.query_one(DataTable)
        entries = getattr(self, "entries", [])
        row = table.cursor_row
        if row is None or not 0 <= row < len(entries):
            return
        e = entries[row]
        if not e.ok:
            self.app.notify(visible_line(e.error), title="Broken lesson", severity="error", timeout=8, markup=False)
            return
        self.app.open_lesson(e.lesson)

    def action_back(self) -> None:
        self.app.pop_screen()
