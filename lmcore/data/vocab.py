"""Vocab: tokens <-> indices, ``<unk>`` at 0, reserved tokens next, then by descending frequency (d2l.ai)."""
from __future__ import annotations

import collections
from typing import Iterable, Sequence

UNK = "<unk>"


class Vocab:
    def __init__(self, tokens: Iterable[str] | collections.Counter | None = None, min_freq: int = 0,
                 reserved_tokens: Sequence[str] | None = None):
        counter = tokens if isinstance(tokens, collections.Counter) else collections.Counter(tokens or [])
        # sorted() is stable: ties keep first-seen order, as in the chapters
        self.token_freqs: list[tuple[str, int]] = sorted(counter.items(), key=lambda x: x[1], reverse=True)
        self.min_freq = min_freq
        self.reserved_tokens = list(reserved_tokens or [])
        self.idx_to_token: list[str] = [UNK] + [t for t in self.reserved_tokens if t != UNK]
        self.token_to_idx: dict[str, int] = {t: i for i, t in enumerate(self.idx_to_token)}
        for token, freq in self.token_freqs:
            if freq < min_freq:
                break
            if token not in self.token_to_idx:
                self.token_to_idx[token] = len(self.idx_to_token)
                self.idx_to_token.append(token)

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token: str) -> bool:
        return token in self.token_to_idx

    def __getitem__(self, tokens):
        if isinstance(tokens, (list, tuple)):
            return [self.token_to_idx.get(t, self.unk) for t in tokens]
        return self.token_to_idx.get(tokens, self.unk)

    @property
    def unk(self) -> int:
        return 0

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self.token_to_idx.get
        return [get(t, 0) for t in tokens]

    def decode(self, indices: Iterable[int]) -> list[str]:
        return [self.idx_to_token[int(i)] for i in indices]

    def with_tokens(self, tokens: Sequence[str]) -> "Vocab":
        """This vocabulary with ``tokens`` after every other, in that order (a family's special tokens,
        BERT's ``<cls> <sep> <mask>``): itself when it ends with them already; the text's ids do not
        change. ValueError when one of them is a token of the text already."""
        tokens = list(tokens)
        if not tokens or self.idx_to_token[-len(tokens):] == tokens:
            return self
        taken = [t for t in tokens if t in self.token_to_idx]
        if taken:
            raise ValueError(f"the text holds the token {taken[0]!r}, which this model keeps for itself")
        return Vocab.from_dict({**self.to_dict(), "idx_to_token": self.idx_to_token + tokens})

    # ---------------------------------------- persistence (the token cache's and checkpoints' JSON)
    def to_dict(self) -> dict:
        return {"idx_to_token": self.idx_to_token, "min_freq": self.min_freq,
                "reserved_tokens": self.reserved_tokens, "token_freqs": self.token_freqs}

    @classmethod
    def from_dict(cls, d: dict) -> "Vocab":
        v = cls.__new__(cls)
        v.idx_to_token = list(d["idx_to_token"])
        if not v.idx_to_token or v.idx_to_token[0] != UNK or len(set(v.idx_to_token)) != len(v.idx_to_token):
            raise ValueError("vocabulary must start with <unk> and hold no duplicates")
        v.token_to_idx = {t: i for i, t in enumerate(v.idx_to_token)}
        v.min_freq = int(d.get("min_freq", 0))
        v.reserved_tokens = list(d.get("reserved_tokens", []))
        v.token_freqs = [(str(t), int(f)) for t, f in d.get("token_freqs", [])]
        return v
