"""The model picker: saved models (damaged ones with their reason) and the runs training in this app;
new, open, rename, delete."""
from __future__ import annotations

from dataclasses import dataclass

from rich.markup import escape
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

import lmcore
from lmcore import LmError, ModelEntry, visible_line

from ..messages import RunEvent, RunFinished, RunPreparing
from .dialogs import ConfirmScreen, RenameScreen


def _fmt_params(n) -> str:
    if not n:
        return "-"
    return f"{n / 1e6:.1f}M" if n >= 1e6 else (f"{n / 1e3:.0f}k" if n >= 1e3 else str(n))


def _safe(text) -> str:
    """Text from a model's files, for a table cell: one line, no control characters, no markup."""
    return escape(visible_line(str(text or "")))


CHEAT_MARK = " [b]⚠ reads ahead[/b]"  # beside the architecture of a model whose validation perplexity is no measure


def reads_ahead(entry: ModelEntry | None) -> str | None:
    """Why a saved model's validation perplexity measures nothing (it reads the token it predicts), or None."""
    if entry is None or not entry.ok:
        return None
    m = entry.checkpoint.model
    return m.family.reads_ahead(m)


OTHERS_POLL = 2.0  # seconds between looks at what other processes do to the store


@dataclass
class Row:
    name: str
    entry: ModelEntry | None   # None: training in this app, not saved yet


