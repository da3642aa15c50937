"""Preprocessing (``raw`` or the chapters' ``d2l`` clean-up) and tokenization (``char`` or ``word``)."""
from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Iterator

import torch

from .errors import ConfigError
from .vocab import Vocab

PREPS = ("raw", "d2l")
LEVELS = ("char", "word")
_WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]|\n")
_NO_SPACE_BEFORE = set(".,;:!?)]}'’\"”%")
_NO_SPACE_AFTER = set("([{\"“")
ENCODE_CHUNK = 1 << 22  # characters encoded at a time: memory stays bounded on huge files


def d2l_clean(line: str) -> str:
    """The chapters' clean-up of one line: letters only, lower case."""
    return re.sub("[^A-Za-z]+", " ", line).strip().lower()


@dataclass(frozen=True)
class Tokenizer:
    """How text becomes tokens: ``prep`` (raw|d2l) then ``level`` (char|word)."""

    level: str = "char"
    prep: str = "raw"

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ConfigError(f"unknown tokenization '{self.level}': use one of {', '.join(LEVELS)}")
        if self.prep not in PREPS:
            raise ConfigError(f"unknown preprocessing '{self.prep}': use one of {', '.join(PREPS)}")

    def preprocess(self, text: str) -> str:
        """Raw keeps the text (newlines normalised). d2l cleans each line; at char level the chapters
        concatenate the cleaned lines with no separator, at word level lines are separate."""
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if self.prep == "raw":
            return text
        lines = (d2l_clean(line) for line in text.split("\n"))
        return ("" if self.level == "char" else "\n").join(lines)

    def split(self, text: str) -> list[str]:
        """Tokens of already preprocessed text."""
        if self.level == "char":
            return list(text)
        if self.prep == "d2l":
            return text.split()
        return _WORD_RE.findall(text)

    def tokenize(self, text: str) -> list[str]:
        return self.split(self.preprocess(text))

    def join(self, tokens: list[str]) -> str:
        if self.level == "char":
            return "".join(tokens)
        out: list[str] = []
        for tok in tokens:
            if out and tok != "\n" and out[-1] != "\n" and tok[:1] not in _NO_SPACE_BEFORE \
                    and out[-1][-1:] not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(tok)
        return "".join(out)

    def separator(self, prev: str | None, tok: str) -> str:
        """What :meth:`join` puts between ``prev`` and ``tok`` (for streaming one token at a time)."""
        if self.level == "char" or prev is None:
            return ""
        return self.join([prev, tok])[len(prev):-len(tok) or None]

    def to_dict(self) -> dict:
        return {"level": self.level, "prep": self.prep}


def _chunks(text: str, level: str) -> Iterator[str]:
    """Pieces of ``text`` of about ENCODE_CHUNK characters, cut at whitespace for word level."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + ENCODE_CHUNK, n)
        if level == "word" and end < n:
            m = re.compile(r"\s").search(text, end)
            end = m.start() if m else n
        yield text[start:end]
        start = end


def count_tokens(text: str, tok: Tokenizer) -> collections.Counter:
    """Token counts of preprocessed text, chunk by chunk (no list of all tokens is built)."""
    counter: collections.Counter = collections.Counter()
    for piece in _chunks(text, tok.level):
        counter.update(piece if tok.level == "char" else tok.split(piece))
    return counter


def build_vocab(text: str, tok: Tokenizer, min_freq: int = 0, reserved_tokens=None) -> Vocab:
    return Vocab(count_tokens(text, tok), min_freq=min_freq, reserved_tokens=reserved_tokens)


def id_dtype(vocab_size: int) -> torch.dtype:
    """The smallest integer dtype that holds every index."""
    if vocab_size <= 256:
        return torch.uint8
    if vocab_size <= 32767:
        return torch.int16
    return torch.int32


def encode(text: str, tok: Tokenizer, vocab: Vocab) -> torch.Tensor:
    """Preprocessed text -> compact 1-D id tensor. Char level maps code points through a lookup table."""
    dtype = id_dtype(len(vocab))
    parts: list[torch.Tensor] = []
    if tok.level == "char":
        lut = torch.zeros(0x110000, dtype=torch.int32)
        for t, i in vocab.token_to_idx.items():
            if len(t) == 1:
                lut[ord(t)] = i
        for piece in _chunks(text, "char"):
            cps = torch.frombuffer(bytearray(piece.encode("utf-32-le")), dtype=torch.int32)
            parts.append(lut[cps.long()].to(dtype))
    else:
        for piece in _chunks(text, "word"):
            parts.append(torch.tensor(vocab.encode(tok.split(piece)), dtype=torch.int32).to(dtype))
    return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype)
