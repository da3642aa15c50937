"""Where a text to look at comes from: typed or pasted, or a slice of the model's validation text
(ctrl+t, the next slice each time). Views that read a text put this under them; they bind ctrl+r to
what they do with it (the verb on the button: Score, Show) and ctrl+t to ``take_slice``."""
from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, TextArea

import lmcore
from lmcore import LmError, visible_line

SLICE = 2000  # characters of validation text taken at a time


class TextSource(Vertical):
    def __init__(self, model_name: str, verb: str = "Score", **kw) -> None:
        super().__init__(**kw)
        self.model_name = model_name
        self.verb = verb
        self._offset = 0  # where the next slice of validation text starts

    def compose(self) -> ComposeResult:
        yield TextArea(compact=True, placeholder="the text to look at: type, paste, or ctrl+t", classes="source-text")
        with Horizontal(classes="source-buttons"):
            yield Button(f"{self.verb} (ctrl+r)", classes="source-go", compact=True, variant="primary")
            yield Button("Validation text (ctrl+t)", classes="source-slice", compact=True)

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    @text.setter
    def text(self, value: str) -> None:
        self.query_one(TextArea).text = value

    def take_slice(self) -> None:
        self._take_slice(self._offset)

    @work(thread=True, exclusive=True, group="text-source", exit_on_error=False)
    def _take_slice(self, offset: int) -> None:
        try:
            text = lmcore.validation_text(self.app.core.store, self.model_name, SLICE, offset)
        except LmError as exc:
            self.app.call_from_thread(self.app.notify, str(exc), title="Validation text", severity="error", timeout=8)
            return
        self.app.call_from_thread(self._put_slice, text, offset)

    def _put_slice(self, text: str, offset: int) -> None:
        if not text:
            self._offset = 0
            self.app.notify("That was the end of the validation text: ctrl+t starts from its beginning again.")
            return
        self._offset = offset + len(text)
        self.text = text
        self.app.notify(f"{len(text):,} characters of the validation text of '{visible_line(self.model_name)}' "
                        f"(from character {offset:,}); ctrl+r {self.verb.lower()}s them.")
