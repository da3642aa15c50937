"""Corpora: the registry of named texts, downloading with sha1 checks, built-in and local text files."""
from __future__ import annotations

import codecs
import hashlib
import itertools
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from .. import paths
from . import pairs as _pairs
from ..errors import Cancelled, CorpusError, DownloadError
from ..store.files import atomic_path, read_json, write_json

MIRROR_ENV = "LMPLAY_CORPUS_MIRROR"
DOWNLOAD_TIMEOUT = 20.0  # seconds to connect and between received chunks
CHUNK = 1 << 16


@dataclass(frozen=True)
class CorpusEntry:
    """One named corpus of the registry (``assets/corpora.json``)."""

    name: str
    title: str
    licence: str = ""
    url: str | None = None
    sha1: str | None = None
    size: int | None = None
    builtin: str | None = None
    pairs: bool = False               # a pairs corpus: source<TAB>target lines
    member: str | None = None         # the download is a zip archive: the file inside it that holds the text
    prep: str | None = None           # preprocessing applied when the text is read ("d2l-nmt")


@dataclass
class Corpus:
    """A loaded text: where it came from and its content."""

    name: str
    text: str
    sha1: str
    source: str  # "builtin", "cache", or the file path

    def __len__(self) -> int:
        return len(self.text)


def registry() -> list[CorpusEntry]:
    data = read_json(paths.assets_dir() / "corpora.json", 1 << 20, follow_links=True)
    return [CorpusEntry(**e) for e in data["corpora"]]


def entry(name: str) -> CorpusEntry | None:
    return next((e for e in registry() if e.name == name), None)


def names() -> list[str]:
    return [e.name for e in registry()]


def file_name(e: CorpusEntry) -> str:
    """The name of a registry corpus's download in the cache and in a mirror: NAME.txt, or NAME.zip for a
    corpus downloaded as a zip archive."""
    return f"{e.name}.{'zip' if e.member else 'txt'}"


def cache_path(e: CorpusEntry, home: Path) -> Path:
    return paths.corpora_dir(home) / file_name(e)


