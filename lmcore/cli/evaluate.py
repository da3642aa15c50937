"""``lmcore evaluate NAME [--corpus C | --file F] [--fill] [--json]``: a saved model's loss, perplexity and
bits per character on its validation split (or another text), its fill accuracy with ``--fill``, and its
task's metrics."""
from __future__ import annotations

from .output import _out, _v


def add_parser(sub) -> None:
    from ..generation.fill_accuracy import EVERY, LEFT, MAX_BLANKS, RIGHT

    e = sub.add_parser("evaluate", help="measure a saved model: loss, perplexity, bits per character, fill accuracy; "
                       "for pairs models BLEU and exact match, by source length too")
    e.set_defaults(handler=cmd_evaluate)
    e.add_argument("name")
    where = e.add_mutually_exclusive_group()
    where.add_argument("--corpus", help="the validation split of another corpus (registry name or path) "
                       "instead of the model's own")
    where.add_argument("--file", help="a whole text file instead of the model's validation split")
    e.add_argument("--fill", action="store_true",
                   help=f"also fill accuracy (top-1, top-5): every {EVERY}th token blanked, each alone, the "
                   f"model reading {LEFT} tokens before it and {RIGHT} after; the same blanks as training "
                   f"measures. Forward models score their top 100 candidates at each blank with the text after "
                   f"it (slower)")
    e.add_argument("--blanks", type=int, default=None,
                   help=f"with --fill: blanks measured, spread over the text (default {MAX_BLANKS}, as at each "
                   f"evaluation of training; 0: all of them)")
    e.add_argument("--device", default="cpu")
    e.add_argument("--threads", default=None, metavar="N|auto",
                   help="CPU threads (default auto: the cores other programs leave free)")
    e.add_argument("--json", action="store_true", help="one JSON object: the measures (a pairs model's with "
                   "target_loss, bleu, corpus_bleu, exact and buckets by source characters)")


def cmd_evaluate(args) -> int:
    from ..device import pick_device
    from ..generation.fill_accuracy import EVERY, MAX_BLANKS
    from ..training.evaluate_model import evaluate

    if args.blanks is not None and not args.fill:
        from ..errors import ConfigError

        raise ConfigError("--blanks counts the blanks of --fill: give --fill too (lmcore evaluate NAME --fill --blanks N)")
    blanks = MAX_BLANKS if args.blanks is None else args.blanks
    ev = evaluate(args.name, corpus=args.corpus, file=args.file, fill=args.fill, blanks=blanks,
                  home=args.home, device=str(pick_device(args.device)), threads=args.threads)
    if args.json:
        _out({"event": "evaluate", **ev.to_dict()})
        return 0
    bpc = f", {ev.bpc:.4f} bits per character" if ev.bpc is not None else ""
    rep = ev.pairs
    if ev.per_target:  # an encoder-decoder: its loss is the targets'
        print(f"{_v(ev.name)} on {_v(ev.text)} ({rep.pairs:,} pairs, {ev.tokens:,} target tokens): loss {ev.loss:.4f} per target token, "
              f"perplexity {ev.ppl:.3f}")
    else:
        print(f"{_v(ev.name)} on {_v(ev.text)} ({ev.tokens:,} tokens): loss {ev.loss:.4f}, perplexity {ev.ppl:.3f}{bpc}")
    if rep is not None and not ev.per_target and rep.target_loss is not None:
        print(f"on the targets of its {rep.pairs:,} pairs ({rep.target_tokens:,} tokens after the sources and their "
              f"tabs): loss "
              f"{rep.target_loss:.4f} per target token, perplexity {rep.target_ppl:.3f}")
    if rep is not None:
        from ..training.pairs_report import report_lines
        print("\n".join(report_lines(rep)))
    if ev.fill is not None:
        f = ev.fill
        print(f"fill ({f.method}, {f.blanks:,} blanks, every {EVERY}th token): top-1 {100 * f.top1:.1f}%, "
              f"top-5 {100 * f.top5:.1f}%")
    for k, v in ev.tasks.items():
        print(f"{_v(k)}: {_v(v)}")
    return 0
