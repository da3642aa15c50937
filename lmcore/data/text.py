"""Preprocessing (``raw`` or the chapters' ``d2l`` clean-up) and tokenization (``char``, ``word`` or
``bpe``, byte-level subwords learnt from the training split: see :mod:`lmcore.data.bpe`)."""
from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from . import bpe as _bpe
from ..errors import ConfigError
from .vocab import Vocab

if TYPE_CHECKING:
    import torch

PREPS = ("raw", "d2l")
LEVELS = ("char", "word", "bpe")
_WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]|\n")
_NO_SPACE_BEFORE = set(".,;:!?)]}'’\"”%")
_NO_SPACE_AFTER = set("([{\"“")
ENCODE_CHUNK = 1 << 22  # characters encoded at a time: memory stays bounded on huge files


def d2l_clean(line: str) -> str:
    """The chapters' clean-up of one line: letters only, lower case."""
    return re.sub("[^A-Za-z]+", " ", line).strip().lower()


@dataclass(frozen=True)
class Tokenizer:
    """How text becomes tokens: ``prep`` (raw|d2l) then ``level`` (char|word|bpe).

    ``bpe`` tokens are learnt: ``Tokenizer("bpe", vocab_size=N)`` is the choice, :meth:`fitted` trains it
    on the training split and returns the tokenizer that holds the result (``bpe``: the ``tokenizers``
    library's JSON, canonical; an object given instead is turned into that string)."""

    level: str = "char"
    prep: str = "raw"
    vocab_size: int = _bpe.DEFAULT_VOCAB_SIZE          # bpe: the most tokens the trained BPE holds
    bpe: str | dict | None = field(default=None, repr=False)  # bpe: the trained tokenizer, None before fitted()

    def __post_init__(self):
        if self.level not in LEVELS:
            raise ConfigError(f"unknown tokenization '{self.level}': use one of {', '.join(LEVELS)}")
        if self.prep not in PREPS:
            raise ConfigError(f"unknown preprocessing '{self.prep}': use one of {', '.join(PREPS)}")
        if self.level != "bpe":
            if self.bpe is not None or self.vocab_size != _bpe.DEFAULT_VOCAB_SIZE:
                what = "character of the text" if self.level == "char" else "word of the training split"
                raise ConfigError(f"a vocabulary size (--vocab-size) is for bpe tokens: a {self.level} "
                                  f"vocabulary holds every {what}")
            return
        _bpe.check_vocab_size(self.vocab_size)
        if isinstance(self.bpe, dict):
            object.__setattr__(self, "bpe", _bpe.canonical(self.bpe))
        if self.bpe is not None:
            _bpe.load(self.bpe)  # checked (and cached) once: a damaged one fails here, with one line

    def __repr__(self) -> str:  # the BPE's JSON is tens of kilobytes: say only whether it is trained
        extra = f", vocab_size={self.vocab_size}, bpe={'<trained>' if self.bpe else None}" if self.level == "bpe" else ""
        return f"Tokenizer(level={self.level!r}, prep={self.prep!r}{extra})"

    @property
    def needs_fitting(self) -> bool:
        """A BPE not trained yet: :meth:`fitted` must see the training text before anything is split."""
        return self.level == "bpe" and self.bpe is None

    def fitted(self, texts: Iterable[str]) -> "Tokenizer":
        """This tokenizer trained on ``texts`` (the pieces of the training split, preprocessed): for an
        untrained BPE a new Tokenizer holding the learnt BPE; any other tokenizer is returned as is."""
        if not self.needs_fitting:
            return self
        return replace(self, bpe=_bpe.train(texts, self.vocab_size))

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
        if self.level == "bpe":
            return _bpe.split(self._trained_bpe(), text)
        if self.prep == "d2l":
            return text.split()
        return _WORD_RE.findall(text)

    def tokenize(self, text: str) -> list[str]:
        return self.split(self.preprocess(text))

    def _trained_bpe(self) -> str:
        if self.bpe is None:
            raise ConfigError("this BPE tokenizer is not trained yet: fitted() must see the training text first")
        return self.bpe

    def join(self, tokens: list[str]) -> str:
        """The text of ``tokens`` (for char and bpe tokens exactly the text they were split from)."""
        if self.level == "char":
            return "".join(tokens)
        if self.level == "bpe":
            return _bpe.join(tokens)
        out: list[str] = []
        for tok in tokens:
            if out and tok != "\n" and out[-1] != "\n" and tok[:1] not in _NO_SPACE_BEFORE \
                    and out[-1][-1:] not in _NO_SPACE_AFTER:
                out.append(" ")
            out.append(tok)
        return "".join(out)

    def separator(self, prev: str | None, tok: str) -> str:
        """What :meth:`join` puts between ``prev`` and ``tok`` (nothing between bpe tokens, whose
        spaces are inside them). To stream text use :meth:`piece_decoder`: a bpe token's string is not
        its text."""
        if self.level in ("char", "bpe") or prev is None:
            return ""
        return self.join([prev, tok])[len(prev):-len(tok) or None]

    def piece_decoder(self, prev: str | None = None) -> "Callable[[str], str]":
        """A callable that takes the tokens of a stream one at a time, after ``prev`` (the token before
        the first, None at the start of a text), and returns the text each adds: the separator and the
        word for words; for bpe the bytes decoded, a character split over tokens coming whole with the
        token that completes it. The pieces concatenate to :meth:`join` of the tokens. ``copy()`` gives
        an independent one in the same state (a beam search branches)."""
        if self.level == "bpe":
            return _bpe.PieceDecoder()
        return _SeparatedPieces(self, prev)

    def pieces(self, tokens: Iterable[str], prev: str | None = None) -> list[str]:
        """The text each of ``tokens`` adds (see :meth:`piece_decoder`)."""
        return list(map(self.piece_decoder(prev), tokens))

    def display(self, token: str) -> str:
        """One vocabulary token as text on its own (lists of alternatives, unknown prompt tokens): bpe
        tokens decoded (a partial character as ``\\xNN``), others as they are."""
        return _bpe.display(token) if self.level == "bpe" else token

    def to_dict(self) -> dict:
        """What a checkpoint stores: level and prep; for bpe also the size asked for and the trained
        BPE as a JSON object."""
        if self.level != "bpe":
            return {"level": self.level, "prep": self.prep}
        return {"level": self.level, "prep": self.prep, "vocab_size": self.vocab_size,
                "bpe": None if self.bpe is None else json.loads(self.bpe)}


class _SeparatedPieces:
    """Char and word tokens as streamed text: the separator :meth:`Tokenizer.join` puts before a token,
    then the token."""

    def __init__(self, tok: Tokenizer, prev: str | None):
        self.tok, self.prev = tok, prev

    def __call__(self, token: str) -> str:
        text = self.tok.separator(self.prev, token) + token
        self.prev = token
        return text

    def copy(self) -> "_SeparatedPieces":
        return _SeparatedPieces(self.tok, self.prev)


def _chunks(text: str, level: str) -> Iterator[str]:
    """Pieces of ``text`` of about ENCODE_CHUNK characters, cut at whitespace for word and bpe levels."""
    start, n = 0, len(text)
    while start < n:
        end = min(start + ENCODE_CHUNK, n)
        if level != "char" and end < n:
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
    import torch  # here: tokenizers and checkpoints are read without it

    if vocab_size <= 256:
        return torch.uint8
    if vocab_size <= 32767:
        return torch.int16
    return torch.int32


def encode(text: str, tok: Tokenizer, vocab: Vocab) -> torch.Tensor:
    """Preprocessed text -> compact 1-D id tensor. Char level maps code points through a lookup table."""
    import torch

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