def sha1_of_file(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha1_of_text(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def status(e: CorpusEntry, home: Path) -> str:
    """'built-in', 'cached' or 'needs download' (a cached file must also match its size)."""
    if e.builtin:
        return "built-in"
    p = cache_path(e, home)
    if p.is_file() and (e.size is None or p.stat().st_size == e.size):
        return "cached"
    return "needs download"


# ---------------------------------------------------------------- built-in corpora

_RULE = re.compile(r"[-=*~^_+|:#\s]*[-=*~^_+]{3,}[-=*~^_+|:#\s]*")   # table borders, underlines, rules
_TABLE_ROW = re.compile(r"[+|]")                                     # a grid table's rows start so
_BULLET = re.compile(r"([*\-\u2022]|\d+\.|\(\d+\)|[a-z]\.)\s+")       # "* ", "- ", "3. ", "(2) "
_SENTENCE_END = re.compile(r"[.!?][\"\u201d\u2019')\]]*$")
_VERSION_NOTE = re.compile(r"(Changed|Added|New|Deprecated)( in| since)? version\b")
_MARKUP = re.compile(r"(?<![\w*\"])\*{1,2}([^\s*\"](?:[^*\n\"]*?[^\s*\"])?)\*{1,2}(?![\w*])")  # *x*, **x**
_FOOTNOTE_REF = re.compile(r"\s*\[\d+\]")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _paragraph(lines: list[str]) -> str | None:
    """One block of reference text as a prose paragraph on one line, or None when it is not prose: a
    table, a rule or title underline, code (indented further, a >>> session), a grammar production, a
    definition's signature, a version note, a list of references, or a sentence cut off before code."""
    if any(_RULE.fullmatch(line.strip()) or _TABLE_ROW.match(line.strip()) for line in lines):
        return None
    if any(line.lstrip().startswith((">>>", "...")) or "::=" in line for line in lines):
        return None
    first = lines[0].lstrip(" ")
    bullet = _BULLET.match(first)
    body = [first[bullet.end():] if bullet else first] + lines[1:]
    width = _indent(lines[0]) + (bullet.end() if bullet else 0)
    if any(_indent(line) != width for line in lines[1:]):
        return None  # indented further inside: code, a nested list or a definition
    text = ""
    for line in (line.strip() for line in body):
        if text.endswith("-") and line[:1].islower():
            text += line  # a word broken at the line's end: "read-" + "only"
        else:
            text += (" " if text else "") + line
    text = _FOOTNOTE_REF.sub("", _MARKUP.sub(r"\1", " ".join(text.split())))
    if not _SENTENCE_END.search(text) or not re.match(r"[A-Z\"\u201c\u2018(]", text):
        return None  # not a whole sentence (a signature, code, a caption ending in ':')
    if _VERSION_NOTE.match(text) or text.startswith(("See ", "(See ")):
        return None
    letters = sum(c.isalpha() or c == " " for c in text)
    if len(text) < 40 or letters < 0.8 * len(text):
        return None
    return text


def reference_prose(text: str) -> list[str]:
    """The prose paragraphs of a reference text written out by Sphinx (Python's ``pydoc_data.topics``):
    tables, rules, code blocks, >>> sessions, grammar, signatures, version notes, "See also" lists and
    footnotes are dropped, so what remains reads as English a learner can follow. Deterministic."""
    out: list[str] = []
    skip_deeper: int | None = None  # under "See also:": its indented reference list
    for block in re.split(r"\n[ \t]*\n", text.expandtabs(8)):
        lines = [line.rstrip() for line in block.split("\n") if line.strip()]
        if not lines:
            continue
        head = lines[0].strip()
        if head.startswith("-[") and "Footnotes" in head:
            break  # the footnotes close a topic
        if skip_deeper is not None:
            if _indent(lines[0]) > skip_deeper:
                continue
            skip_deeper = None
        if head in ("See also:", "See also"):
            skip_deeper = _indent(lines[0])
            continue
        paragraph = _paragraph(lines)
        if paragraph is not None:
            out.append(paragraph)
    return out


def _pydoc_topics_prose() -> str:
    """English prose of Python's reference documentation (see :func:`reference_prose`)."""
    from pydoc_data.topics import topics

    paragraphs = (p for key in sorted(topics) for p in reference_prose(topics[key]))
    return "\n\n".join(dict.fromkeys(paragraphs)) + "\n"  # some topics repeat others' paragraphs: once


BUILTINS: dict[str, Callable[[], str]] = {
    "pydoc_topics": _pydoc_topics_prose,
    "dates": _pairs.dates_text,
    "reverse": lambda: _pairs.reverse_text(_pydoc_topics_prose()),
}
PREPS: dict[str, Callable[[str], str]] = {"d2l-nmt": _pairs.d2l_nmt_preprocess}


# ---------------------------------------------------------------- fetching

def _mirror_sources(e: CorpusEntry) -> list[str]:
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if not mirror:
        return []
    if re.match(r"^https?://", mirror):
        return [mirror.rstrip("/") + f"/{file_name(e)}"]
    return [str(Path(mirror).expanduser() / file_name(e))]


def _download(url: str, tmp: Path, progress: Callable[[int, int | None], None] | None) -> None:
    import requests

    with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as r:
        if r.status_code != 200:
            raise CorpusError(f"HTTP {r.status_code} from {url}")
        total = int(r.headers.get("content-length") or 0) or None
        done = 0
        with open(tmp, "wb") as f:
            for chunk in r.iter_content(CHUNK):
                f.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done != total:
            raise CorpusError(f"download from {url} was cut short ({done:,} of {total:,} bytes)")


def _describe(exc: Exception) -> str:
    import requests

    if isinstance(exc, CorpusError):
        return str(exc)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in str(exc):
        return "the download was cut short"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"the server did not answer within {DOWNLOAD_TIMEOUT:g} s"
    if isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc)
        if "refused" in text.lower():
            return "connection refused"
        return "no network connection (could not reach the server)"
    if isinstance(exc, requests.exceptions.RequestException):
        return f"download failed ({type(exc).__name__})"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}"
    return str(exc)


