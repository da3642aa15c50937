"""Comparing models: choose two to four, then the arena (one prompt, a column each) or the same text
scored by each."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Header, SelectionList, Static, TabbedContent, TabPane
from textual.widgets.selection_list import Selection

from rich.text import Text

import lmcore
from lmcore import visible_line
from lmcore.inspect import explain

from ..widgets.compare import Arena, SameText
from .docs import DocScreen, explain_text

MAX_MODELS = 4  # columns that still hold a few words each at 80 columns


def _fmt_bpc(bpc) -> str:
    return f"{bpc:.3f} bpc" if bpc is not None else "not validated"


class ChooseModelsScreen(ModalScreen[list[str] | None]):
    """Which models to compare (space ticks one); the one under the picker's cursor comes ticked."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, entries: list, ticked: list[str]) -> None:
        super().__init__()
        self.entries = entries
        self.ticked = ticked

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"Compare models: tick 2 to {MAX_MODELS} with space, then Compare (bpc: validation "
                         f"bits per character)", classes="title")
            options = []
            for e in self.entries:
                s = e.summary()
                m = e.checkpoint.model
                cheat = "  ⚠ reads the token it predicts" if m.family.reads_ahead(m) else ""
                label = f"{visible_line(e.name)}  ·  {s['arch']} on {visible_line(str(s['corpus']))}  ·  " \
                        f"{_fmt_bpc(e.checkpoint.best_val_bpc)}{cheat}"
                options.append(Selection(label, e.name, e.name in self.ticked))
            yield SelectionList[str](*options, id="compare-models")
            yield Static("", classes="hint", id="compare-hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Compare", id="ok", variant="primary")

    def on_mount(self) -> None:
        options = self.query_one(SelectionList)
        names = [e.name for e in self.entries]
        options.highlighted = names.index(self.ticked[0]) if self.ticked and self.ticked[0] in names else 0
        options.focus()
        self._hint()

    @on(SelectionList.SelectedChanged)
    def _hint(self) -> None:
        n = len(self.query_one(SelectionList).selected)
        self.query_one("#compare-hint", Static).update(f"{n} ticked · Tab to the buttons")

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        chosen = list(self.query_one(SelectionList).selected)
        if not 2 <= len(chosen) <= MAX_MODELS:
            self.app.notify(f"Tick 2 to {MAX_MODELS} models (space ticks the one under the cursor).",
                            severity="warning")
            return
        problem = lmcore.side_by_side_problem({e.name: e.checkpoint for e in self.entries if e.name in chosen})
        if problem:  # a model that answers sources goes beside models of its pairs corpus only
            self.app.notify(problem[0].upper() + problem[1:] + ".", severity="warning")
            return
        order = [e.name for e in self.entries]
        self.dismiss(sorted(chosen, key=order.index))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class CompareScreen(Screen):
    BINDINGS = [
        Binding("f2", "show_tab('arena')", "Arena", tooltip="Arena tab (one prompt, every model)"),
        Binding("f3", "show_tab('same')", "Same text", tooltip="Same text tab (one text scored by every model)"),
        Binding("ctrl+b", "back", "Back", tooltip="back to the models"),
        Binding("f1", "explain", "Help", show=False, tooltip="what the shown comparison means"),
    ]

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names
        self.sub_title = "compare " + " · ".join(visible_line(n) for n in names)

    def compose(self) -> ComposeResult:
        yield Header()
        budgets, warning = self.app.core.budgets(self.names)
        yield Static(Text(warning or ""), id="compare-budgets")  # only when the budgets differ by > 2x
        yield Static("", id="compare-note", classes="summary-line")  # what the shown tab shows (f1: more)
        with TabbedContent(initial="arena"):
            with TabPane("Arena", id="arena"):
                yield Arena(self.names)
            with TabPane("Same text", id="same"):
                yield SameText(self.names)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        budgets = self.query_one("#compare-budgets", Static)
        budgets.display = bool(str(budgets.render()))
        self.on_tabbed_content_tab_activated()
        self.app.core.quitting.subscribe(self, self.stop_generation, immediate=True)
        self.call_after_refresh(self._focus_tab)

    def _focus_tab(self) -> None:
        active = self.query_one(TabbedContent).active
        self.query_one("#arena-prompt" if active == "arena" else ".source-text").focus()

    def action_explain(self) -> None:
        """f1: the note of the shown tab (the arena, the same text)."""
        tab = self.query_one(TabbedContent).active
        self.app.push_screen(DocScreen(explain_text("arena" if tab == "arena" else "same_text")))

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self._focus_tab()

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "show_tab":
            try:
                return parameters[0] != self.query_one(TabbedContent).active
            except Exception:  # noqa: BLE001 - not composed yet
                return True
        return True

    def on_tabbed_content_tab_activated(self) -> None:
        self.refresh_bindings()
        tab = self.query_one(TabbedContent).active
        line = explain("arena" if tab == "arena" else "same_text").line
        self.query_one("#compare-note", Static).update(Text(line, style="dim"))

    def action_back(self) -> None:
        self.stop_generation()
        self.app.pop_screen()

    def stop_generation(self, _=None) -> None:
        for w in self.query("Arena, SameText"):  # none once the screen is gone
            w.stop_event.set()

    def on_unmount(self) -> None:
        self.stop_generation()

    @property
    def arena(self) -> Arena:
        return self.query_one(Arena)

    @property
    def same_text(self) -> SameText:
        return self.query_one(SameText)
