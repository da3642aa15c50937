"""New model: architecture (the family registry's), the options its family shows here (the recurrent
models' implementation), size, corpus, preprocessing and tokenization.

Keys: Enter opens a list (and picks in it), moves from a text field to the next, and presses a button;
ctrl+s (or the Create and train button) creates from anywhere; Esc cancels. A registry corpus that is
not on this computer yet is downloaded from here (Download, or Create and train downloads it first),
with its progress; a failure keeps the dialog and says what to do in the app's words."""
from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from rich.markup import escape
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static
from textual.widgets.select import InvalidSelectValueError

import lmcore
from lmcore import Cancelled, DownloadError, LmError, RunSpec, TrainConfig, validate_name, visible_line
from lmcore.data.bpe import DEFAULT_VOCAB_SIZE
from lmcore.models import families, family
from lmcore.training.auto_preset import DEFAULT_MINUTES as AUTO_MINUTES
from lmcore.training.spec import budget_from_text

PRESETS = [("auto (for the text and the time)", "auto"), ("tiny", "tiny"), ("small", "small"), ("base (GPU)", "base")]
PRESET_HELP = {  # what each size means, under the Size list
    "auto": (f"size and recipe for the corpus and the time below (none: {AUTO_MINUTES:g} min); the first run "
             f"times a few steps"),
    "tiny": "the smallest model: a first look in seconds, fixed whatever the corpus and the time",
    "small": "sized for a laptop's CPU (a few minutes), fixed whatever the corpus and the time",
    "base": "sized for a GPU, fixed whatever the corpus and the time",
}
PREPS = [("raw: keep case and punctuation", "raw"), ("d2l: letters only, lower case", "d2l")]
LEVELS = [("characters", "char"), ("words", "word"), ("subwords (byte-level BPE)", "bpe")]
PATH = "__path__"
HINT = "Enter opens a list · ctrl+s or Create and train starts · Esc cancels"


def arch_choices() -> list[tuple[str, str]]:
    """Every registered architecture under its family's menu label, families in their order."""
    return [(fam.label(arch), arch) for fam in families() for arch in fam.archs]


def form_options() -> dict[str, dataclasses.Field]:
    """The model options the families show in this dialog (declared with a ``form`` label), once each."""
    out: dict[str, dataclasses.Field] = {}
    for fam in families():
        for f in fam.option_fields():
            if f.metadata.get("form"):
                out.setdefault(f.name, f)
    return out


def _option_field(f: dataclasses.Field, value) -> Select | Input:
    """A list of the option's choices (in the words its family gives them), or a text field."""
    if f.metadata.get("choices"):
        words = {c: f.metadata.get("labels", {}).get(c, str(c)) for c in f.metadata["choices"]}
        options = [(w() if callable(w) else w, c) for c, w in words.items()]
        return Select(options, value=value if value in words else f.default, allow_blank=False, id=f"opt-{f.name}")
    kind = "integer" if f.type in (int, "int") else "number" if f.type in (float, "float") else "text"
    return Input("" if value is None else str(value), placeholder=f"{f.default} ({f.metadata.get('help', '')})",
                 type=kind, select_on_focus=False, id=f"opt-{f.name}")


def _size(n: int | None) -> str:
    if not n:
        return "size unknown"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(1, round(n / 1e3))} kB"


class DownloadProgress(Message):
    """From the download worker: bytes received so far. A newer one replaces an older one."""

    def __init__(self, stop: threading.Event, corpus: str, done: int, total: int | None) -> None:
        super().__init__()
        self.stop, self.corpus, self.done, self.total = stop, corpus, done, total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, DownloadProgress)


class DownloadFinished(Message):
    """The download worker ended: ``error`` is None when the corpus is now on this computer. ``stop``
    tells this download from an earlier one that was stopped."""

    def __init__(self, stop: threading.Event, corpus: str, error: str | None) -> None:
        super().__init__()
        self.stop, self.corpus, self.error = stop, corpus, error


