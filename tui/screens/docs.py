"""Help (keys) and About (data folder, config file, device)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from ..keys import key_label

def _binding_line(bindings, actions=None) -> str:
    """``key`` what it does · … for ``bindings`` (those whose action starts with one of ``actions``)."""
    out = []
    for b in bindings:
        if b.action == "nothing" or (actions and not b.action.startswith(actions)):
            continue
        keys = " / ".join(f"`{key_label(k.strip())}`" for k in b.key.split(","))
        out.append(f"{keys} {b.tooltip or b.description.lower()}")
    return " · ".join(out)


def help_text(app) -> str:
    """The keys, written from the bindings themselves (a key added to a screen shows up here)."""
    from ..widgets.compare import Arena, SameText
    from ..widgets.fill import FillPane
    from ..widgets.generation import Continuation, GenerationPane
    from ..widgets.inspect import InspectPane
    from .compare import ChooseModelsScreen, CompareScreen
    from .corpus import CorpusScreen
    from .dialogs import ConfirmScreen, RenameScreen
    from .learn import LearnScreen
    from .lesson import LessonScreen
    from .lesson_settings import LessonSettingsScreen
    from .model import ModelScreen
    from .new_model import NewModelScreen
    from .picker import PickerScreen

    palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "command palette")
    sections = [
        ("Everywhere", _binding_line([palette, *type(app).BINDINGS]), ""),
        ("Models (the picker)", _binding_line(PickerScreen.BINDINGS), ""),
        ("Model screen", _binding_line(ModelScreen.BINDINGS, ("show_tab", "back", "explain")), ""),
        ("Train tab", _binding_line(ModelScreen.BINDINGS, ("train", "toggle_time")),
         "Leave *minutes* and *steps* empty to use the preset's recipe; *steps* continues by that many more."),
        ("Generate tab", _binding_line(GenerationPane.BINDINGS),
         "Type a prompt, then `Enter`; the − / + buttons change the temperature too, also while text streams "
         "in. *colour* paints each character by its probability (green likely … red unlikely). Sampling "
         "order: repetition penalty, temperature (0 = greedy), top-k, top-p, min-p."),
        ("A generated or scored text, focused (Tab, shift+Tab or a click)", _binding_line(Continuation.BINDINGS),
         "The line under the text shows the token's probability and the alternatives the model considered."),
        ("Inspect tab", _binding_line(InspectPane.BINDINGS), ""),
        ("Fill tab", _binding_line(FillPane.BINDINGS),
         "Type a text with `_` for each blank (`\\_` is an underscore), then `Enter`: each blank's likeliest "
         "tokens with their probabilities. A birnn reads both sides of a blank; a forward model scores its "
         "candidates with the text after the blank (slower)."),
        ("Compare: choosing the models", _binding_line(ChooseModelsScreen.BINDINGS),
         "`Space` ticks the model under the cursor; Tab goes to the buttons."),
        ("Compare screen", _binding_line(CompareScreen.BINDINGS), ""),
        ("Learn (the lessons)", _binding_line(LearnScreen.BINDINGS),
         "Each lesson is a chapter's claim as an experiment on your machine: `Enter` opens it."),
        ("A lesson", _binding_line(LessonScreen.BINDINGS),
         "`r` trains the lesson's models one after another (the chart of the one training now above the text), "
         "then fills the text with your numbers; leaving the lesson keeps it running."),
        ("Arena", _binding_line(Arena.BINDINGS), "Type a prompt for every model, then `Enter`."),
        ("Same text", _binding_line(SameText.BINDINGS), ""),
        ("Dialogs", "; ".join(f"{title}: {_binding_line(cls.BINDINGS)}" for title, cls in (
            ("new model", NewModelScreen), ("delete", ConfirmScreen), ("rename", RenameScreen),
            ("corpus", CorpusScreen), ("lesson settings", LessonSettingsScreen),
            ("help", DocScreen))), ""),
    ]
    return "# lmplay keys\n\n*Esc closes this help; ↑ / ↓ scroll it.*\n\n" + "\n\n".join(
        f"**{title}**: {line}" + (f"\n\n{prose}" if prose else "") for title, line, prose in sections) + "\n"


def explain_text(view: str) -> str:
    """The note of a view (``lmcore.inspect.explain``): what it shows, how to read it, its chapter."""
    from lmcore.inspect import explain

    return (explain(view).markdown() + "\n*Esc closes · every key: Help in the command palette "
            f"({key_label('ctrl+p')}), or {key_label('f1')} on the models list.*\n")


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
        f"- data folder: `{app.core.store.home}`\n"
        f"- models: `{app.core.store.root}`\n"
        f"- config file: `{app.core.settings.path}`\n"
        f"- device: {lmcore.describe_device(lmcore.pick_device('auto'))}\n"
        f"- torch {torch.__version__} · textual {textual.__version__} · Python {platform.python_version()}\n\n"
        "Set `LMPLAY_HOME` to move the data folder, `LMPLAY_CORPUS_MIRROR` to fetch corpora from a folder or URL.\n\n"
        "Esc closes."
    )
