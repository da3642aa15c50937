"""The token cache: a corpus tokenized once, in a streaming pass, into a file of token ids that later
runs read back (see :class:`TokenFile`). A 2 GB text never sits in memory, and a second run on it skips
the tokenizing.

An entry is a folder ``<home>/cache/tokens/<key>/`` holding ``tokens.bin`` (the ids, uint8, uint16 or
uint32 as the vocabulary allows) and ``meta.json`` (written last: an entry without it is incomplete). The
key is the corpus's sha1, the encoding it was read with, the tokenizer, the validation fraction and the
vocabulary ("derived" for a new model, whose vocabulary comes from the text; a saved model's own
vocabulary otherwise). Entries are written into a temporary folder (named for the machine and process
that builds it) and renamed into place, so a killed pass leaves no half entry, and two processes
building the same entry both end with a whole one; the folder of a process that died is removed at the
next use of the cache. A damaged entry (a token file cut short, linked elsewhere, or holding ids outside
its vocabulary) is built again.

Building takes three passes, none holding the text: (1) stream the text into provisional ids (first-seen
order) in a temporary file, (2) count them in the training and the validation split and choose the
vocabulary, (3) write the final ids. A BPE tokenizer is first trained on the training part of the text.
"""
from __future__ import annotations

import collections
import hashlib
import json
import math
import mmap
import os
import re
import shutil
import socket
import tempfile
import time
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .corpus import TextSource
from ..errors import Cancelled, ConfigError, CorpusError, LmError
from ..store.files import BadFile, open_regular, read_json, write_json
from .text import Tokenizer
from ..store.typed import from_mapping
from .vocab import Vocab

VERSION = 1
IN_MEMORY_BYTES = 256 << 20  # token files up to this size are read into memory; larger: a private copy, mapped
COPY_BYTES = 16 << 20        # read, checked and copied at a time
STALE_SECONDS = 24 * 3600    # a temporary folder whose builder cannot be asked is removed when untouched this long
_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32}

Progress = Callable[[str, int, int | None], None]   # (what, done, total)


def cache_dir(home: Path) -> Path:
    return Path(home) / "cache" / "tokens"


def file_dtype(vocab_size: int) -> str:
    """The smallest unsigned type that holds every id."""
    return "uint8" if vocab_size <= 1 << 8 else "uint16" if vocab_size <= 1 << 16 else "uint32"


class DamagedEntry(CorpusError):
    """A cache entry's token file is not what its metadata says (the entry is built again)."""


class TokenFile:
    """The ids of one cache entry, held so that nothing done to the entry's file while they are in use
    can reach training. A map of the entry's own file would not do: cut short while in use, it kills
    the process with SIGBUS. A file of at most IN_MEMORY_BYTES is read into memory; a larger one is
    copied into a private, unnamed file beside it (no path leads to it, it goes when the process
    does) and the copy is memory-mapped, so a corpus larger than memory still trains in little.

    Opening checks that the file is a regular file (a symbolic link is not followed), holds ``count``
    ids, and that every id is below ``vocab_size``; anything else raises :class:`DamagedEntry`. ``ids``
    is a torch tensor over the ids. Pages of a map that training touched stay resident until
    :meth:`trim` hands them back (they are read again from the copy on use)."""

    def __init__(self, path: Path, dtype: str, count: int, vocab_size: int):
        self.path, self.dtype, self.count = path, dtype, count
        self._map: mmap.mmap | None = None
        kind = np.dtype(_DTYPES[dtype])
        size = count * kind.itemsize
        if count <= 0:
            raise DamagedEntry(f"token file {path} is empty")
        try:
            f = open_regular(path)
        except (OSError, BadFile) as exc:
            raise DamagedEntry(f"token file {path} cannot be used: {exc}") from None
        with f:
            if os.fstat(f.fileno()).st_size != size:
                raise DamagedEntry(f"token file {path} does not hold {count:,} ids")
            if size <= IN_MEMORY_BYTES:
                buf = bytearray(size)
                self._fill(f, memoryview(buf), kind, vocab_size)
                ids = np.frombuffer(buf, dtype=kind)
            else:
                ids = self._private_copy(f, size, kind, vocab_size)
        self.ids = torch.from_numpy(ids)

    def _fill(self, f, view: memoryview, kind: np.dtype, vocab_size: int) -> None:
        """Read ``view`` full from ``f``, checking every id is below ``vocab_size``."""
        done = 0
        while done < len(view):
            n = f.readinto(view[done: done + COPY_BYTES])
            if not n:
                raise DamagedEntry(f"token file {self.path} was cut short while read")
            done += n
        self._check_ids(np.frombuffer(view, dtype=kind), vocab_size)

    def _check_ids(self, ids: np.ndarray, vocab_size: int) -> None:
        for s in range(0, len(ids), COPY_BYTES):
            if len(ids[s: s + COPY_BYTES]) and int(ids[s: s + COPY_BYTES].max()) >= vocab_size:
                raise DamagedEntry(f"token file {self.path} holds ids outside its vocabulary of {vocab_size:,}")

    def _private_copy(self, f, size: int, kind: np.dtype, vocab_size: int) -> np.ndarray:
        try:
            copy = tempfile.TemporaryFile(dir=self.path.parent)  # unnamed where the system allows it
        except OSError as exc:
            raise CorpusError(f"could not copy the token file {self.path} for training "
                              f"({exc.strerror or exc}): free some space or make the cache writable") from None
        with copy:
            buf = bytearray(COPY_BYTES)
            left = size
            while left:
                view = memoryview(buf)[: min(COPY_BYTES, left)]
                self._fill(f, view, kind, vocab_size)
                try:
                    copy.write(view)
                except OSError as exc:
                    raise CorpusError(f"could not copy the token file {self.path} for training "
                                      f"({exc.strerror or exc}): free some space") from None
                left -= len(view)
            copy.flush()
            try:
                self._map = mmap.mmap(copy.fileno(), 0, access=mmap.ACCESS_COPY)  # the map keeps the file
            except OSError as exc:
                raise CorpusError(f"could not map the copy of the token file {self.path} "
                                  f"({exc.strerror or exc})") from None
        return np.frombuffer(self._map, dtype=kind, count=self.count)

    def trim(self) -> None:
        if self._map is not None and hasattr(mmap, "MADV_DONTNEED"):
            try:
                self._map.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):
                pass


