"""``lmcore corpora``: list, fetch and inspect corpora (``info``, ``zipf``)."""
from __future__ import annotations

import argparse
import sys

from .output import Parser, _out, _v


def add_parser(sub) -> None:
    from ..data.text import PREPS
    from .inspect import add_zipf_parser

    c = sub.add_parser("corpora", help="list, fetch and inspect corpora")
    c.set_defaults(handler=cmd_corpora)
    c.add_argument("--json", action="store_true", help="one JSON object per corpus")
    csub = c.add_subparsers(dest="action", parser_class=Parser)
    f = csub.add_parser("fetch", help="download a corpus and verify its sha1")
    f.add_argument("name")
    f.add_argument("--json", action="store_true")
    i = csub.add_parser("info", help="characters, tokens, vocabulary sizes and top n-grams")
    i.add_argument("name", help="registry name or path of a text file or folder")
    i.add_argument("--prep", choices=PREPS, default="raw")
    i.add_argument("--encoding", help="text encoding of a local file (default utf-8)")
    i.add_argument("--top", type=int, default=10)
    i.add_argument("--json", action="store_true", default=argparse.SUPPRESS)  # `corpora --json info` too
    add_zipf_parser(csub)


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)



def cmd_corpora(args) -> int:
    from ..data import corpus
    from ..paths import home

    root = home(args.home)
    if args.action == "fetch":
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                      TransferSpeedColumn(), transient=True, disable=args.json or not sys.stderr.isatty()) as prog:
            task = prog.add_task(f"fetching {args.name}", total=None)
            path = corpus.fetch(args.name, root, progress=lambda done, total: prog.update(task, completed=done, total=total))
        if args.json:
            _out({"name": args.name, "path": str(path), "sha1": corpus.sha1_of_file(path)})
        else:
            print(f"{args.name}: verified and cached at {path}")
        return 0
    if args.action == "info":
        return _corpus_info(args, root)
    if args.action == "zipf":
        from .inspect import cmd_zipf

        return cmd_zipf(args, root)
    rows = []
    for e in corpus.registry():
        rows.append({"name": e.name, "title": e.title, "size": e.size, "status": corpus.status(e, root),
                     "url": e.url, "sha1": e.sha1, "licence": e.licence, "pairs": e.pairs})
    if args.json:
        for r in rows:
            _out(r)
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "title", "size", "status")
    for r in rows:
        t.add_row(r["name"], r["title"], _fmt_size(r["size"]), r["status"])
    Console().print(t)
    return 0


def _corpus_info(args, root) -> int:
    from ..data import corpus
    from ..data.stats import ngram_stats
    from ..data.text import Tokenizer, build_vocab, encode

    c = corpus.load(args.name, root, encoding=args.encoding)
    info = {"name": c.name, "source": c.source, "sha1": c.sha1, "characters": len(c.text), "prep": args.prep}
    for level in ("char", "word"):
        tok = Tokenizer(level, args.prep)
        text = tok.preprocess(c.text)
        vocab = build_vocab(text, tok)
        ids = encode(text, tok, vocab)
        info[level] = {
            "tokens": len(ids), "vocab": len(vocab),
            "top": vocab.token_freqs[: args.top],
            "bigrams": [[" ".join(g) if level == "word" else "".join(g), n]
                        for g, n in ngram_stats(ids, vocab.idx_to_token, 2, args.top).top],
            "trigrams": [[" ".join(g) if level == "word" else "".join(g), n]
                         for g, n in ngram_stats(ids, vocab.idx_to_token, 3, args.top).top],
        }
    if args.json:
        _out(info)
        return 0
    print(f"{_v(c.name)}: {len(c.text):,} characters, sha1 {c.sha1} ({_v(c.source)}), preprocessing {args.prep}")
    for level in ("char", "word"):
        d = info[level]
        print(f"  {level:4s}: {d['tokens']:,} tokens, vocabulary of {d['vocab']:,}")
        print("        top: " + ", ".join(f"{t!r} {n:,}" for t, n in d["top"]))
        print("        bigrams: " + ", ".join(f"{t!r} {n:,}" for t, n in d["bigrams"][:5]))
        print("        trigrams: " + ", ".join(f"{t!r} {n:,}" for t, n in d["trigrams"][:5]))
    return 0

