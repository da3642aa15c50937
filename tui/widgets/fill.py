"""The Fill tab: a text with blanks (``_`` each, ``\\_`` an underscore), filled by the model in a worker;
the filled text, each blank's candidates with probability bars, and how the model filled them (both
directions, or a forward model scoring candidates with the text after the blank: slower).

Enter fills; a new Enter replaces a filling still running, Esc stops it (its answer is dropped). A text
the model cannot read is one notification; a model that cannot fill says why in the tab."""
from __future__ import annotations

import sys

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Static

import lmcore
from lmcore import LmError, visible_line, visible_token

from ..messages import RunEvent

TOP = 5          # candidates shown per blank, at first
MAX_TOP = 20     # ctrl+up stops there
BAR = 24         # characters of the longest probability bar
BOTH_WAYS = "Both directions: each blank from the text before it (left to right) and after it (right to left)."
JOINTLY = ("Mask-predict: the whole text read with every open blank masked; the most confident blank is "
           "filled first, then the others again.")
SCORING = ("Forward model, slower: rescoring its top {n}candidates at each blank with the probability of the "
           "text after it.")


def method_line(fills_both_ways: bool, scored: int | None = None, jointly: bool = False) -> str:
    """How the model fills (``jointly``: every blank at once, BERT's mask-predict); ``scored``: how many
    candidates a forward model rescores, when known."""
    if fills_both_ways:
        return JOINTLY if jointly else BOTH_WAYS
    return SCORING.format(n=f"{scored} " if scored else "")


def bar(p: float, width: int = BAR) -> str:
    """A probability as a bar of eighths: p=1 fills ``width`` characters."""
    eighths = round(max(0.0, min(1.0, p)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")).ljust(width)


def render_result(result: lmcore.FillResult) -> Text:
    """The filled text, then each blank with its candidates: text, bar, probability."""
    out = Text()
    out.append(visible_line(result.text), style="bold")
    out.append("\n")
    if result.unknown:
        out.append(f"not in the vocabulary (read as <unk>): {', '.join(visible_line(u) for u in result.unknown)}\n",
                   style="yellow")
    width = max((len(visible_token(t)) for b in result.blanks for t, _ in b.candidates), default=1)
    width = min(max(width, 4), 20)
    for b in result.blanks:
        order = f" · filled {_ordinal(b.order)}" if len(result.blanks) > 1 else ""
        out.append(f"\nblank {b.number}{order}\n", style="bold")
        for i, (text, p) in enumerate(b.candidates):
            shown = visible_token(text)
            shown = shown if len(shown) <= width else shown[:width - 1] + "…"
            out.append(f"  {shown:<{width}} ", style="bold" if i == 0 else "")
            out.append(bar(p), style="green" if i == 0 else "cyan")
            out.append(f" {p:6.1%}\n")
    return out


def _scored() -> int | None:
    """How many candidates a forward model rescores: lmcore's number once its filling module is loaded
    (it loads torch: at the first filling, not when the tab opens)."""
    fill = sys.modules.get("lmcore.generation.fill")
    return getattr(fill, "SCORED", None)


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


class Filled(Message):
    """From the fill worker: the answer to request ``request`` (or the one line that says why not)."""

    def __init__(self, request: int, result, error: str | None) -> None:
        super().__init__()
        self.request, self.result, self.error = request, result, error


class FillPane(Vertical):
    BINDINGS = [Binding("escape", "stop", "Stop", priority=True, tooltip="stop filling"),
                # in the help: the footer is full
                Binding("ctrl+up", "top(1)", "More", show=False, tooltip="one more candidate per blank"),
                Binding("ctrl+down", "top(-1)", "Fewer", show=False, tooltip="one candidate fewer per blank")]

    def __init__(self, name: str, **kw) -> None:
        super().__init__(**kw)
        self.model_name = name
        self.top = TOP
        self.request = 0          # the latest request; an answer to an older one is dropped
        self.filling = False
        self.result: lmcore.FillResult | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="fill-method", classes="fill-method")
        with VerticalScroll(id="fill-scroll"):
            yield Static("", id="fill-result")
        yield Static("", id="fill-state", classes="summary-line")
        yield Input(placeholder="A text with _ for each blank (\\_ an underscore), then Enter", id="fill-text",
                    select_on_focus=False)

    def on_mount(self) -> None:
        self.app.core.follow(self)  # a checkpoint saved by training: the tab can fill now
        self.show_method()

    def on_run_event(self, message: RunEvent) -> None:
        if message.name == self.model_name and message.event.kind in ("eval", "done"):
            self.show_method()

    def show_method(self) -> None:
        """What filling does for this model, or why it cannot fill (no checkpoint yet, damaged, its family)."""
        core = self.app.core
        new = getattr(self.screen, "spec", None) is not None
        problem = core.why_cannot_fill(self.model_name, new)
        line = self.query_one("#fill-method", Static)
        if problem:
            line.update(Text(problem, style="red"))
            return
        ck = core.model_checkpoint(self.model_name)
        family = ck.model.family if ck is not None else None
        both = family is not None and family.fills_both_ways
        line.update(Text(method_line(both, _scored(), family is not None and family.fills_jointly)))

    @on(Input.Submitted, "#fill-text")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.fill(event.value)

    def fill(self, text: str) -> None:
        """Fill ``text``'s blanks in a worker; a filling still running gives way."""
        if not text.strip():
            self.app.notify("Type a text with _ for each blank first (e.g. the time _ was).", title="Fill",
                            severity="warning")
            return
        self.request += 1
        self.filling = True
        self.query_one("#fill-state", Static).update("filling… (Esc stops)")
        self._fill(text, self.top, self.request)

    @work(thread=True, exclusive=True, group="fill", exit_on_error=False)
    def _fill(self, text: str, top: int, request: int) -> None:
        try:
            result, error = self.app.core.fill(self.model_name, text, top), None
        except LmError as exc:
            result, error = None, str(exc)
        except Exception as exc:  # noqa: BLE001 - one notification, never a traceback
            result, error = None, f"{type(exc).__name__}: {exc}"
        self.post_message(Filled(request, result, error))

    @on(Filled)
    def _filled(self, message: Filled) -> None:
        message.stop()
        if message.request != self.request:
            return  # replaced or stopped
        self.filling = False
        state = self.query_one("#fill-state", Static)
        if message.error:
            state.update("")
            self.app.notify(visible_line(message.error), title="Fill", severity="error", timeout=8, markup=False)
            self.show_method()
            return
        self.result = r = message.result
        n = len(r.blanks)
        state.update(f"{n} blank{'s' if n != 1 else ''} filled · top {self.top} candidates each")
        self.show_method()
        if r.unknown:
            self.app.notify(f"Not in the model's vocabulary, read as <unk>: "
                            f"{', '.join(visible_line(u) for u in r.unknown)[:200]}", title="Fill",
                            severity="warning", markup=False)
        self.query_one("#fill-result", Static).update(render_result(r))
        self.query_one("#fill-scroll", VerticalScroll).scroll_home(animate=False)

    def action_top(self, change: int) -> None:
        """More or fewer candidates per blank (1 to MAX_TOP); the text shown is filled again."""
        self.top = max(1, min(MAX_TOP, self.top + change))
        text = self.query_one("#fill-text", Input).value
        if self.result is not None and text.strip():
            self.fill(text)
        else:
            self.query_one("#fill-state", Static).update(f"top {self.top} candidates per blank")

    def action_stop(self) -> None:
        if not self.filling:
            return
        self.request += 1  # the running filling's answer is dropped
        self.filling = False
        self.query_one("#fill-state", Static).update("stopped")
