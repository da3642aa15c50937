"""``lmcore bench``: speed and quality against plain PyTorch references, or start-up times (--startup)."""
from __future__ import annotations


def add_parser(sub) -> None:
    b = sub.add_parser("bench", help="speed and quality against plain PyTorch references")
    b.set_defaults(handler=cmd_bench)
    b.add_argument("--device", default="cpu")
    b.add_argument("--arch", action="append", help="limit to these architectures (repeatable)")
    b.add_argument("--quick", action="store_true", help="a short run (under a minute on a 2-core CPU)")
    b.add_argument("--corpus", default=None,
                   help="default: timemachine (tinyshakespeare on a GPU and with --nanogpt)")
    b.add_argument("--shared", action="store_true",
                   help="only the rows of a shared CPU: two trainings at once, one beside a busy core")
    b.add_argument("--nanogpt", action="store_true",
                   help="only the quality row: preset auto against nanoGPT's CPU recipe, each trained --minutes")
    b.add_argument("--minutes", type=float, default=None,
                   help="with --nanogpt: the training time of each run (default 5)")
    b.add_argument("--startup", action="store_true",
                   help="instead: how long lmcore's reading commands and lmplay (to its picker) take to start")
    b.add_argument("--runs", type=int, default=7, help="with --startup: runs of each command (the median is shown)")
    b.add_argument("--json", action="store_true")


def cmd_bench(args) -> int:
    if args.startup:
        from ..bench.startup import run

        return run(args.runs, picker=True, as_json=args.json)
    from ..bench.speed import run_cli

    return run_cli(args)
