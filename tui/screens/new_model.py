"""New model: architecture, implementation, size, corpus, preprocessing and tokenization."""
from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lmcore import StoreError
from lmcore.store import validate_name

ARCHS = [("LSTM", "lstm"), ("GRU", "gru"), ("RNN", "rnn"), ("Transformer", "transformer"), ("n-gram (counts)", "ngram")]
IMPLS = [("fused (torch.nn, cuDNN)", "fused"), ("scratch (gate equations)", "scratch")]
PRESETS = [("tiny", "tiny"), ("small", "small"), ("base (GPU)", "base")]
PREPS = [("raw: keep case and punctuation", "raw"), ("d2l: letters only, lower case", "d2l")]
LEVELS = [("characters", "char"), ("words", "word")]
PATH = "__path__"


class NewModelScreen(ModalScreen[dict | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, corpora: list[tuple[str, str]], defaults: dict, taken: set[str]) -> None:
        super().__init__()
        self.corpora = corpora  # (label, name)
        self.defaults = defaults
        self.taken = taken

    def compose(self) -> ComposeResult:
        d = self.defaults
        with VerticalScroll(classes="dialog"):
            yield Static("New model", classes="title")
            with Horizontal(classes="row"):
                yield Label("Name")
                yield Input(d["name"], id="name")
            with Horizontal(classes="row"):
                yield Label("Architecture")
                yield Select(ARCHS, value=d["arch"], allow_blank=False, id="arch")
            with Horizontal(classes="row"):
                yield Label("Implementation")
                yield Select(IMPLS, value="fused", allow_blank=False, id="impl")
            with Horizontal(classes="row"):
                yield Label("Size")
                yield Select(PRESETS, value=d["preset"], allow_blank=False, id="preset")
            with Horizontal(classes="row"):
                yield Label("Corpus")
                yield Select(self.corpora + [("a text file or folder…", PATH)], value=d["corpus"],
                             allow_blank=False, id="corpus")
            with Horizontal(classes="row", id="path-row"):
                yield Label("Path")
                yield Input(placeholder="~/books/mybook.txt", id="path")
            with Horizontal(classes="row"):
                yield Label("Preprocessing")
                yield Select(PREPS, value="raw", allow_blank=False, id="prep")
            with Horizontal(classes="row"):
                yield Label("Tokens")
                yield Select(LEVELS, value="char", allow_blank=False, id="tokens")
            yield Static("Enter creates the model and starts training; Esc cancels.", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Create and train", id="create", variant="primary")

    def on_mount(self) -> None:
        self._sync()
        self.query_one("#create", Button).focus()

    @on(Select.Changed)
    def _sync(self) -> None:
        arch = self.query_one("#arch", Select).value
        self.query_one("#impl", Select).disabled = arch not in ("rnn", "gru", "lstm")
        self.query_one("#path-row").display = self.query_one("#corpus", Select).value == PATH

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        try:
            validate_name(name)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        if name in self.taken:
            self.notify(f"A model named '{name}' exists already: pick another name.", severity="error")
            return
        corpus = self.query_one("#corpus", Select).value
        if corpus == PATH:
            raw = self.query_one("#path", Input).value.strip()
            if not raw:
                self.notify("Give the path of a text file or folder.", severity="error")
                return
            corpus = str(Path(raw).expanduser())
            if not Path(corpus).exists():
                self.notify(f"No such file or folder: {raw}", severity="error")
                return
        self.dismiss({
            "name": name, "arch": self.query_one("#arch", Select).value, "impl": self.query_one("#impl", Select).value,
            "preset": self.query_one("#preset", Select).value, "corpus": corpus,
            "prep": self.query_one("#prep", Select).value, "tokens": self.query_one("#tokens", Select).value,
        })

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