@dataclass
class TokenData:
    """A corpus as ids: the (fitted) tokenizer, the vocabulary, the two splits over one memory map."""

    tokenizer: Tokenizer
    vocab: Vocab
    file: TokenFile
    val_tokens: int
    val_chars: int          # characters of the validation text (bits per character)
    unigram: float          # loss of the add-one unigram of the training split on the validation split
    built: bool             # False: read from the cache

    @property
    def train_ids(self) -> torch.Tensor:
        return self.file.ids[: self.file.count - self.val_tokens]

    @property
    def val_ids(self) -> torch.Tensor:
        return self.file.ids[self.file.count - self.val_tokens:]


def _spec(tok: Tokenizer) -> dict:
    """What the user chose of a tokenizer (a trained BPE's merges are an outcome, not a choice)."""
    return {k: v for k, v in tok.to_dict().items() if k not in ("bpe",)}


def _digest(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, ensure_ascii=True).encode()).hexdigest()[:24]


def _vocab_print(tok: Tokenizer, vocab: Vocab) -> str:
    return _digest({"tokenizer": tok.to_dict(), "vocab": vocab.idx_to_token})


# ---------------------------------------------------------------- reading an entry

def _read_entry(folder: Path) -> tuple[dict, Tokenizer, Vocab] | None:
    """The entry's meta, tokenizer and vocabulary, or None when it is missing, incomplete or damaged
    (an entry folder that is a symbolic link is not followed: it is damaged)."""
    if folder.is_symlink():
        return None
    try:
        meta = read_json(folder / "meta.json", 256 << 20)  # a word vocabulary is a few MB; BadFile is a ValueError
        if not isinstance(meta, dict) or meta.get("version") != VERSION or meta.get("dtype") not in _DTYPES:
            return None
        n, n_val, chars = meta["tokens"], meta["val_tokens"], meta["val_chars"]
        unigram = meta["unigram"]
        if not all(type(v) is int for v in (n, n_val, chars)) or not 2 <= n_val < n or chars < 0:
            return None
        if not isinstance(unigram, float) or not math.isfinite(unigram):
            return None
        if (folder / "tokens.bin").stat().st_size != n * np.dtype(_DTYPES[meta["dtype"]]).itemsize:
            return None
        tok = from_mapping(Tokenizer, meta["tokenizer"], "tokenizer")
        vocab = Vocab.from_dict(meta["vocab"])
        if file_dtype(len(vocab)) != meta["dtype"]:
            return None
        return meta, tok, vocab
    except (OSError, ValueError, KeyError, TypeError, AttributeError, LookupError, LmError):
        return None


def _open_entry(folder: Path, built: bool) -> TokenData | None:
    got = _read_entry(folder)
    if got is None:
        return None
    meta, tok, vocab = got
    try:
        f = TokenFile(folder / "tokens.bin", meta["dtype"], meta["tokens"], len(vocab))
    except DamagedEntry:
        return None
    return TokenData(tok, vocab, f, meta["val_tokens"], meta["val_chars"], meta["unigram"], built)


# ---------------------------------------------------------------- temporary folders left behind

