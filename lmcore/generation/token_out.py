"""TokenOut: one generated token as a stream yields it (sampling and beam search alike)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenOut:
    """One generated token: its text (with the space a word model puts before it; for bpe the characters
    it completes, so a token inside a character has none), id, the model's probability of it (softmax of
    the raw logits, before any sampling control) and the top alternatives."""

    index: int
    token_id: int
    text: str
    prob: float
    alternatives: list[tuple[str, float]]

    def to_dict(self) -> dict:
        return {"index": self.index, "token_id": self.token_id, "text": self.text, "prob": round(self.prob, 6),
                "alternatives": [[t, round(p, 6)] for t, p in self.alternatives]}
