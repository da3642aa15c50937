"""What the command line's commands share: the parser class, a JSON line, text made safe to print, a text
file read safely, a table of model names."""
from __future__ import annotations

import argparse
import sys


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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


def print_named_table(columns, rows, name_col: int = 0, console=None, **table_kw) -> None:
    """A rich table whose column ``name_col`` holds model names (cells are markup). A name is never cut
    (it must be copyable): the other columns wrap between words, and where the longest name leaves them
    no room, each row is printed as its name on a line of its own, then the other cells."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    texts = [[Text.from_markup(c) for c in row] for row in rows]
    unbounded = console.options.update_width(10_000)
    need = []  # per column: (fewest cells without cutting a word or a name, cells without wrapping)
    for i, head in enumerate(columns):
        cells = [Text(head)] + [row[i] for row in texts]
        ms = [Measurement.get(console, unbounded, c) for c in cells]
        widest = max(m.maximum for m in ms)
        need.append((widest if i == name_col else max(m.minimum for m in ms), widest))
    overhead = Measurement.get(console, console.options, Table(*[""] * len(columns), **table_kw)).maximum
    room = console.width - overhead - sum(lo for lo, _ in need)
    if room < 0:  # the names leave the other columns no room: a name per line
        if table_kw.get("title"):
            console.print(table_kw["title"])
        for row in texts:
            console.print(Text.assemble(row[name_col], style="bold"), soft_wrap=True)
            rest = Text(" · ").join(Text.assemble(f"{columns[i]} ", cell) for i, cell in enumerate(row)
                                    if i != name_col and cell.plain)
            for line in rest.wrap(console, max(20, console.width - 2)):
                line.rstrip()
                console.print(Text.assemble("  ", line), soft_wrap=True)
        return
    widths = [lo for lo, _ in need]
    for i in sorted(range(len(columns)), key=lambda i: need[i][1] - need[i][0]):  # unwrap the most columns
        more = min(room, need[i][1] - widths[i])
        widths[i] += more
        room -= more
    t = Table(*columns, **table_kw)
    for col, w in zip(t.columns, widths):
        col.width = w
        col.overflow = "fold"
    for row in texts:
        t.add_row(*row)
    console.print(t)

