"""The Generate tab of an encoder–decoder (a family that ``reads_pairs``): a chat. Each line sent is a
source; the model's reply streams in under it with each token's probability (as a continuation does), read
with the settings bar's controls (temperature 0: greedy; beam > 0: beam search, the reply shown at its
end). A source longer than the model's limit is refused and unknown characters are reported, each in one
notification. The last turn (its source and reply) is what the Inspect tab aligns."""
from __future__ import annotations

import lmcore
from lmcore import SamplingSettings

from .pane import GenerationPane
from .transcript import Turn


class ChatPane(GenerationPane):
    PLACEHOLDER = "Type a source, Enter: the model replies (Esc stops, ctrl+↑/↓ temperature)"

    def __init__(self, name: str, **kw) -> None:
        super().__init__(name, **kw)
        self._stream_made: lmcore.ReplyStream | None = None  # the last turn's (its end: eos or the limit)

    def generate(self, prompt: str) -> None:
        if not prompt.strip() and not self.generating:
            self.app.notify("Type a source first: the model replies to it.", severity="warning")
            return
        super().generate(prompt)

    def open_stream(self, gen: lmcore.Generator, prompt: str, settings: SamplingSettings):
        self._stream_made = lmcore.ReplyStream(gen, prompt, settings, stop_event=self.stop_event)
        return self._stream_made

    def show_end(self, reason: str, error: str | None) -> None:
        stream = self._stream_made
        cut = not error and reason == "done" and stream is not None and not stream.ended
        n = len(self._current.continuation.tokens) if self._current and not error else 0
        super().show_end(reason, error)
        if not error:
            self._set_state(f"{'reply' if reason == 'done' else reason}: {n} tokens"
                            + (" (cut)" if cut else "") + " · f4: alignment")
        self._stream_made = None

    def last_turn(self) -> tuple[str, str] | None:
        """The last turn's source and reply (None before the first, or while it streams)."""
        turns = list(self.query(Turn))
        if not turns or self.generating:
            return None
        return turns[-1].prompt, turns[-1].continuation.plain