def fetch(name: str, home: Path | None = None,
          progress: Callable[[int, int | None], None] | None = None) -> Path:
    """Make sure a registry corpus is in the cache, verified; return its path.

    Tries the mirror (``$LMPLAY_CORPUS_MIRROR``) first, then the public address. Each try streams into a
    temporary file beside the cache entry and is renamed into place only once its sha1 matches. When
    every try failed: :class:`DownloadError` (its ``reason``: the public address's failure). A
    ``progress(done, total)`` that raises :class:`Cancelled` stops it, leaving nothing behind."""
    home = paths.home(home)
    e = entry(name)
    if e is None:
        raise CorpusError(f"unknown corpus '{name}': known corpora are {', '.join(names())}")
    if e.builtin:
        raise CorpusError(f"corpus '{name}' is built in: there is nothing to download")
    target = cache_path(e, home)
    if target.is_file():
        if sha1_of_file(target) == e.sha1:
            return target
        target.unlink()  # damaged or stale: fetch again
    failures: list[str] = []
    for src in _mirror_sources(e) + [e.url]:
        try:
            with atomic_path(target) as tmp:
                if re.match(r"^https?://", src):
                    _download(src, tmp, progress)
                else:
                    if not Path(src).is_file():
                        raise CorpusError(f"mirror folder has no {Path(src).name}")
                    shutil.copyfile(src, tmp)
                got = sha1_of_file(tmp)
                if got != e.sha1:
                    raise CorpusError(f"sha1 mismatch (got {got[:12]}…, expected {e.sha1[:12]}…)")
            return target
        except Cancelled:
            raise  # progress() asked to stop: no other source is tried
        except Exception as exc:  # noqa: BLE001 - every failure becomes one line below
            failures.append(f"{src}: {_describe(exc)}")
            reason = _describe(exc)
    raise DownloadError(
        f"corpus '{name}' is not cached and could not be fetched ({'; '.join(failures)}). "
        f"Use the built-in corpus (--corpus pythondocs), a local text file (--corpus path/to/file.txt), "
        f"or set {MIRROR_ENV} to a folder or URL that holds {file_name(e)}", name, reason
    )


# ---------------------------------------------------------------- reading

MEMO_SETTLE_NS = 1_000_000_000  # a file changed more recently than this is not remembered: hashed again next time
PIECE_CHARS = 1 << 22        # text handed on at a time: memory stays bounded on huge files
_BLOCK_BYTES = 1 << 22


def text_codec(encoding: str | None) -> str:
    """The normalised name of text encoding ``encoding`` ("utf-8" for None, "iso8859-1" for "latin-1").
    CorpusError, in one line, for an unknown codec and for a codec that does not turn bytes into text
    (base64, rot13, zlib, bz2…: ``str.encode`` refuses those, as it refuses "undefined")."""
    if encoding is None:
        return "utf-8"
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, ValueError, TypeError):
        raise CorpusError(f"unknown encoding '{encoding}': try utf-8, latin-1 or cp1252") from None
    try:
        ok = isinstance("".encode(name), bytes) and isinstance(codecs.getincrementaldecoder(name)().decode(b""), str)
    except (LookupError, ValueError, TypeError):  # UnicodeError is a ValueError
        ok = False
    if not ok:
        raise CorpusError(f"'{encoding}' is not a text encoding (it does not turn bytes into characters): give "
                          f"the text file's character encoding, e.g. utf-8, latin-1 or cp1252")
    return name


def decode(data: bytes, where: str, encoding: str | None = None) -> str:
    """The whole of ``data`` as text, checked as :meth:`TextSource.pieces` checks a file."""
    return "".join(_decoded([data], where, encoding))