_HOST = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname())[:40] or "host"
_TMP_NAME = re.compile(r"\.[0-9a-f]{24}\.(?:(?P<host>[A-Za-z0-9-]+)@(?P<pid>[0-9]{1,10})\.)?[A-Za-z0-9_]+")


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM): alive
        return True
    return True


def _untouched_for(folder: Path, seconds: float) -> bool:
    newest = 0.0
    try:
        newest = folder.lstat().st_mtime
        with os.scandir(folder) as it:
            for e in it:
                newest = max(newest, e.stat(follow_symlinks=False).st_mtime)
    except OSError:
        pass
    return time.time() - newest > seconds


def _remove_stale(root: Path) -> None:
    """Remove the temporary folders of tokenizations that will never finish: those of a process of this
    machine that is gone (``kill -9``, a power cut), and any left untouched for STALE_SECONDS (a builder
    of an older release, of another machine sharing the folder, or a process number used again)."""
    try:
        names = os.listdir(root)
    except OSError:
        return
    for name in names:
        m = _TMP_NAME.fullmatch(name)
        folder = root / name
        if m is None or folder.is_symlink() or not folder.is_dir():
            continue
        here = m["pid"] is not None and m["host"] == _HOST
        if (here and not _alive(int(m["pid"]))) or _untouched_for(folder, STALE_SECONDS):
            shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the way in

def tokens_for(home: Path, src: TextSource, sha1: str, tok: Tokenizer, vocab: Vocab | None,
               val_fraction: float, progress: Progress | None = None,
               stop: threading.Event | None = None) -> TokenData:
    """The ids of corpus ``src`` (whose sha1 is ``sha1``) under ``tok``: from the cache, or tokenized now.

    ``vocab`` None: a new model's vocabulary is derived from the text (every character for char
    tokens; the training split's tokens for words and BPE, the rest being ``<unk>``). Otherwise the ids
    are those of the saved ``vocab`` (and ``tok`` is the saved, trained tokenizer)."""
    root = cache_dir(home)
    base = {"version": VERSION, "sha1": sha1, "encoding": src.codec, "tokenizer": _spec(tok),
            "val_fraction": val_fraction}
    _remove_stale(root)
    derived = root / _digest({**base, "vocab": "derived"})
    if vocab is None:
        key = derived
    else:
        got = _read_entry(derived)
        same = got is not None and got[1] == tok and got[2].idx_to_token == vocab.idx_to_token
        key = derived if same else root / _digest({**base, "vocab": _vocab_print(tok, vocab)})
    data = _open_entry(key, built=False)
    if data is not None:
        return data
    if key.is_symlink():
        key.unlink()  # not followed: built again here
    elif key.exists():
        shutil.rmtree(key, ignore_errors=True)  # damaged or incomplete: build it again
    _build(key, src, tok, vocab, val_fraction, progress, stop)
    data = _open_entry(key, built=True)
    if data is None:
        raise CorpusError(f"the token cache entry {key} could not be read back after writing it: "
                          f"delete {root} and try again")
    return data


def _build(key: Path, src: TextSource, tok: Tokenizer, vocab: Vocab | None, val_fraction: float,
           progress: Progress | None, stop: threading.Event | None) -> None:
    try:
        key.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key.name}.{_HOST}@{os.getpid()}.", dir=key.parent))
    except OSError as exc:
        raise CorpusError(f"could not create the token cache in {key.parent} ({exc.strerror or exc}): "
                          f"make it writable, or set LMPLAY_HOME to a writable folder") from None
    try:
        meta = _tokenize(tmp, src, tok, vocab, val_fraction, progress, stop)
        write_json(tmp / "meta.json", meta)
        try:
            os.rename(tmp, key)
        except OSError:
            if _read_entry(key) is None:  # not another process's whole entry: a real failure
                raise
    except OSError as exc:
        raise CorpusError(f"could not write the token cache in {key.parent} ({exc.strerror or exc}): "
                          f"free some space or make it writable") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class _Piece:
    """Where one piece of text's provisional ids lie in the temporary file of pass 1."""

    start: int      # index of its first id in the whole text
    count: int
    chars: int      # characters, as ``Tokenizer.join`` writes its tokens
    first: str      # its first and last tokens (for the separator between two pieces)
    last: str
    offset: int     # byte offset in the file
    dtype: str

    def read(self, raw: Path) -> np.ndarray:
        return np.fromfile(raw, dtype=_DTYPES[self.dtype], count=self.count, offset=self.offset).astype(np.int64)


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise Cancelled("stopped while tokenizing the corpus: nothing was saved")


def _texts(src: TextSource, tok: Tokenizer, what: str, progress: Progress | None,
           stop: threading.Event | None) -> Iterator[str]:
    """The preprocessed text, piece by piece, with progress and cancellation."""
    report = (lambda done, total: progress(what, done, total)) if progress else None
    for piece in src.pieces(report):
        _check(stop)
        yield tok.preprocess(piece)