class PickerScreen(Screen):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True),
        Binding("n", "new", "New model"),
        Binding("d,delete", "delete", "Delete"),
        Binding("r", "rename", "Rename"),
        Binding("b", "toggle_ranking", "Rank", tooltip="rank each corpus's models by bits per character (again: back)"),
        Binding("c", "compare", "Compare", tooltip="compare models (two to four)"),
        Binding("l", "learn", "Learn", tooltip="the lessons: each chapter as an experiment on your machine"),
        Binding("f5", "refresh", "Refresh", show=False, tooltip="read the data folder again"),
    ]
    elsewhere: set[str] = frozenset()  # models another process trains (their lock is held)
    ranked = False  # b: the models of each corpus ranked by validation bits per character
    budget_warnings: dict = {}  # ranked: each model's corpus's warning that the budgets differ (or None)

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="picker-title")
        yield Static("", id="welcome")
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        yield Static("", id="picker-detail")
        yield Footer()

    COLUMNS = (("name", "name"), ("arch", "architecture"), ("params", "params"), ("corpus", "corpus"),
               ("ppl", "val ppl"), ("status", "trained"))
    RANKED_COLUMNS = (("rank", "#"), ("corpus", "corpus"), ("name", "name"), ("arch", "architecture"),
                      ("params", "params"), ("bpc", "bits/char"), ("ppl", "ppl"))

    def on_mount(self) -> None:
        self.app.core.follow(self)  # every run's progress, in its row
        self._columns()
        self.action_refresh()
        self.set_interval(OTHERS_POLL, self._poll_others)

    def _columns(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key, label in self.RANKED_COLUMNS if self.ranked else self.COLUMNS:
            table.add_column(label, key=key)

    def action_toggle_ranking(self) -> None:
        self.ranked = not self.ranked
        self._columns()
        self.action_refresh()

    def _status(self, name: str, entry: ModelEntry | None) -> str:
        run = self.app.core.runs.get(name)
        if run is not None:
            return f"[b]▶ {run.status()}[/b]"
        if entry is None or not entry.ok:
            return ""
        if name in self.elsewhere:
            return "[b]▶ training (another process)[/b]"
        return (entry.checkpoint.updated or "")[5:16].replace("T", " ")

    @on(DataTable.RowHighlighted)
    def _detail(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key else None
        self._show_detail(name)

    def _show_detail(self, name: str | None) -> None:
        row = next((r for r in getattr(self, "rows", []) if r.name == name), None)
        detail = self.query_one("#picker-detail", Static)
        run = self.app.core.runs.get(name) if name else None
        if row is None:
            detail.update("")
        elif run is not None and run.step is not None:
            s = run.step
            total = f" / {s.steps:,}" if s.steps else ""
            rate = s.tokens_per_s if s.run_tokens_per_s is None else s.run_tokens_per_s  # the run's own
            detail.update(f"training: step {s.step:,}{total} · ppl {s.ppl:.3f} · {rate:,.0f} tokens/s "
                          f"· Enter opens it")  # one line at 80 columns
        elif row.entry is None:
            detail.update(f"{run.state if run else ''} · Enter opens it")
        elif not row.entry.ok:
            detail.update(f"[red]{_safe(row.entry.reason)}[/red] · d deletes it")
        else:
            ck = row.entry.checkpoint
            if name in self.elsewhere:
                detail.update("training in another lmplay process · Enter opens its last checkpoint")
                return
            if note := reads_ahead(row.entry):
                ppl = f"{ck.best_val_ppl:.3f}" if ck.best_val_ppl else "-"
                detail.update(f"[yellow]⚠ validation perplexity {ppl}, near 1: {_safe(note)}[/yellow]")
                return
            m = ck.model
            if self.ranked:  # a ranking compares: the budget each was trained on, and whether they differ
                warning = self.budget_warnings.get(name)
                detail.update(Text(f"trained {lmcore.model_budget(ck, name).describe()} · {m.arch} · "
                                   f"{ck.tokenizer.level} tokens" + (f"\n{warning}" if warning else "")))
                return
            detail.update(f"{m.arch} {m.family.size(m)} · {ck.tokenizer.level} tokens · step {ck.step:,} · "
                          f"{_safe(ck.device) or '-'}")

    def on_screen_resume(self) -> None:
        self.action_refresh()

    def on_run_event(self, message: RunEvent) -> None:
        if message.event.kind == "eval":  # saved: its numbers change
            self.action_refresh()
        self.show_run(message.name)

    def on_run_preparing(self, message: RunPreparing) -> None:
        self.show_run(message.name)

    def on_run_finished(self, message: RunFinished) -> None:
        self.action_refresh()

    def show_run(self, name: str) -> None:
        """A run's progress changed: update its status cell (or add its row when it is new)."""
        table = self.query_one(DataTable)
        if not any(r.name == name for r in getattr(self, "rows", [])):
            self.action_refresh()
            return
        if self.ranked:  # no progress column there: the ranking changes when the run saves
            return
        try:
            core = self.app.core
            table.update_cell(name, "status", self._status(name, None if core.runs.get(name) else core.store.check(name)),
                              update_width=True)
        except Exception:  # noqa: BLE001 - the row went away meanwhile: redraw all
            self.action_refresh()
            return
        if table.cursor_row is not None and self._selected() == name:
            self._show_detail(name)

    def action_refresh(self) -> None:
        table = self.query_one(DataTable)
        selected = self._selected() if getattr(self, "rows", None) else None
        table.clear()
        entries = self.app.core.list_models()
        self.elsewhere = self._locked_elsewhere(entries)
        self._folders = self._store_folders()
        live = [n for n in self.app.core.runs.runs if n not in {e.name for e in entries}]
        if self.ranked:
            self._ranked_rows(table, entries, live)
        else:
            self._rows(table, entries, live)
        self._after_rows(selected)

    def _locked_elsewhere(self, entries) -> set[str]:
        """The saved models whose lock another process holds (training them), not a run of this app."""
        out, core = set(), self.app.core
        for e in entries:
            try:
                if e.ok and not core.runs.is_running(e.name) and core.store.is_locked(e.name):
                    out.add(e.name)
            except (LmError, OSError):
                pass
        return out

    def _store_folders(self) -> set[str]:
        try:
            return {p.name for p in self.app.core.store.root.iterdir() if not p.name.startswith(".")}
        except OSError:
            return set()

    def _poll_others(self) -> None:
        """Every few seconds, cheaply: another process started or stopped training a model, or saved,
        renamed or deleted one (the store's folders changed): read the store again."""
        rows = getattr(self, "rows", None)
        if not self.is_current or rows is None:
            return
        entries = [r.entry for r in rows if r.entry is not None]
        if self._locked_elsewhere(entries) != self.elsewhere or self._store_folders() != self._folders:
            self.action_refresh()

    def _ranked_rows(self, table: DataTable, entries: list[ModelEntry], live: list[str]) -> None:
        by_name = {e.name: e for e in entries}
        ranked = lmcore.leaderboard(entries)
        self.budget_warnings = {r["name"]: r["budget_warning"] for r in ranked}
        self.rows = [Row(r["name"], by_name[r["name"]]) for r in ranked]
        for r in ranked:
            bpc = f"{r['best_val_bpc']:.3f}" if r["best_val_bpc"] is not None else "-"
            ppl = f"{r['best_val_ppl']:.3f}" if r["best_val_ppl"] else "-"
            arch = r["arch"] + (CHEAT_MARK if reads_ahead(by_name[r["name"]]) else "")
            table.add_row(str(r["rank"]), _safe(r["corpus"]), r["name"], arch, _fmt_params(r["params"]),
                          bpc, ppl, key=r["name"])
        for e in (e for e in entries if not e.ok):
            self.rows.append(Row(e.name, e))
            table.add_row("", "", e.name, "[red]damaged[/red]", "", "", "", key=e.name)
        for n in sorted(live):
            self.rows.append(Row(n, None))
            table.add_row("", "", n, "[b]▶ training[/b]", "", "", "", key=n)

    def _rows(self, table: DataTable, entries: list[ModelEntry], live: list[str]) -> None:
        self.rows = [Row(e.name, e) for e in entries] + [Row(n, None) for n in sorted(live)]
        for r in self.rows:
            e = r.entry
            if e is None:
                spec = self.app.core.runs.get(r.name).spec  # a new model's, not saved yet
                kind = spec.model.family.describe(spec.model) if spec else ""
                table.add_row(r.name, kind, "-", _safe(spec.corpus if spec else ""), "-", self._status(r.name, None),
                              key=r.name)
            elif not e.ok:
                table.add_row(e.name, "[red]damaged[/red]", "", "[red]see below[/red]", "", "", key=e.name)
            else:
                s = e.summary()
                arch = e.checkpoint.model.family.describe(e.checkpoint.model) + (CHEAT_MARK if reads_ahead(e) else "")
                ppl = f"{s['best_val_ppl']:.3f}" if s["best_val_ppl"] else "-"
                if s["best_val_ppl"] and not e.checkpoint.model.family.next_token_loss:
                    ppl += " mask"  # BERT's masked-token perplexity: no next-token measure
                table.add_row(e.name, arch, _fmt_params(s["params"]), _safe(s["corpus"]), ppl,
                              self._status(e.name, e), key=e.name)

    def _after_rows(self, selected: str | None) -> None:
        table = self.query_one(DataTable)
        welcome = self.query_one("#welcome", Static)
        welcome.display = not self.rows
        if not self.rows:
            d = self.app.core.default_spec()
            wanted = self.app.core.settings.get("default_model", {}).get("corpus")
            fetch = (f"\n\nThe chapters train on [b]{_safe(wanted)}[/b], which is not downloaded yet: in the "
                     "dialog, choose it as the corpus and press Download." if wanted and wanted != d.corpus
                     and lmcore.corpus_entry(str(wanted)) is not None else "")
            welcome.update(
                "Welcome to lmplay. No models yet.\n\n"
                f"Press [b]Enter[/b] to create a small {d.model.arch.upper()} on [b]{_safe(d.corpus)}[/b] "
                "(Enter again to start training), or [b]n[/b] to choose the architecture, size and corpus."
                + fetch
            )
        title = (f"{len(self.rows)} model(s), each corpus's ranked by validation bits per character · b: back"
                 if self.ranked else f"{len(self.rows)} model(s) · Enter open · n new · b rank · c compare · d delete · F1 help")
        self.query_one("#picker-title", Static).update(title)
        table.display = bool(self.rows)
        if self.rows:
            names = [r.name for r in self.rows]
            if selected in names:
                table.move_cursor(row=names.index(selected))
            table.focus()

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        rows = getattr(self, "rows", [])
        if not rows or table.cursor_row is None or table.cursor_row >= len(rows):
            return None
        return rows[table.cursor_row].name

    def action_open(self) -> None:
        name = self._selected()
        if name is None:
            if not getattr(self, "rows", None):
                self.action_new()
            return
        row = next(r for r in self.rows if r.name == name)
        run = self.app.core.runs.get(name)
        if row.entry is None:
            self.app.open_model(name, run.spec if run else None)
            return
        if not row.entry.ok:
            self.app.notify(f"{visible_line(row.entry.reason)}. Delete it (d) or train a new model (n).",
                            title="Damaged model", severity="error", timeout=8)
            return
        self.app.open_model(name)

    def action_new(self) -> None:
        self.app.new_model()

    def action_learn(self) -> None:
        self.app.show_learn()

    def action_compare(self) -> None:
        name = self._selected()
        self.app.compare_models([name] if name else [])

    def action_delete(self) -> None:
        name = self._selected()
        if not name or self._busy(name):
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self._change(f"Deleted '{name}'.", name, lambda: self.app.core.store.delete(name))

        self.app.push_screen(ConfirmScreen(f"Delete model '{name}' and its checkpoints? This cannot be undone."), answer)

    def action_rename(self) -> None:
        name = self._selected()
        if not name or self._busy(name):
            return

        def answer(new: str | None) -> None:
            if new and new != name:
                self._change(f"Renamed '{name}' to '{new}'.", name, lambda: self.app.core.store.rename(name, new))

        self.app.push_screen(RenameScreen(name, self.app.core.taken_names()), answer)

    def _change(self, done: str, name: str, change) -> None:
        """Delete or rename ``name`` in the store; a notification says it was done, or why not."""
        try:
            change()
            self.app.core.forget(name)
            self.app.notify(done)
        except LmError as exc:
            self.app.notify(str(exc), severity="error")
        self.action_refresh()

    def _busy(self, name: str) -> bool:
        core = self.app.core
        if core.runs.is_running(name):
            self.app.notify(f"'{name}' is training: stop it first (open it, then x).", severity="warning")
            return True
        if core.store.is_locked(name):  # e.g. `lmcore train` in another terminal
            self.app.notify(f"'{name}' is training in another lmplay process: stop it there first (Ctrl+C in its "
                            f"terminal), then delete or rename it.", severity="warning", markup=False)
            return True
        return False