def _decoded(blocks: Iterable[bytes], where: str, encoding: str | None) -> Iterator[str]:
    """Blocks of bytes decoded as they come, with one clear error for an empty, binary, undecodable or
    blank text; a leading byte-order mark is dropped."""
    decoder = codecs.getincrementaldecoder(text_codec(encoding))()
    offset, first, blank = 0, True, True
    for data in itertools.chain(blocks, [None]):
        if first and not data:
            raise CorpusError(f"{where} is empty: give a text file with some content")
        if first and encoding is None and b"\x00" in data[:8192]:
            raise CorpusError(f"{where} looks like a binary file, not text: give a UTF-8 text file")
        try:
            text = decoder.decode(data or b"", final=data is None)
        except UnicodeDecodeError as exc:
            at = offset - (len(exc.object) - len(data or b"")) + exc.start
            raise CorpusError(_undecodable(where, encoding, exc, at, final=data is None)) from None
        except UnicodeError as exc:  # a codec's own complaint (idna: "label too long"…)
            if "BOM" in str(exc):  # utf-16 / utf-32 without the mark that says their byte order
                name = text_codec(encoding)
                raise CorpusError(f"{where} does not start with the byte-order mark that {name} needs: pass "
                                  f"--encoding {name}-le or {name}-be (little- or big-endian)") from None
            raise CorpusError(f"{where} cannot be read as {text_codec(encoding)} text ({exc}): "
                              f"pass its encoding, e.g. --encoding utf-8 or latin-1") from None
        if first and text.startswith("\ufeff"):
            text = text[1:]
        first = False
        offset += len(data or b"")
        if blank and text.strip():
            blank = False
        if text:
            yield text
    if blank:
        raise CorpusError(f"{where} holds only whitespace: give a text file with some content")


def _undecodable(where: str, encoding: str | None, exc: UnicodeDecodeError, at: int, final: bool) -> str:
    """What is wrong with bytes that are not text in the encoding asked for, in one line: latin-1 is
    suggested only when no encoding (UTF-8) was asked for."""
    name = codecs.lookup(encoding or "utf-8").name
    utf8 = name == "utf-8"
    if final and exc.end >= len(exc.object):  # the last bytes start a character that never ends
        n = len(exc.object) - exc.start
        return (f"{where} ends in the middle of a {name} character (its last {n} byte(s), at offset {at:,}): "
                f"the file is cut short or is not {name} text" +
                (" (then pass its encoding, e.g. --encoding latin-1)" if utf8 else ""))
    if utf8:
        return (f"{where} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {at:,}): "
                f"pass its encoding, e.g. --encoding latin-1")
    return (f"{where} is not {name} text ({exc.reason}: byte 0x{exc.object[exc.start]:02x} at offset {at:,}): "
            f"the file is damaged or is in another encoding than {name}")


def _file_blocks(path: Path, done: list[int], progress) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(_BLOCK_BYTES):
            done[0] += len(block)
            yield block
            if progress:
                progress(done[0], None)


