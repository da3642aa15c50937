"""What the command line's commands share: a JSON line, text made safe to print, a text file read safely."""
from __future__ import annotations

import sys


def _out(obj) -> None:
    """One line of strict JSON (no NaN/Infinity, valid UTF-8) on standard output."""
    from ..safe_text import strict_json

    sys.stdout.buffer.write((strict_json(obj) + "\n").encode("utf-8"))
    sys.stdout.flush()


def _v(text) -> str:
    """Text from a file or a model, safe to print (control characters shown as escapes)."""
    from ..safe_text import visible

    return visible(str(text))


def _read_text_file(path: str) -> str:
    from ..errors import ConfigError
    from ..store.files import BadFile, TooLarge, read_bytes

    try:  # a regular file only: a FIFO or a device is refused, never waited on or read without end
        data = read_bytes(path, 8 * 2 ** 20, follow_links=True)
    except TooLarge:
        raise ConfigError(f"{_v(path)} is over 8 MB: score a slice of it") from None
    except BadFile as exc:
        raise ConfigError(f"cannot read {_v(path)}: it {exc}: give a text file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {_v(path)}: {exc.strerror or exc}") from None
    if b"\0" in data[:8192]:
        raise ConfigError(f"{_v(path)} is not a text file")
    return data.decode("utf-8", errors="replace")
