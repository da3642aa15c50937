"""Files lmplay writes and reads.

Writes are atomic: a temporary file beside the target, fsync, then rename over it.

Reads go through one reader (:func:`read_bytes`, :func:`read_json`, :func:`open_regular`): every file
lmplay reads may be damaged or hostile (a FIFO, a device, a link to ``/dev/zero``, a huge or deeply nested
JSON). The reader opens without blocking, refuses anything but a regular file (and, in the data folder,
symbolic links), reads at most a limit per kind of file, and parses JSON with its nesting bounded. Every
such problem is one :class:`BadFile` whose message says what the file is instead; a missing file stays
``FileNotFoundError``, so callers can tell "not there" from "damaged"."""
from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; on success it replaces ``target`` atomically.

    A crash or kill before the rename leaves ``target`` untouched (and at worst a ``.tmp`` file)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
        fsync_dir(target.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_json(target: Path, obj) -> None:
    write_bytes(target, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode("utf-8"))


# ---------------------------------------------------------------- reading

KB, MB = 1 << 10, 1 << 20
MAX_DEPTH = 32  # JSON nesting lmplay's files never come near (settings: 3 levels, meta.json: 4)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


class BadFile(ValueError):
    """A file that is not what it should be; the message says what it is instead, in words ("is a FIFO,
    not a regular file"), without the path: the caller says which file it was."""


class TooLarge(BadFile):
    """A regular file larger than the limit for its kind."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a plain file"


def _size(n: int) -> str:
    return f"{n // MB:,} MB" if n >= MB else f"{n // KB:,} KB"


def open_regular(path, follow_links: bool = False):
    """``path`` opened for reading in binary, once it is known to be a regular file: never blocks (a FIFO
    is refused, not waited on), never opens a device, and follows a symbolic link only when
    ``follow_links`` (files of the data folder are never links). Raises FileNotFoundError when absent,
    BadFile otherwise."""
    path = os.fspath(path)
    try:
        st = os.stat(path) if follow_links else os.lstat(path)  # nothing odd is even opened
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISLNK(st.st_mode):
                raise BadFile("is a symbolic link (lmplay does not follow links in its data folder)")
            raise BadFile(f"is {_kind(st.st_mode)}, not a regular file")
        fd = os.open(path, _OPEN_FLAGS | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0)))
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise BadFile("is a symbolic link (lmplay does not follow links in its data folder)") from None
        raise BadFile(f"cannot be read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)  # what was opened, in case it was swapped after the check
        if not stat.S_ISREG(st.st_mode):
            raise BadFile(f"is {_kind(st.st_mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, limit: int, follow_links: bool = False) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    with open_regular(path, follow_links) as f:
        if os.fstat(f.fileno()).st_size > limit:
            raise TooLarge(f"is larger than {_size(limit)}")
        chunks, total = [], 0
        try:
            while total <= limit:
                chunk = f.read(min(MB, limit + 1 - total))
                if not chunk:
                    break
                chunks.append(chunk)
                total += len(chunk)
        except OSError as exc:
            raise BadFile(f"cannot be read ({exc.strerror or exc})") from None
        if total > limit:  # it grew while read
            raise TooLarge(f"is larger than {_size(limit)}")
        return b"".join(chunks)


def parse_json(raw: bytes | str, max_depth: int = MAX_DEPTH):
    """JSON from UTF-8 bytes (or a str), its nesting at most ``max_depth`` deep; BadFile says what is
    wrong (never a RecursionError or a MemoryError)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError:
        raise BadFile("is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise BadFile(f"nests deeper than {max_depth} levels") from None
    except MemoryError:
        raise BadFile("is too large to read") from None
    except ValueError as exc:
        raise BadFile(f"is not valid JSON ({str(exc)[:120]})") from None
    if not _depth_within(data, max_depth):
        raise BadFile(f"nests deeper than {max_depth} levels")
    return data


def read_json(path, limit: int, follow_links: bool = False, max_depth: int = MAX_DEPTH):
    """A JSON file read through :func:`read_bytes` and :func:`parse_json`."""
    return parse_json(read_bytes(path, limit, follow_links), max_depth)


def _depth_within(data, limit: int) -> bool:
    stack = [(data, 1)] if isinstance(data, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return False
        for v in node.values() if isinstance(node, dict) else node:
            if isinstance(v, (dict, list)):
                stack.append((v, depth + 1))
    return True
