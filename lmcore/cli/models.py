"""``lmcore models``: list (or rank by corpus), show, rename and delete saved models."""
from __future__ import annotations

from .output import Parser, _out, _v, print_named_table


def add_parser(sub) -> None:
    m = sub.add_parser("models", help="list, show, rename and delete saved models")
    m.set_defaults(handler=cmd_models)
    m.add_argument("--json", action="store_true", help="one JSON object per model")
    m.add_argument("--corpus", help="rank the models trained on this corpus by validation bits per character")
    m.add_argument("--by", choices=("bpc", "fill"), default="bpc",
                   help="with --corpus: rank by bits per character (default) or by top-1 fill accuracy")
    msub = m.add_subparsers(dest="action", parser_class=Parser)
    rm = msub.add_parser("rm", help="delete a model")
    rm.add_argument("name")
    rn = msub.add_parser("rename", help="rename a model")
    rn.add_argument("old")
    rn.add_argument("new")
    sh = msub.add_parser("show", help="a model's metadata")
    sh.add_argument("name")
    sh.add_argument("--json", action="store_true")
    sh.add_argument("--plot", metavar="FILE", help="also write its training curves as a picture: FILE.svg, or "
                    "FILE.png with matplotlib (pip install 'lmplay[plot]')")


def cmd_models(args) -> int:
    from ..store.model_store import Store

    store = Store(args.home)
    if args.action == "rm":
        store.delete(args.name)
        print(f"deleted model '{args.name}'")
        return 0
    if args.action == "rename":
        store.rename(args.old, args.new)
        print(f"renamed '{args.old}' to '{args.new}'")
        return 0
    if args.action == "show":
        plotted = None
        if args.plot is not None:
            from ..inspect import plot

            plot.check_target(args.plot)  # a wrong extension or no matplotlib: said before any reading
        ck = store.read(args.name)
        if args.plot is not None:
            plotted = plot.save(plot.checkpoint_figure(ck), args.plot).resolve()
        if args.json:
            d = {k: v for k, v in ck.to_json().items() if k != "vocab"}
            d["tokenizer"] = {k: v for k, v in d["tokenizer"].items() if k != "bpe"}  # bulky too: merges
            if plotted:
                d["plot"] = str(plotted)
            _out(d)
        else:
            for k, v in ck.summary().items():
                print(f"{k:14s} {_v(v)}")
            print(f"{'corpus source':14s} {_v(ck.corpus.source)} (sha1 {ck.corpus.sha1})")
            print(f"{'history':14s} {len(ck.history)} evaluations")
            if not ck.budget_reached():
                print(f"{'run':14s} interrupted: `lmcore train {args.name} --resume` continues it")
            if plotted:
                print(f"{'plot':14s} {_v(str(plotted))}")
        return 0
    if args.by != "bpc" and not args.corpus:
        from ..errors import ConfigError

        raise ConfigError(f"--by {args.by} ranks the models of one corpus: give --corpus NAME")
    entries = store.list()
    if args.corpus:
        return _leaderboard(args, store, entries)
    if args.json:
        for e in entries:
            _out(e.summary())
        return 0
    if not entries:
        print(f"no models yet in {_v(store.root)}: train one with `lmcore train NAME --arch lstm --corpus pythondocs`")
        return 0
    from rich.markup import escape

    rows = []
    for e in entries:
        if not e.ok:
            rows.append([escape(e.name), "[red]damaged[/red]", "", "", "", "", "", escape(_v(e.reason))])
            continue
        s = e.summary()
        arch = escape(e.checkpoint.model.family.describe(e.checkpoint.model))
        ppl = f"{s['best_val_ppl']:.3f}" if s["best_val_ppl"] else "-"
        if s["best_val_ppl"] and not e.checkpoint.model.family.next_token_loss:
            ppl += " mask"  # the masked tokens' perplexity (BERT), not the next token's
        rows.append([escape(e.name), arch, f"{s['params']:,}", escape(_v(s["corpus"])), str(s["step"]), ppl,
                     escape(_v(s["device"]).split(" (")[0]), escape(_v(s["updated"])[5:16].replace("T", " "))])
    from rich import box

    print_named_table(("name", "arch", "params", "corpus", "step", "val ppl", "device", "updated"), rows,
                       box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    return 0


def _masked(entries) -> set:
    """The architectures among ``entries`` whose perplexity is of masked tokens (BERT), not next tokens."""
    return {e.checkpoint.model.arch for e in entries if e.ok and not e.checkpoint.model.family.next_token_loss}


def _leaderboard(args, store, entries) -> int:
    from ..store.budget import human
    from ..store.model_store import leaderboard

    rows = leaderboard(entries, args.corpus, args.by)
    if args.json:
        for r in rows:
            _out(r)
        return 0
    if not rows:
        print(f"no models trained on '{_v(args.corpus)}' in {_v(store.root)}")
        return 0
    from rich.markup import escape

    from rich import box

    pairs = args.by != "fill" and any(r.get("best_val_bleu") is not None for r in rows)  # BLEU where fill would be
    cells = []
    for r in rows:
        bpc = f"{r['best_val_bpc']:.3f}" if r["best_val_bpc"] is not None else "-"
        ppl = f"{r['best_val_ppl']:.3f}" if r["best_val_ppl"] else "-"
        if r["best_val_ppl"] and r["best_val_bpc"] is None and r["arch"] in _masked(entries):
            ppl += " mask"
        mins, secs = divmod(int(r["elapsed"] or 0), 60)
        rate = f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] else "-"
        fill = f"{100 * r['best_val_fill_top1']:.1f}%" if r["best_val_fill_top1"] is not None else "-"
        if pairs:
            fill = f"{r['best_val_bleu']:.3f}" if r.get("best_val_bleu") is not None else "-"
        arch = r["arch"] + (" ⚠ reads ahead" if r["reads_ahead"] else "")
        cells.append([str(r["rank"]), escape(_v(r["name"])), arch, r["tokens"], f"{r['params']:,}", bpc, ppl,
                      fill, f"{mins}:{secs:02d}", human(r["tokens_seen"]), rate,
                      escape(_v(r["device"]).split(" (")[0])])
    by = ("top-1 fill accuracy (fill)" if args.by == "fill" else
          "validation BLEU, then exact match (then bpc)" if pairs else "validation bits per character (bpc)")
    print_named_table(("#", "name", "arch", "tokens", "params", "bpc", "ppl", "bleu" if pairs else "fill", "time",
                       "seen", "tok/s", "device"),
                      cells, name_col=1, title=f"trained on {escape(_v(args.corpus))}: best first by {by}; ppl is "
                      "per token; time: training m:ss; seen: tokens trained on", box=box.SIMPLE_HEAD,
                      padding=(0, 1), pad_edge=False, collapse_padding=True)
    if rows[0]["budget_warning"]:  # one corpus: one warning, wrapped at the terminal's width
        from rich.console import Console
        from rich.text import Text

        Console(highlight=False).print(Text(rows[0]["budget_warning"]))
    cheats = sorted({r["reads_ahead"] for r in rows if r["reads_ahead"]})
    for why in cheats:  # the lesson of the cheat: its perplexity near 1 measures nothing
        print(f"⚠ reads ahead: {_v(why)}")
    return 0

