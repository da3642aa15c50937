"""``lmplay`` / ``python -m tui``: the app in this terminal, or with ``--web`` in a browser."""
from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    import lmcore

    from .web import DEFAULT_HOST, DEFAULT_PORT

    p = argparse.ArgumentParser(prog="lmplay", description="Train small language models and play with them.")
    p.add_argument("--home", help="data folder (default: $LMPLAY_HOME or the user data dir)")
    p.add_argument("--version", action="version", version=f"lmplay {lmcore.__version__}")
    add_learn_arguments(p)
    web = p.add_argument_group("in a browser")
    web.add_argument("--web", action="store_true",
                     help="serve the app to browsers instead of running it here (one app per tab); Ctrl+C stops "
                          "it and every session, each saving its runs first")
    web.add_argument("--host", help=f"address to listen on with --web (default {DEFAULT_HOST}: this computer "
                                    "only; anyone who can reach another address can train and delete models)")
    web.add_argument("--port", type=int, help=f"port to listen on with --web (default {DEFAULT_PORT})")
    return p


def add_learn_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--learn", action="store_true", help="open the Learn screen: the lessons in order")
    p.add_argument("--lesson", metavar="FILE", help="open a lesson: a lesson file (one exported with lmcore lesson "
                                                    "export opens with its own settings) or a lesson's number")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = parser()
    args = p.parse_args(argv)
    if not args.web:
        if args.host is not None or args.port is not None:
            p.error("--host and --port go with --web (lmplay --web --host H --port P)")
        from .app import run

        return run(argv)
    if args.learn or args.lesson is not None:
        p.error("--learn and --lesson open the app in this terminal, not with --web")
    if args.port is not None and not 1 <= args.port <= 65535:
        p.error(f"--port {args.port} is not a port: choose one from 1 to 65535")
    if args.host is not None and not args.host.strip():
        p.error("--host is empty: give an address such as 127.0.0.1 or 0.0.0.0")
    from .web import DEFAULT_HOST, DEFAULT_PORT, serve

    return serve(args.host or DEFAULT_HOST, args.port or DEFAULT_PORT, args.home)


if __name__ == "__main__":
    sys.exit(main())
