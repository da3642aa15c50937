"""Same text, several models: one text scored by each model (loss per token, bits per character), and
the text coloured by which of the first two models found each token more likely. Moving over a token
shows every model's probability of it."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Button, Static

import lmcore
from lmcore import LmError, visible, visible_line

from ...colours import theme_style
from ..generation import Continuation, Transcript
from ..generation.transcript import band_colour
from ..text_source import TextSource

MARGIN = 0.5  # nats: a model "found a token more likely" by more than this


@dataclass
class ComparedToken:
    """A token of the scored text and each model's probability of it."""

    text: str
    probs: tuple[float, ...]  # () for the first token: nothing predicts it
    diff: float | None  # log p(first) - log p(second); None when the models split the text differently

    @property
    def prob(self) -> float:
        return self.probs[0] if self.probs else 1.0

    @property
    def alternatives(self) -> tuple:
        return ()


FIRST, SECOND = "success", "accent"  # theme colours: the first model, the second model found it likelier


def lead(t: ComparedToken) -> str:
    """The theme colour of a token: which of the first two models found it more likely."""
    if t.diff is None:
        return ""
    return FIRST if t.diff > MARGIN else SECOND if t.diff < -MARGIN else ""


def first_model_band(t: ComparedToken) -> str:
    """The theme colour of a token by the first model's probability (texts tokenized differently)."""
    return band_colour(t.prob) if t.probs else ""


class Scored(Message):
    """The text was scored by every model (``scores``: name -> lmcore.TextScore), or could not be."""

    def __init__(self, text: str, scores: dict | None, error: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.scores = scores
        self.error = error


class ScoringProgress(Message):
    """How far the scoring is: model ``index`` of the list, ``done`` of ``total`` tokens (high-rate: a
    newer one replaces an older one still waiting)."""

    def __init__(self, stop: threading.Event, index: int, done: int, total: int | None) -> None:
        super().__init__()
        self.stop_event, self.index, self.done, self.total = stop, index, done, total

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScoringProgress)