def _head(texts: Iterator[str], limit: int) -> Iterator[str]:
    for text in texts:
        if limit <= 0:
            return
        yield text[:limit]
        limit -= len(text)


def _tokenize(tmp: Path, src: TextSource, tok: Tokenizer, vocab: Vocab | None, val_fraction: float,
              progress: Progress | None, stop: threading.Event | None) -> dict:
    if vocab is None and tok.needs_fitting:
        chars = sum(len(t) for t in _texts(src, tok, "counting characters", progress, stop))
        tok = tok.fitted(_head(_texts(src, tok, "training the tokenizer", progress, stop),
                               chars - int(chars * val_fraction)))
    # pass 1: provisional ids, in first-seen order, each piece in the smallest type that holds its ids
    raw = tmp / "ids.raw"
    tokens: list[str] = []
    pieces: list[_Piece] = []
    n = 0
    with open(raw, "wb") as out:
        def put(ids: np.ndarray, chars: int, first: str, last: str) -> None:
            nonlocal n
            dtype = file_dtype(int(ids.max()) + 1)
            pieces.append(_Piece(n, len(ids), chars, first, last, out.tell(), dtype))
            ids.astype(_DTYPES[dtype]).tofile(out)
            n += len(ids)

        if tok.level == "char":
            lut = np.full(0x110000, -1, dtype=np.int64)
            for text in _texts(src, tok, "tokenizing", progress, stop):
                cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
                if not len(cps):
                    continue
                fresh = lut[cps] < 0
                if fresh.any():
                    new, first = np.unique(cps[fresh], return_index=True)
                    for cp in new[np.argsort(first)]:
                        lut[cp] = len(tokens)
                        tokens.append(chr(cp))
                put(lut[cps], len(cps), text[:1], text[-1:])
        else:
            index: dict[str, int] = {}
            for text in _texts(src, tok, "tokenizing", progress, stop):
                words = tok.split(text)
                if words:
                    put(np.fromiter((index.setdefault(w, len(index)) for w in words), np.int64, len(words)),
                        len(tok.join(words)), words[0], words[-1])
            tokens = list(index)
    n_val = int(n * val_fraction)
    if n_val < 2:
        raise ConfigError(f"corpus '{src.name}' is too small to hold out a validation set ({n:,} tokens): "
                          f"use a larger text")
    split = n - n_val
    # pass 2: counts in each split; the vocabulary
    train_counts = np.zeros(len(tokens), dtype=np.int64)
    val_counts = np.zeros(len(tokens), dtype=np.int64)
    for piece in pieces:
        _check(stop)
        ids = piece.read(raw)
        cut = max(0, min(len(ids), split - piece.start))
        train_counts += np.bincount(ids[:cut], minlength=len(tokens))
        val_counts += np.bincount(ids[cut:], minlength=len(tokens))
    if vocab is None:
        counts = train_counts + val_counts if tok.level == "char" else train_counts
        vocab = Vocab(collections.Counter({t: int(c) for t, c in zip(tokens, counts) if c}))
    lut = np.array([vocab.token_to_idx.get(t, 0) for t in tokens], dtype=np.int64)
    train_final = np.bincount(lut, weights=train_counts, minlength=len(vocab)) + 1.0
    val_final = np.bincount(lut, weights=val_counts, minlength=len(vocab))
    unigram = float(-(val_final * np.log(train_final / train_final.sum())).sum() / n_val)
    # pass 3: the final ids
    dtype = file_dtype(len(vocab))
    with open(tmp / "tokens.bin", "wb") as out:
        for piece in pieces:
            _check(stop)
            lut[piece.read(raw)].astype(_DTYPES[dtype]).tofile(out)
            if progress:
                progress("writing token ids", piece.start + piece.count, n)
        out.flush()
        os.fsync(out.fileno())
    val_chars = _val_chars(raw, tokens, pieces, split, tok)
    raw.unlink()
    return {"version": VERSION, "dtype": dtype, "tokens": n, "val_tokens": n_val, "val_chars": val_chars,
            "unigram": unigram, "tokenizer": tok.to_dict(), "vocab": vocab.to_dict()}


def _val_chars(raw: Path, tokens: list[str], pieces: list[_Piece], split: int, tok: Tokenizer) -> int:
    """Characters of the validation text, as ``tok.join`` writes it, from the per-piece counts."""
    if tok.level == "char":
        return pieces[-1].start + pieces[-1].count - split
    total, prev = 0, None
    for piece in pieces:
        if piece.start + piece.count <= split:
            continue
        if piece.start >= split:
            total += piece.chars + (len(tok.separator(prev, piece.first)) if prev is not None else 0)
        else:  # the piece the split falls in: join its validation part
            total += len(tok.join([tokens[i] for i in piece.read(raw)[split - piece.start:]]))
        prev = piece.last
    return total
