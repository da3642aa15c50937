"""Help (keys) and About (data folder, config file, device)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

HELP = """\
# lmplay keys

**Everywhere**: `ctrl+p` command palette · `f1` this help · `ctrl+q` quit (training stops and saves)

**Models**: `Enter` open · `n` new model · `r` rename · `d` delete

**Model screen**: `f2` Train tab · `f3` Generate tab · `ctrl+b` back to the models

**Training**: `s` train / continue · `p` pause / resume · `x` stop (saves the best checkpoint).
Leave *minutes* and *steps* empty to use the preset's recipe; *steps* continues by that many more.

**Generation**: type a prompt, `Enter` · `Esc` stop · `ctrl+↑` / `ctrl+↓` or the − / + buttons change
the temperature, also while text streams in · `ctrl+y` copy the last continuation · `ctrl+l` clear.
Focus a continuation (Tab or click) and use `←` / `→` to see each character's probability and the
alternatives the model considered. *colour* paints each character by its probability
(green likely … red unlikely).

Sampling order: repetition penalty, temperature (0 = greedy), top-k, top-p, min-p.

Esc or q closes this help.
"""


class DocScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,f1", "dismiss", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="doc"):
            yield Markdown(self.text)

    def action_dismiss(self) -> None:
        self.dismiss()


def about_text(app) -> str:
    import platform

    import textual
    import torch

    import lmcore

    return (
        f"# About lmplay {lmcore.__version__}\n\n"
        f"- data folder: `{app.store.home}`\n"
        f"- models: `{app.store.root}`\n"
        f"- config file: `{app.settings.path}`\n"
        f"- device: {lmcore.describe_device(lmcore.pick_device('auto'))}\n"
        f"- torch {torch.__version__} · textual {textual.__version__} · Python {platform.python_version()}\n\n"
        "Set `LMPLAY_HOME` to move the data folder, `LMPLAY_CORPUS_MIRROR` to fetch corpora from a folder or URL.\n\n"
        "Esc closes."
    )
