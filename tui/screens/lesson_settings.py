"""A lesson's settings, changed in a small dialog: one field per setting, each value checked by the
lesson itself (``Lesson.with_settings``); a bad value keeps the dialog open and says why."""
from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from lmcore import LmError, visible_line


class LessonSettingsScreen(ModalScreen):
    """Dismissed with the lesson with its new settings, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, lesson) -> None:
        super().__init__()
        self.lesson = lesson

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="lesson-settings-dialog"):
            yield Static(f"Lesson {self.lesson.number}'s settings (the next run uses them)", classes="title")
            for name, value in self.lesson.settings.items():
                with Horizontal(classes="row"):
                    yield Label(name)
                    yield Input(visible_line(str(value)).lower() if isinstance(value, bool) else visible_line(str(value)),
                                id=f"setting-{name}")
            yield Static("Enter or Apply keeps them; Esc cancels.", classes="hint", id="settings-hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Apply", id="ok", variant="primary")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        values = {name: self.query_one(f"#setting-{name}", Input).value.strip() for name in self.lesson.settings}
        try:
            lesson = self.lesson.with_settings(values)
        except LmError as exc:
            self.query_one("#settings-hint", Static).update(f"[red]{escape(str(exc))}[/red]")
            self.app.notify(str(exc), title="Settings", severity="error", markup=False)
            return
        self.dismiss(lesson)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