class NewModelScreen(ModalScreen[RunSpec | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="cancel (during a download: stop it)"),
                # from any field, a text field included; Enter belongs to the focused widget (a list
                # opens, a text field moves on, a button is pressed)
                Binding("ctrl+s", "create", "Create", priority=True,
                        tooltip="create the model and start training, from any field")]

    def __init__(self, corpora: list[tuple[str, str]], defaults: RunSpec, taken: set[str]) -> None:
        """``defaults``: the spec to start from (a new model's): the app's default choices, or the spec
        of a start that failed. The dialog's result is the spec of the model to create, or None."""
        super().__init__()
        self.corpora = corpora  # (label, name)
        self.defaults = defaults
        self.taken = taken
        self._suggested = defaults.name  # the name follows the choices until the user edits it
        self._arch_shown = defaults.model.arch  # the architecture whose option defaults the fields hold
        self._download_stop: threading.Event | None = None  # set while a download runs
        self._create_after_download = False

    def compose(self) -> ComposeResult:
        d = self.defaults
        registry = {name for _, name in self.corpora}
        corpus, path = (d.corpus, "") if d.corpus in registry else (PATH, d.corpus)
        number = lambda value: "" if value is None else str(value)  # noqa: E731
        bpe = d.tokenizer.vocab_size if d.tokenizer.level == "bpe" and d.tokenizer.vocab_size != DEFAULT_VOCAB_SIZE else None
        with VerticalScroll(classes="dialog"):
            yield Static("New model", classes="title")
            with Horizontal(classes="row"):
                yield Label("Name")
                yield Input(d.name, id="name", select_on_focus=False)
            with Horizontal(classes="row"):
                yield Label("Architecture")
                yield Select(arch_choices(), value=d.model.arch, allow_blank=False, id="arch")
            for name, f in form_options().items():
                with Horizontal(classes="row", id=f"opt-{name}-row"):
                    yield Label(f.metadata["form"])
                    yield _option_field(f, getattr(d.model, name, None))
            with Horizontal(classes="row"):
                yield Label("Size")
                yield Select(PRESETS, value=d.preset, allow_blank=False, id="preset")
            with Horizontal(classes="row"):
                yield Label("")
                yield Static(PRESET_HELP[d.preset], classes="hint", id="preset-help")
            with Horizontal(classes="row"):
                yield Label("Corpus")
                yield Select(self.corpora + [("a text file or folder…", PATH)], value=corpus,
                             allow_blank=False, id="corpus")
            with Horizontal(classes="row", id="download-row"):
                yield Static("", id="download-note")
                yield Button("Download", id="download", compact=True)
            with Horizontal(classes="row", id="path-row"):
                yield Label("Path")
                yield Input(path, placeholder="~/books/mybook.txt", id="path", select_on_focus=False)
            with Horizontal(classes="row"):
                yield Label("Preprocessing")
                yield Select(PREPS, value=d.tokenizer.prep, allow_blank=False, id="prep")
            with Horizontal(classes="row"):
                yield Label("Tokens")
                yield Select(LEVELS, value=d.tokenizer.level, allow_blank=False, id="tokens")
            with Horizontal(classes="row", id="vocab-row"):
                yield Label("BPE tokens")
                yield Input(number(bpe), placeholder=f"{DEFAULT_VOCAB_SIZE} (learnt from the text)",
                            id="vocab-size", type="integer", select_on_focus=False)
            with Horizontal(classes="row"):
                yield Label("Train for")
                yield Input(number(d.train.steps), placeholder="preset steps", id="new-steps", type="integer",
                            select_on_focus=False)
                yield Input(number(d.train.minutes), placeholder="or minutes", id="new-minutes", type="number",
                            select_on_focus=False)
            yield Static(HINT, classes="hint", id="new-hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Corpus…", id="zipf", tooltip="Zipf's law of the chosen corpus")
                yield Button("Create and train", id="create", variant="primary")

    def on_mount(self) -> None:
        self._suggested = self._suggest()  # a name given back after a failed start is kept if it was edited
        self._sync()
        self.query_one("#create", Button).focus()

    @on(Select.Changed)
    @on(Input.Changed, "#path")
    def _sync(self) -> None:
        arch = str(self.query_one("#arch", Select).value)
        fam = family(arch)
        for name in form_options():
            self.query_one(f"#opt-{name}-row").display = fam.uses(arch, name)
        if arch != self._arch_shown:
            self._own_defaults(self._arch_shown, arch)
        self.query_one("#path-row").display = self.query_one("#corpus", Select).value == PATH
        self.query_one("#vocab-row").display = self.query_one("#tokens", Select).value == "bpe"
        preset = str(self.query_one("#preset", Select).value)
        self.query_one("#preset-help", Static).update(PRESET_HELP.get(preset, ""))
        auto = preset == "auto"
        self.query_one("#new-steps", Input).placeholder = "steps" if auto else "preset steps"
        self.query_one("#new-minutes", Input).placeholder = (f"or minutes ({AUTO_MINUTES:g})" if auto
                                                             else "or minutes")
        self._show_download_row()
        name = self.query_one("#name", Input)
        if name.value.strip() == self._suggested:  # not edited: follow the choices
            self._suggested = self._suggest()
            name.value = self._suggested

    def _own_defaults(self, before: str, arch: str) -> None:
        """Another architecture: a list its family shares (a cell) left at the last family's default
        shows the new family's own (a seq2seq's GRU, a birnn's LSTM); a choice the user made stays."""
        self._arch_shown = arch
        old = {f.name: f.default for f in family(before).option_fields()}
        for f in family(arch).option_fields():
            widget = self.query("#opt-" + f.name).first() if f.metadata.get("form") else None
            if isinstance(widget, Select) and f.metadata.get("choices") and widget.value == old.get(f.name, widget.value):
                try:
                    widget.value = f.default
                except InvalidSelectValueError:  # the shared list does not offer it: left as it is
                    pass

    @on(events.DescendantFocus)
    def _cursor_at_end(self, event: events.DescendantFocus) -> None:
        """A text field reached with Tab keeps its text: the cursor goes to its end, nothing selected."""
        if isinstance(event.widget, Input):
            event.widget.action_end()

    @on(Input.Submitted)
    def _next_field(self, event: Input.Submitted) -> None:
        """Enter in a text field moves on to the next one (ctrl+s creates); from the last one to Create
        and train, so that Enter, Enter never lands on Cancel."""
        event.stop()
        self.focus_next()
        if isinstance(self.focused, Button) and self.focused.id in ("cancel", "zipf"):
            self.query_one("#create", Button).focus()

    # ------------------------------------------------------------ a registry corpus not downloaded yet
    def _missing_corpus(self) -> lmcore.CorpusEntry | None:
        """The chosen registry corpus when it still has to be downloaded."""
        e = lmcore.corpus_entry(str(self.query_one("#corpus", Select).value))
        if e is None or e.builtin or lmcore.corpus_status(e, self.app.core.store.home) != "needs download":
            return None
        return e

    def _show_download_row(self) -> None:
        e = self._missing_corpus()
        row = self.query_one("#download-row")
        row.display = e is not None
        if e is not None and self._download_stop is None:
            self.query_one("#download-note", Static).update(
                f"{e.name} is not on this computer yet ({_size(e.size)}): Download gets it.")
        self.query_one("#download", Button).disabled = self._download_stop is not None

    @on(Button.Pressed, "#download")
    def action_download(self) -> None:
        e = self._missing_corpus()
        if e is None or self._download_stop is not None:
            return
        self._download_stop = threading.Event()
        button = self.query_one("#download", Button)
        if button.has_focus:  # the next step: Create and train (it waits for the download)
            self.query_one("#create", Button).focus()
        button.disabled = True
        self.query_one("#download-note", Static).update(f"Downloading {e.name}… · Esc stops")
        self._download(e.name, self.app.core.store.home, self._download_stop)

    @work(thread=True, group="download", exit_on_error=False)
    def _download(self, corpus: str, home, stop: threading.Event) -> None:
        def progress(done: int, total: int | None) -> None:
            if stop.is_set():
                raise Cancelled("download stopped")
            self.post_message(DownloadProgress(stop, corpus, done, total))

        try:
            lmcore.fetch_corpus(corpus, home, progress=progress)
        except Cancelled:
            return
        except DownloadError as exc:
            builtin = [e.name for e in lmcore.corpus_registry() if e.builtin]
            instead = f"{builtin[0]} (built in) or " if builtin else ""
            self.post_message(DownloadFinished(stop, corpus, (
                f"Could not download {corpus}: {visible_line(exc.reason)}. Connect to the internet and press "
                f"Download again, or choose {instead}your own text file as the corpus.")))
        except LmError as exc:
            self.post_message(DownloadFinished(stop, corpus, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one line in the dialog, never a traceback
            self.post_message(DownloadFinished(stop, corpus, f"Could not download {corpus}: {type(exc).__name__}: {exc}"))
        else:
            self.post_message(DownloadFinished(stop, corpus, None))

    @on(DownloadProgress)
    def _download_progress(self, message: DownloadProgress) -> None:
        if message.stop is not self._download_stop:
            return  # a stopped download
        how_far = (f"{100 * message.done // message.total}% of {_size(message.total)}" if message.total
                   else f"{_size(message.done)}")
        self.query_one("#download-note", Static).update(f"Downloading {message.corpus}… {how_far} · Esc stops")

    @on(DownloadFinished)
    def _download_finished(self, message: DownloadFinished) -> None:
        if message.stop is not self._download_stop:
            return  # a stopped download
        self._download_stop = None
        create, self._create_after_download = self._create_after_download, False
        note = self.query_one("#download-note", Static)
        if message.error:
            note.update(f"[red]{escape(message.error)}[/red]")  # stays there, beside Download
            self.query_one("#download", Button).disabled = False
            note.scroll_visible()
            return
        self.app.notify(f"{message.corpus} is downloaded and checked.", title="Download", markup=False)
        corpus = self.query_one("#corpus", Select)
        chosen = corpus.value
        with self.prevent(Select.Changed):
            corpus.set_options(self.app.core.corpus_choices() + [("a text file or folder…", PATH)])
            corpus.value = chosen
        self._sync()
        if create:
            self._create()

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
        except LmError as exc:
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
            spec = self._spec(name, str(corpus))
        except LmError as exc:
            self._error(str(exc))
            return
        if self._missing_corpus() is not None:  # downloaded first, then created
            self._create_after_download = True
            self.query_one("#new-hint", Static).update(HINT)
            self.action_download()
            return
        self.dismiss(spec)

    def _spec(self, name: str, corpus: str) -> RunSpec:
        """The spec of the choices made (LmError: one that cannot be, in one line)."""
        steps, minutes = budget_from_text(self.query_one("#new-steps", Input).value,
                                          self.query_one("#new-minutes", Input).value)
        tokens = self.query_one("#tokens", Select).value
        vocab_size = None
        if tokens == "bpe" and (v := self.query_one("#vocab-size", Input).value.strip()):
            try:
                vocab_size = int(v)
            except ValueError:
                raise LmError("The number of BPE tokens must be a whole number.") from None
        arch = str(self.query_one("#arch", Select).value)
        return RunSpec.new(name, corpus, arch=arch, preset=self.query_one("#preset", Select).value, options=self._options(arch),
                           tokens=tokens, prep=self.query_one("#prep", Select).value, vocab_size=vocab_size,
                           train=TrainConfig(steps=steps, minutes=minutes))

    def _options(self, arch: str) -> dict | None:
        """The values of the options shown for ``arch`` (a text field left empty: the preset's)."""
        fam, out = family(arch), {}
        for name, f in form_options().items():
            if not fam.uses(arch, name):
                continue
            widget = self.query_one(f"#opt-{name}")
            if isinstance(widget, Select):
                out[name] = widget.value
            elif text := widget.value.strip():
                try:
                    out[name] = int(text) if f.type in (int, "int") else float(text) if f.type in (float, "float") else text
                except ValueError:
                    raise LmError(f"{f.metadata['form']} must be a number.") from None
        return out or None

    def action_cancel(self) -> None:
        """Esc: stops a download (the dialog stays), else closes the dialog."""
        if self._download_stop is not None:
            self._stop_download()
            self._sync()
            self.query_one("#download-note", Static).update("Download stopped: Download starts it again.")
            return
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel_button(self) -> None:
        self._stop_download()
        self.dismiss(None)

    def _stop_download(self) -> None:
        if self._download_stop is not None:
            self._download_stop.set()
            self._download_stop = None
            self._create_after_download = False

    def on_unmount(self) -> None:
        self._stop_download()