@dataclass
class TextSource:
    """A corpus read as a stream: a built-in text, a cached registry file, a file or a folder of .txt
    files (joined with a newline). Nothing is read until :meth:`pieces` or :meth:`sha1` is called."""

    name: str
    source: str                      # "builtin", "cache", or the absolute path
    files: tuple[Path, ...] = ()
    text: str | None = None          # a built-in text (in memory)
    encoding: str | None = None
    known_sha1: str | None = None    # a registry corpus: the registry's sum, checked when it was fetched
    pairs: bool = False              # a pairs corpus (source<TAB>target lines): see lmcore.data.pairs

    @property
    def size(self) -> int:
        """Bytes to read (for a progress bar)."""
        if self.text is not None:
            return len(self.text)
        return sum(p.stat().st_size for p in self.files)

    @property
    def codec(self) -> str:
        """The normalised name of the encoding the text is read with (see :func:`text_codec`)."""
        return text_codec(self.encoding) if self.files else "utf-8"

    def pieces(self, progress: Callable[[int, int | None], None] | None = None) -> Iterator[str]:
        """The text in pieces of about PIECE_CHARS characters, each ending after a newline where it can
        (so line-wise preprocessing and word tokens never straddle two pieces). ``progress(bytes read,
        total)``."""
        if self.text is not None:
            yield from _cut(iter([self.text]))
            return
        total, done = self.size, [0]
        report = (lambda d, _t: progress(d, total)) if progress else None

        def texts() -> Iterator[str]:
            for i, path in enumerate(self.files):
                if i:
                    yield "\n"
                yield from _decoded(_file_blocks(path, done, report), str(path), self.encoding)
        yield from _cut(texts())

    def read(self) -> str:
        return "".join(self.pieces())

    def sha1(self, memo_dir: Path | None = None) -> str:
        """The corpus's sha1: the registry's, a single file's bytes', or a folder's joined text's.
        Remembered in ``memo_dir`` by path, size, modification and change time, device and inode, so a
        second run over a large file does not read it again. The change time (ctime) cannot be set back
        as the modification time can: a file rewritten in place with its size and time restored is read
        again. A file changed within the last second is not remembered (its next change could fall in
        the same tick of a coarse clock)."""
        if self.known_sha1:
            return self.known_sha1
        if self.text is not None:
            return sha1_of_text(self.text)
        stats = [(p, p.stat()) for p in self.files]
        stamp = [[str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_dev, st.st_ino] for p, st in stats]
        if len(self.files) > 1:  # a folder's sum is its decoded text's: the encoding is part of it
            stamp.insert(0, self.codec)
        settled = time.time_ns() - max(st.st_ctime_ns for _, st in stats) > MEMO_SETTLE_NS
        memo = memo_dir / (hashlib.sha1(self.source.encode("utf-8", "surrogatepass")).hexdigest() + ".json") \
            if memo_dir else None
        if memo is not None:
            try:
                d = read_json(memo, 64 << 20)  # a FIFO, a device, a huge or deep file: BadFile, a ValueError
                if d.get("stamp") == stamp and isinstance(d.get("sha1"), str) and re.fullmatch(r"[0-9a-f]{40}", d["sha1"]):
                    return d["sha1"]
            except (OSError, ValueError, AttributeError):
                pass  # no memo, or a damaged one: hash the text
        if len(self.files) == 1:
            digest = sha1_of_file(self.files[0])
        else:
            h = hashlib.sha1()
            for piece in self.pieces():
                h.update(piece.encode("utf-8", "surrogatepass"))
            digest = h.hexdigest()
        if memo is not None and settled:
            try:
                write_json(memo, {"stamp": stamp, "sha1": digest})
            except OSError:
                pass  # only a memo: the next run hashes again
        return digest


def _cut(texts: Iterator[str]) -> Iterator[str]:
    buf: list[str] = []
    size = 0
    for text in texts:
        buf.append(text)
        size += len(text)
        if size >= PIECE_CHARS:
            joined = "".join(buf)
            cut = joined.rfind("\n") + 1
            if cut == 0 and size >= 16 * PIECE_CHARS:  # one enormous line: cut it at a space
                cut = max(joined.rfind(" "), joined.rfind("\t")) + 1 or size
            if cut:
                yield joined[:cut]
                buf, size = [joined[cut:]], size - cut
            else:
                buf = [joined]
    rest = "".join(buf)
    if rest:
        yield rest


