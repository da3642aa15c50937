"""The model picker: saved models (damaged ones with their reason), new, open, rename, delete."""
from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ..messages import ModelsChanged


def _fmt_params(n) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else (f"{n / 1e3:.0f}k" if n >= 1e3 else str(n))


class PickerScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("n", "new", "New model"),
        Binding("d,delete", "delete", "Delete"),
        Binding("r", "rename", "Rename"),
        Binding("f5", "refresh", "Refresh", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="picker-title")
        yield Static("", id="welcome")
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        yield Static("", id="picker-detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("name", "architecture", "params", "corpus", "val ppl", "trained")
        self.action_refresh()

    @on(DataTable.RowHighlighted)
    def _detail(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key else None
        entry = next((e for e in getattr(self, "entries", []) if e.name == name), None)
        detail = self.query_one("#picker-detail", Static)
        if entry is None:
            detail.update("")
        elif not entry.ok:
            detail.update(f"[red]{entry.reason}[/red]. Delete it (d) or train a new model (n).")
        else:
            s = entry.summary()
            m = entry.meta.get("model", {})
            size = (f"{m.get('num_layers')} layers × {m.get('hidden')}" if m.get("arch") != "ngram"
                    else f"order {m.get('order')}") if m.get("num_layers") or m.get("order") else ""
            detail.update(f"{s['arch']} {size} · {s['tokens'] or 'char'} tokens · step {s['step'] or 0:,} · "
                          f"{s['device'] or '-'}")

    def on_screen_resume(self) -> None:
        self.action_refresh()

    @on(ModelsChanged)
    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.entries = self.app.store.list()
        for e in self.entries:
            if not e.ok:
                table.add_row(e.name, "[red]damaged[/red]", "", "[red]see below[/red]", "", "", key=e.name)
                continue
            s = e.summary()
            arch = s["arch"] + (f" {s['impl']}" if s["arch"] in ("rnn", "gru", "lstm") else "")
            ppl = f"{s['best_val_ppl']:.3f}" if s["best_val_ppl"] else "-"
            table.add_row(e.name, arch, _fmt_params(s["params"]), s["corpus"] or "", ppl,
                          (s["updated"] or "")[5:16].replace("T", " "), key=e.name)
        welcome = self.query_one("#welcome", Static)
        welcome.display = not self.entries
        if not self.entries:
            d = self.app.default_spec()
            welcome.update(
                "Welcome to lmplay. No models yet.\n\n"
                f"Press [b]Enter[/b] to create a small {d['arch'].upper()} on [b]{d['corpus']}[/b] "
                "(Enter again to start training), or [b]n[/b] to choose the architecture, size and corpus."
            )
        self.query_one("#picker-title", Static).update(
            f"{len(self.entries)} model(s) · Enter open · n new · r rename · d delete · F1 help")
        table.display = bool(self.entries)
        if self.entries:
            table.focus()

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not self.entries or table.cursor_row is None or table.cursor_row >= len(self.entries):
            return None
        return self.entries[table.cursor_row].name

    def action_open(self) -> None:
        name = self._selected()
        if name is None:
            if not self.entries:
                self.action_new()
            return
        entry = next(e for e in self.entries if e.name == name)
        if not entry.ok:
            self.app.notify(f"{entry.reason}. Delete it (d) or train a new model (n).", title="Damaged model",
                            severity="error", timeout=8)
            return
        self.app.open_model(name)

    def action_new(self) -> None:
        self.app.new_model()

    def action_delete(self) -> None:
        name = self._selected()
        if name:
            self.app.delete_model(name)

    def action_rename(self) -> None:
        name = self._selected()
        if name:
            self.app.rename_model(name)
