"""New model: architecture, implementation, size, corpus, preprocessing and tokenization."""
from __future__ import annotations

from pathlib import Path

import math

import torch
from rich.markup import escape
from textual import on
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from lmcore import LmError, StoreError, validate_name
from lmcore.bpe import DEFAULT_VOCAB_SIZE, check_vocab_size


ARCHS = [("LSTM", "lstm"), ("GRU", "gru"), ("RNN", "rnn"), ("Transformer", "transformer"),
         ("minGRU (parallel scan)", "mingru"), ("minLSTM (parallel scan)", "minlstm"), ("n-gram (counts)", "ngram")]
IMPLS = [("fused (torch.nn" + (", cuDNN on this GPU)" if torch.cuda.is_available() else ")"), "fused"),
         ("scratch (gate equations)", "scratch")]
RECURRENT = ("rnn", "gru", "lstm")
PRESETS = [("tiny", "tiny"), ("small", "small"), ("base (GPU)", "base")]
PREPS = [("raw: keep case and punctuation", "raw"), ("d2l: letters only, lower case", "d2l")]
LEVELS = [("characters", "char"), ("words", "word"), ("subwords (byte-level BPE)", "bpe")]
PATH = "__path__"


class NewModelScreen(ModalScreen[dict | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                # Enter creates from any field; an open dropdown keeps it to pick its option
                Binding("enter", "create", "Create", priority=True)]

    def __init__(self, corpora: list[tuple[str, str]], defaults: dict, taken: set[str]) -> None:
        super().__init__()
        self.corpora = corpora  # (label, name)
        self.defaults = defaults
        self.taken = taken
        self._suggested = defaults["name"]  # the name follows the choices until the user edits it

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
            with Horizontal(classes="row", id="impl-row"):
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
            with Horizontal(classes="row", id="vocab-row"):
                yield Label("BPE tokens")
                yield Input(placeholder=f"{DEFAULT_VOCAB_SIZE} (learnt from the text)", id="vocab-size", type="integer")
            with Horizontal(classes="row"):
                yield Label("Train for")
                yield Input(placeholder="preset steps", id="new-steps", type="integer")
                yield Input(placeholder="or minutes", id="new-minutes", type="number")
            yield Static("Enter creates the model and starts training; Esc cancels.", classes="hint", id="new-hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Corpus…", id="zipf", tooltip="Zipf's law of the chosen corpus")
                yield Button("Create and train", id="create", variant="primary")

    def on_mount(self) -> None:
        self._sync()
        self.query_one("#create", Button).focus()

    @on(Select.Changed)
    @on(Input.Changed, "#path")
    def _sync(self) -> None:
        arch = self.query_one("#arch", Select).value
        self.query_one("#impl-row").display = arch in RECURRENT
        self.query_one("#path-row").display = self.query_one("#corpus", Select).value == PATH
        self.query_one("#vocab-row").display = self.query_one("#tokens", Select).value == "bpe"
        name = self.query_one("#name", Input)
        if name.value.strip() == self._suggested:  # not edited: follow the choices
            self._suggested = self._suggest()
            name.value = self._suggested

    def _corpus_label(self) -> str:
        corpus = self.query_one("#corpus", Select).value
        if corpus == PATH:
            stem = Path(self.query_one("#path", Input).value.strip()).stem
            return "".join(c if c.isalnum() or c in "._-" else "-" for c in stem)[:40].strip(".-") or "text"
        return str(corpus)

    def _suggest(self) -> str:
        base = f"{self.query_one('#arch', Select).value}-{self._corpus_label()}"
        name, i = base, 2
        while name in self.taken:
            name, i = f"{base}-{i}", i + 1
        return name

    def _error(self, text: str) -> None:
        self.query_one("#new-hint", Static).update(f"[red]{escape(text)}[/red]")

    def action_create(self) -> None:
        if any(select.expanded for select in self.query(Select)):
            raise SkipAction()  # the open dropdown takes Enter to pick its option
        focused = self.focused
        if isinstance(focused, Button) and focused.id == "cancel":
            self.dismiss(None)
            return
        if isinstance(focused, Button) and focused.id == "zipf":
            self.show_corpus()
            return
        self._create()

    @on(Button.Pressed, "#zipf")
    def show_corpus(self) -> None:
        """The chosen corpus through Zipf's law (a registry corpus must be downloaded or built in)."""
        from .corpus import CorpusScreen

        corpus = self.query_one("#corpus", Select).value
        source = self.query_one("#path", Input).value.strip() if corpus == PATH else str(corpus)
        if not source:
            self._error("Type the path of a text file or folder first.")
            return
        if self.is_current:  # a second Enter while it opens stacks no second window
            self.app.push_screen(CorpusScreen(source))

    @on(Button.Pressed, "#create")
    def _create(self) -> None:
        """An invalid choice keeps the dialog open and says what is wrong."""
        name = self.query_one("#name", Input).value.strip()
        try:
            validate_name(name)
        except StoreError as exc:
            self._error(str(exc))
            return
        if name in self.taken:
            self._error(f"A model named '{name}' exists already: pick another name.")
            return
        corpus = self.query_one("#corpus", Select).value
        if corpus == PATH:
            raw = self.query_one("#path", Input).value.strip()
            if not raw:
                self._error("Give the path of a text file or folder.")
                return
            corpus = str(Path(raw).expanduser())
            if not Path(corpus).exists():
                self._error(f"No such file or folder: {raw}")
                return
        try:
            steps = int(v) if (v := self.query_one("#new-steps", Input).value.strip()) else None
            minutes = float(v) if (v := self.query_one("#new-minutes", Input).value.strip()) else None
        except ValueError:
            self._error("Steps and minutes must be numbers.")
            return
        if (steps is not None and steps < 1) or (minutes is not None and not 0 < minutes < math.inf):
            self._error("Steps must be at least 1 and minutes > 0.")
            return
        tokens = self.query_one("#tokens", Select).value
        vocab_size = None
        if tokens == "bpe" and (v := self.query_one("#vocab-size", Input).value.strip()):
            try:
                vocab_size = check_vocab_size(int(v))
            except (ValueError, LmError) as exc:
                self._error(str(exc) if isinstance(exc, LmError) else "The number of BPE tokens must be a whole number.")
                return
        arch = self.query_one("#arch", Select).value
        self.dismiss({
            "name": name, "arch": arch, "impl": self.query_one("#impl", Select).value if arch in RECURRENT else "fused",
            "preset": self.query_one("#preset", Select).value, "corpus": corpus,
            "prep": self.query_one("#prep", Select).value, "tokens": tokens, "vocab_size": vocab_size,
            "steps": steps, "minutes": minutes,
        })

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