def open_source(source: str, home: Path | None = None, encoding: str | None = None, fetch_missing: bool = True,
                progress: Callable[[int, int | None], None] | None = None) -> TextSource:
    """A corpus by registry name or path, ready to stream. Registry corpora are fetched (and verified)
    when needed; a path must be a regular file or a folder holding .txt files. ``encoding`` must be a
    text encoding (checked first, whatever the corpus)."""
    text_codec(encoding)
    e = entry(source)
    if e is not None:
        if e.builtin:
            return TextSource(e.name, "builtin", text=BUILTINS[e.builtin](), pairs=e.pairs)
        home = paths.home(home)
        if not fetch_missing and not cache_path(e, home).is_file():
            raise CorpusError(f"corpus '{e.name}' is not downloaded yet: run `lmcore corpora fetch {e.name}`")
        target = fetch(e.name, home, progress=progress)
        if e.member or e.prep:
            return TextSource(e.name, "cache", text=_registry_text(e, target), known_sha1=e.sha1, pairs=e.pairs)
        return TextSource(e.name, "cache", files=(target,), known_sha1=e.sha1, pairs=e.pairs)
    path = Path(os.path.abspath(Path(source).expanduser()))  # kept in checkpoints: absolute
    if path.is_dir():
        files = tuple(sorted(p for p in path.rglob("*.txt") if p.is_file()))
        if not files:
            raise CorpusError(f"folder {path} has no .txt files: put text files in it or give one file")
        return TextSource(path.name, str(path), files=files, encoding=encoding)
    if path.exists():
        if not path.is_file():  # a device (/dev/zero), a pipe or a socket would be read forever
            raise CorpusError(f"{path} is not a regular file or folder: give a text file or a folder of .txt files")
        return TextSource(path.stem or path.name, str(path), files=(path,), encoding=encoding,
                          pairs=_sniff_pairs(path, encoding))
    if os.sep in source or "/" in source or "." in source:
        raise CorpusError(f"no such file or folder: {source}")
    raise CorpusError(f"unknown corpus '{source}': known corpora are {', '.join(names())}, "
                      f"or give the path of a text file or folder")


def pairs_lines_source(src: TextSource, sha1: str, seed: int = _pairs.SPLIT_SEED
                       ) -> tuple[TextSource, "_pairs.PairsText", "_pairs.PairsSplit"]:
    """A pairs corpus as a decoder-only model reads it: each pair of the fixed shuffle (training pairs, then
    the validation pairs, last) as one ``source<TAB>target<NEWLINE>`` line. Also the pairs read (its
    ``note`` says which lines were skipped) and the split."""
    read = _pairs.read_pairs(src.read(), src.name if src.source in ("builtin", "cache") else src.source)
    split = _pairs.split_pairs(read.pairs, seed)
    text = _pairs.pairs_lines(split.train) + _pairs.pairs_lines(split.valid)
    return TextSource(src.name, src.source, text=text, known_sha1=sha1, pairs=True), read, split


def _registry_text(e: CorpusEntry, path: Path) -> str:
    """The text of a cached registry download: the file ``e.member`` of a zip archive, or the file itself;
    preprocessed by ``e.prep``."""
    import zipfile

    if e.member:
        try:
            with zipfile.ZipFile(path) as z:
                data = z.read(e.member)
        except KeyError:
            raise CorpusError(f"the download of corpus '{e.name}' has no {e.member} inside it") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise CorpusError(f"the download of corpus '{e.name}' is not a readable zip archive ({exc})") from None
    else:
        data = path.read_bytes()
    text = decode(data, f"{e.name}'s {e.member or path.name}").replace("\r\n", "\n")
    return PREPS[e.prep](text) if e.prep else text


def _sniff_pairs(path: Path, encoding: str | None) -> bool:
    """Whether the start of a text file reads as a pairs corpus (see :func:`lmcore.data.pairs.looks_like_pairs`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    text = head.decode(text_codec(encoding), errors="replace")
    return _pairs.looks_like_pairs(text.rsplit("\n", 1)[0] if len(head) == 1 << 16 else text)


def load(source: str, home: Path | None = None, encoding: str | None = None, fetch_missing: bool = True,
         progress: Callable[[int, int | None], None] | None = None) -> Corpus:
    """Load a whole corpus into memory (for the small jobs: scoring, statistics). Training streams it."""
    src = open_source(source, home, encoding, fetch_missing, progress)
    text = src.read()
    return Corpus(name=src.name, text=text, sha1=src.sha1(), source=src.source)
