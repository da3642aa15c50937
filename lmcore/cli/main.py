"""The ``lmcore`` command line: the parser, built from each command group's module (corpora, models,
train, generate and compare, fill, evaluate, inspect, export, bench, lesson), and ``main``, which runs the command given."""
from __future__ import annotations

import argparse
import os
import sys

from .. import __version__
from . import bench, corpora, evaluate, export, fill, generate, inspect, lesson, models, train
from .output import Parser, _out, _v

GROUPS = (corpora, models, train, generate, fill, evaluate, inspect, export, bench, lesson)  # in the order --help lists them

# commands that only read files and print them: they start without torch or numpy (lmcore bench --startup)
_READ_ONLY = {("corpora", None), ("corpora", "fetch"), ("models", None), ("models", "show"), ("models", "rm"),
              ("models", "rename"), ("lesson", None), ("lesson", "list"), ("lesson", "show"), ("lesson", "export")}


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="lmcore", description="Train small language models and generate text, headless.")
    p.add_argument("--version", action="version", version=f"lmplay {__version__}")
    p.add_argument("--home", help="data folder (default: $LMPLAY_HOME or the user data dir)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in GROUPS:
        group.add_parser(sub)
    return p


def main(argv=None) -> int:
    from ..errors import LmError

    args = build_parser().parse_args(argv)
    if (args.command, getattr(args, "action", None)) not in _READ_ONLY:
        import numpy as np

        np.seterr(all="ignore")  # a damaged model's NaN is reported as one line, not warnings
    try:
        return args.handler(args)
    except LmError as exc:
        if getattr(args, "json", False):  # a --json caller reads standard output
            _out({"event": "failed", "message": str(exc)})
        print(f"error: {_v(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # e.g. the data folder is a file, or not writable
        where = f" ({_v(exc.filename)})" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}: check the data folder (--home or LMPLAY_HOME)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
