"""Small modal dialogs: confirm, rename, and the notice shown while the terminal is too small."""
from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from lmcore import StoreError, validate_name


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "confirm", "Yes", show=False, tooltip="yes")]

    def __init__(self, question: str, yes: str = "Delete") -> None:
        super().__init__()
        self.question, self.yes = question, yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, classes="title")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="no")
                yield Button(self.yes, id="yes", variant="error")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed, "#yes")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def action_cancel(self) -> None:
        self.dismiss(False)


class RenameScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, old: str, taken: set[str] | None = None) -> None:
        super().__init__()
        self.old = old
        self.taken = taken or set()

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Rename '{self.old}' to:", classes="title")
            yield Input(self.old, id="new-name")
            yield Static("Letters, digits, '.', '_' and '-'.", classes="hint", id="rename-hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Rename", id="ok", variant="primary")

    @on(Input.Submitted)
    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        """An invalid or taken name keeps the dialog open and says why."""
        new = self.query_one("#new-name", Input).value.strip()
        error = None
        try:
            validate_name(new)
        except StoreError as exc:
            error = str(exc)
        if error is None and new != self.old and new in self.taken:
            error = f"A model named '{new}' exists already: pick another name."
        if error:
            self.query_one("#rename-hint", Static).update(f"[red]{escape(error)}[/red]")
            return
        self.dismiss(new)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


MIN_SIZE = (80, 24)


class TooSmallScreen(ModalScreen[None]):
    """Shown while the terminal is smaller than 80x24, instead of cut-off controls; it goes away by
    itself when the terminal is large enough again (ctrl+q still quits)."""

    BINDINGS = [Binding("escape", "nothing", show=False)]

    def compose(self) -> ComposeResult:
        yield Static("", id="too-small")

    def on_mount(self) -> None:
        self.show_size(self.app.size)

    def show_size(self, size) -> None:
        w, h = MIN_SIZE
        self.query_one("#too-small", Static).update(
            f"Terminal too small: lmplay needs {w}×{h}, this one is {size.width}×{size.height}.\n"
            f"Make the window larger (ctrl+q quits; training goes on meanwhile).")

    def action_nothing(self) -> None:
        pass