class SameText(Vertical):
    BINDINGS = [
        Binding("ctrl+r", "score", "Score", tooltip="score the text with every model"),
        Binding("ctrl+t", "validation_text", "Validation text", tooltip="the next slice of validation text"),
        Binding("escape", "stop_scoring", "Stop", tooltip="stop scoring"),
    ]

    def __init__(self, names: list[str], **kw) -> None:
        super().__init__(**kw)
        self.names = names
        self.scores: dict | None = None
        self.stop_event = threading.Event()
        self.scoring = False
        core = self.app.core
        # models that answer a source line (encoder-decoders, models trained on pairs): no running text to score
        self.answering = [n for n in names if (ck := core.model_checkpoint(n)) is not None
                          and lmcore.answers_sources(ck)]

    def _cannot_score(self) -> str:
        """Why this tab scores nothing for these models, in one line."""
        who = ", ".join(visible_line(n) for n in self.answering[:3]) + (" …" if len(self.answering) > 3 else "")
        return (f"Same text scores running text with language models; {who} "
                f"{'answers' if len(self.answering) == 1 else 'answer'} a source line instead: compare the "
                f"replies in the Arena (F2), and the scores on the validation pairs with lmcore evaluate NAME.")

    def on_unmount(self) -> None:
        self.stop_event.set()

    def compose(self) -> ComposeResult:
        yield Static(Text(self._cannot_score()) if self.answering else
                     "Type or paste a text below, or take a slice of the validation text (ctrl+t); "
                     "then ctrl+r scores it with every model.", id="same-summary")
        yield Transcript(id="same-view")
        yield Static("", id="same-token", classes="summary-line")
        yield TextSource(self.names[0], "Score")

    @on(Button.Pressed, ".source-go")
    def action_score(self) -> None:
        if self.answering:
            self.app.notify(self._cannot_score(), title="Nothing to score", severity="warning", timeout=8)
            return
        text = self.query_one(TextSource).text
        if not text.strip():
            self.app.notify("Type or paste a text first (or ctrl+t for validation text).", severity="warning")
            return
        self.stop_event.set()  # a scoring still running gives way to this one
        self.stop_event = threading.Event()
        self.scoring = True
        self._show_progress(ScoringProgress(self.stop_event, 0, 0, None))
        self.score(text)

    def action_stop_scoring(self) -> None:
        if self.scoring:
            self.stop_event.set()
            self.scoring = False
            self.query_one("#same-summary", Static).update("Scoring stopped: ctrl+r scores the text again.")

    @on(ScoringProgress)
    def _show_progress(self, message: ScoringProgress) -> None:
        message.stop()
        if message.stop_event is not self.stop_event or not self.scoring:  # an older scoring's, or stopped
            return
        name = visible_line(self.names[message.index])
        far = f": {message.done / message.total:.0%}" if message.total else "…"
        self.query_one("#same-summary", Static).update(Text(
            f"scoring with {name} (model {message.index + 1} of {len(self.names)}){far} · Esc stops"))

    @work(thread=True, exclusive=True, group="scoring", exit_on_error=False)
    def score(self, text: str) -> None:
        stop = self.stop_event
        try:
            scores = {}
            for i, name in enumerate(self.names):
                self.post_message(ScoringProgress(stop, i, 0, None))
                gen = self.app.core.get_generator(name)
                scores[name] = lmcore.score_text(
                    gen, text, stop, progress=lambda done, total, i=i: self.post_message(
                        ScoringProgress(stop, i, done, total)))
                if stop.is_set():
                    return
        except LmError as exc:
            self.post_message(Scored(text, None, str(exc)))
            return
        except Exception as exc:  # noqa: BLE001
            self.post_message(Scored(text, None, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(Scored(text, scores))

    @on(Scored)
    def _scored(self, message: Scored) -> None:
        message.stop()
        self.scoring = False
        if message.error:
            self.app.notify(message.error, title="Cannot score", severity="error", timeout=8)
            self.query_one("#same-summary", Static).update("")
            return
        self.scores = message.scores
        self.query_one("#same-summary", Static).update(self._summary(message.scores))
        tokens = self._tokens(message.scores)
        first = message.scores[self.names[0]]
        tokens.insert(0, ComparedToken(visible(first.lead), (), None))  # the first token: read, not scored
        same = tokens[-1].diff is not None
        view = self.query_one("#same-view", Transcript)
        view.remove_children()
        continuation = Continuation(tokens, colour=True, styler=lead if same else first_model_band)
        continuation.cursor = 1 if len(tokens) > 1 else 0  # the text is read from its start
        view.mount(continuation)
        view.scroll_home(animate=False)
        self.query_one("#same-token", Static).update(self._legend(same))

    def _legend(self, same: bool) -> Text:
        if not same:
            return Text("these models split the text into different tokens: coloured by the first one's probability")
        a, b = (visible_line(n)[:20] for n in self.names[:2])
        first, second = theme_style(self.app, FIRST), theme_style(self.app, SECOND)
        return Text.assemble(("■ ", first), f"{a} likelier  ", ("■ ", second),
                             f"{b} likelier (by > {MARGIN} nats)")

    def _summary(self, scores: dict) -> Text:
        budgets = self.app.core.budgets(self.names)[0]
        out = Text(f"{'model':<22} {'tokens':>7} {'loss/token':>10} {'bits/char':>9} {'trained':>8} {'seen':>6}",
                   style="bold")
        out.append("\n")
        best = min(scores.values(), key=lambda s: s.bits_per_char)
        for name in self.names:
            s, b = scores[name], budgets.get(name)
            spent = (lmcore.minutes_label(b.seconds), lmcore.count_label(b.tokens)) if b else ("-", "-")
            line = (f"{visible_line(name)[:22]:<22} {len(s.tokens):>7,} {s.loss:>10.3f} {s.bits_per_char:>9.3f} "
                    f"{spent[0]:>8} {spent[1]:>6}")
            out.append(line + ("  ◀ best" if s is best else "") + "\n")
        out.append("shift+tab, ←/→: a token's probabilities · trained: time · seen: tokens", style="dim")
        return out

    def _tokens(self, scores: dict) -> list[ComparedToken]:
        lists = [scores[n].tokens for n in self.names]
        aligned = all([t.text for t in lst] == [t.text for t in lists[0]] for lst in lists)
        out = []
        for i, t in enumerate(lists[0]):
            probs = tuple(math.exp(lst[i].logprob) for lst in lists) if aligned else (math.exp(t.logprob),)
            diff = lists[0][i].logprob - lists[1][i].logprob if aligned else None
            out.append(ComparedToken(visible(t.text), probs, diff))
        return out

    @on(Continuation.CursorMoved)
    def _show_token(self, message: Continuation.CursorMoved) -> None:
        message.stop()
        t = message.token
        if not t.probs:
            self.query_one("#same-token", Static).update(Text(f"{t.text!r}: the first token (nothing predicts it)"))
            return
        names = self.names if len(t.probs) == len(self.names) else self.names[:1]
        each = " · ".join(f"{visible_line(n)} p={p:.3f}" for n, p in zip(names, t.probs))
        self.query_one("#same-token", Static).update(Text(f"{t.text!r}: {each}"))

    @on(Button.Pressed, ".source-slice")
    def action_validation_text(self) -> None:
        self.query_one(TextSource).take_slice()
