"""``lmcore inspect …`` (surprisal, neurons, attention, gradients) and ``lmcore corpora zipf``: the
look-inside views, printed or as JSON lines."""
from __future__ import annotations

import argparse
import math
import sys

from .output import Parser, _out, _read_text_file, _v
from ..errors import ConfigError

BUCKET_STYLES = ("green", "yellow", "red", "magenta")  # GLTR's colours: top 1, top 10, top 100, rest


def add_parser(sub) -> None:
    from ..models import showing

    ins = sub.add_parser("inspect", help="look inside a model: surprisal, neurons, attention, gradients")
    ins.set_defaults(handler=cmd_inspect)
    isub = ins.add_subparsers(dest="view", required=True, parser_class=Parser)

    def text_args(p):
        p.add_argument("model")
        p.add_argument("--text", help="the text to look at")
        p.add_argument("--file", help="a text file to look at")
        p.add_argument("--device", default="cpu")
        p.add_argument("--json", action="store_true")

    s = isub.add_parser("surprisal", help="every token of a text coloured by the model's probability of it")
    text_args(s)
    s.add_argument("--top", type=int, default=5, help="alternatives to list per token")

    n = isub.add_parser("neurons", help="units of a recurrent model that track properties of the text")
    text_args(n)
    n.add_argument("--layer", type=int, help="only this layer (0 is the first)")
    n.add_argument("--unit", type=int, help="the values of this unit at every token")
    n.add_argument("--value", default="c", help="with --unit: c, h or a gate (i f o; GRU: r z)")
    n.add_argument("--top", type=int, default=5)

    a = isub.add_parser("attention", help="a transformer head's attention over the last tokens of a text")
    text_args(a)
    a.add_argument("--layer", type=int, default=0)
    a.add_argument("--head", type=int, default=0)
    a.add_argument("--kind", choices=("cross", "encoder", "decoder"), default="cross",
                   help="encoder-decoders: the source-target alignment (cross, the default), or the encoder's "
                        "or the decoder's self-attention")
    a.add_argument("--target", help="encoder-decoders: the target to align (default: the model's reply)")

    g = isub.add_parser("gradients", help="gradient norms through time: RNN, GRU, LSTM")
    g.add_argument("--model", help="a saved recurrent model (default: fresh rnn, gru and lstm models)")
    g.add_argument("--arch", choices=showing("gradients"), help="one fresh model of this architecture")
    g.add_argument("--forget-bias", type=float, help="a fresh LSTM's forget-gate bias")
    g.add_argument("--length", type=int, default=100, help="steps back through time (T)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--device", default="cpu")
    g.add_argument("--json", action="store_true")


def add_zipf_parser(csub) -> None:
    from ..data.text import LEVELS, PREPS

    z = csub.add_parser("zipf", help="Zipf's law: n-gram frequency by rank, slope, coverage")
    z.add_argument("name", help="registry name or path of a text file or folder")
    z.add_argument("--tokens", choices=LEVELS, default="word")
    z.add_argument("--prep", choices=PREPS, default="d2l",
                   help="d2l (default): lower-case letters, as the chapter counts; raw: the text as it is")
    z.add_argument("--encoding")
    z.add_argument("--json", action="store_true", default=argparse.SUPPRESS)  # `corpora --json zipf` too


def _text(args) -> str:
    if args.file and args.text is not None:
        raise ConfigError("give --text or --file, not both")
    if args.file:
        return _read_text_file(args.file)
    if args.text is None:
        raise ConfigError("give the text to look at with --text T or --file F")
    return args.text


def _generator(args):
    from ..device import pick_device
    from ..generation.generator import Generator
    from ..store.model_store import Store

    return Generator.from_store(Store(args.home), args.model, device=str(pick_device(args.device)))


def _reader(args):
    """The model, its vocabulary and tokenizer, for a view that only reads the model (attention): a model
    that does not generate (bert) shows its attention too."""
    from types import SimpleNamespace

    import torch

    from ..device import pick_device
    from ..generation.generator import load_model
    from ..store.model_store import Store

    device = str(pick_device(args.device))
    model, vocab, tokenizer = load_model(Store(args.home), args.model, None, device)
    return SimpleNamespace(model=model, vocab=vocab, tokenizer=tokenizer, device=torch.device(device))


def cmd_inspect(args) -> int:
    rc = {"surprisal": _surprisal, "neurons": _neurons, "attention": _attention,
          "gradients": _gradients}[args.view](args)
    if not args.json:
        explained(args.view)
    return rc


def explained(view: str) -> None:
    """The view's line of what it shows and its chapter (lmcore.inspect.explanations), last, dim."""
    from rich.console import Console
    from rich.text import Text

    from ..inspect.explanations import explain

    e = explain(view)
    Console(highlight=False).print(Text(f"{e.line} · {e.chapter}", style="dim"))


# ---------------------------------------------------------------------------- surprisal
def _surprisal(args) -> int:
    from ..generation.scoring import BUCKETS, rank_bucket, score_text

    if not 0 <= args.top <= 100:
        raise ConfigError("--top must be between 0 and 100")
    text = _text(args)
    gen = _generator(args)
    sc = score_text(gen, text, top=max(1, args.top))
    counts = [0] * 4
    for t in sc.tokens:
        counts[rank_bucket(t.rank)] += 1
    summary = {"event": "summary", **sc.summary(), "buckets": dict(zip(BUCKETS, counts))}
    if args.json:
        for t in sc.tokens:
            _out({"token": t.text, "prob": t.prob, "rank": t.rank,
                  "alternatives": [[a, p] for a, p in t.alternatives[:args.top]]})
        _out(summary)
        return 0
    from rich.console import Console
    from rich.text import Text

    out = Text(_v(sc.lead), style="dim")  # the first token: read, not scored
    for t in sc.tokens:
        out.append(_v(t.text), style=BUCKET_STYLES[rank_bucket(t.rank)])
    console = Console(highlight=False)
    console.print(out)
    console.print(Text.assemble(*(((f"■ {b} {n:,}  ", s)) for b, n, s in zip(BUCKETS, counts, BUCKET_STYLES))))
    console.print(f"{summary['tokens']:,} tokens · loss {sc.loss:.3f} nats/token · perplexity {sc.ppl:.2f} · "
                  f"{sc.bits_per_char:.3f} bits/char")
    return 0


# ---------------------------------------------------------------------------- neurons
def _neurons(args) -> int:
    from ..inspect import find_units, trace_text

    text = _text(args)
    gen = _generator(args)
    trace = trace_text(gen, text)
    if trace.text_tokens > len(trace.tokens):
        print(f"note: the first {len(trace.tokens):,} of {trace.text_tokens:,} tokens", file=sys.stderr)
    if args.unit is not None:
        layer = args.layer or 0
        values = trace.unit(layer, args.value, args.unit)
        if args.json:
            for tok, v in zip(trace.tokens, values):
                _out({"token": tok, "value": float(v)})
            return 0
        from rich.console import Console
        from rich.text import Text

        scale = max(1e-9, float(abs(values).max()))
        out = Text()
        for tok, v in zip(trace.tokens, values):
            x = float(v) / scale  # blue below zero, red above, as in the paper's figures
            colour = f"rgb({int(255 * max(x, 0))},60,{int(255 * max(-x, 0))})"
            out.append(_v(tok), style=f"on {colour}")
        Console(highlight=False).print(out)
        print(f"layer {layer} {args.value} unit {args.unit}: min {values.min():.3f} max {values.max():.3f} "
              f"(red > 0, blue < 0)")
        return 0
    if not 1 <= args.top <= 100:
        raise ConfigError("--top must be between 1 and 100")
    ranked = find_units(trace, args.top, args.layer)
    if args.json:
        for prop, entries in ranked.items():
            for e in entries:
                _out({"property": prop, **e})
        return 0
    print(f"{len(trace.tokens):,} tokens; {len(trace.layers)} layer(s) of {trace.units} units "
          f"({'/'.join(trace.values)})")
    for prop, entries in ranked.items():
        if not entries:
            print(f"{prop}: the text does not vary in it")
            continue
        best = ", ".join(
            f"L{e['layer']} {e['value']}{e['unit']} "
            + (f"r={e['r']:+.2f}" if "r" in e else f"{e['score']:.0%} (<0.1 {e['left']:.0%}, >0.9 {e['right']:.0%})")
            for e in entries)
        print(f"{prop}: {best}")
    return 0


# ---------------------------------------------------------------------------- attention
def _attention(args) -> int:
    from ..inspect import attention_view

    text, reader = _text(args), _reader(args)
    if reader.model.family.reads_pairs:  # an encoder-decoder: the text is a source (lmcore/cli/alignment.py)
        from .alignment import show_alignment
        return show_alignment(args, _generator(args), text)
    view = attention_view(reader, text)
    m = view.matrix(args.layer, args.head)
    patterns = view.head_patterns()[args.layer][args.head]
    if args.json:
        _out({"event": "attention", "layer": args.layer, "head": args.head, "tokens": view.tokens,
              "weights": [[float(x) for x in row] for row in m]})
        for layer, heads in enumerate(view.head_patterns()):
            for head, ps in enumerate(heads):
                _out({"event": "head", "layer": layer, "head": head, "patterns": ps})
        return 0
    from rich.console import Console
    from rich.text import Text

    last = min(len(m), 48)
    sub = m[-last:, -last:]
    toks = view.tokens[-last:]
    console = Console(highlight=False)
    console.print(f"layer {args.layer} head {args.head}: the last {last} of {len(m)} tokens; rows are queries "
                  f"(the token that looks), columns keys; darker = more attention")
    for i in range(0, last, 2):  # two query rows per line: upper and lower half blocks
        line = Text(f"{_v(toks[i])!r:>6} ")
        for j in range(last):
            top = sub[i, j]
            bottom = sub[i + 1, j] if i + 1 < last else 0.0
            line.append("▀", style=f"{_shade(top)} on {_shade(bottom)}")
        console.print(line)
    console.print("mostly looks at: " + ", ".join(f"{p['pattern']} {p['mass']:.0%}" for p in patterns[:3]))
    return 0


def _shade(w: float) -> str:
    v = int(255 * (1 - math.sqrt(max(0.0, min(1.0, float(w))))))
    return f"rgb({v},{v},255)" if w > 0 else "rgb(255,255,255)"


# ---------------------------------------------------------------------------- gradients
def _gradients(args) -> int:
    from ..inspect.gradients import fresh_model, gradient_flow, gradient_flows, random_ids

    if args.model and (args.arch or args.forget_bias is not None):
        raise ConfigError("give --model or --arch, not both")
    source = f"random tokens, seed {args.seed}"
    if args.model:
        flows, source = [_model_flow(args)], "its validation text"
    elif args.arch:
        model = fresh_model(args.arch, args.forget_bias, seed=args.seed)
        flows = [gradient_flow(model, random_ids(model.config.vocab_size, args.length, args.seed))]
    else:
        if args.forget_bias is not None:
            raise ConfigError("--forget-bias goes with --arch lstm")
        flows = gradient_flows(args.length, args.seed)
    if args.json:
        for f in flows:
            _out(f.to_dict())
        return 0
    steps = [k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500) if k < args.length] + [args.length]
    print(f"gradient norm |d loss at step T / d h_(T-k)|, T = {args.length} ({source}); columns: k = steps "
          f"back through time")
    print(f"{'model':<24}" + "".join(f"{'k=' + str(k - 1):>10}" for k in steps))
    for f in flows:
        print(f"{_v(f.label)[:24]:<24}" + "".join(f"{f.norms[-k]:>10.1e}" for k in steps))
    return 0


def _model_flow(args):
    """A saved model's gradients over the start of its validation text (random tokens if that text is
    not here)."""
    import torch

    from ..device import pick_device
    from ..errors import LmError
    from ..generation.generator import load_model
    from ..inspect.gradients import gradient_flow, random_ids
    from ..generation.scoring import validation_text
    from ..store.model_store import Store

    store = Store(args.home)
    model, vocab, tok = load_model(store, args.model, None, str(pick_device(args.device)))
    try:
        tokens = tok.tokenize(validation_text(store, args.model, 40 * (args.length + 1)))[: args.length + 1]
        ids = torch.tensor([vocab.token_to_idx.get(t, 0) for t in tokens])
    except LmError:
        tokens = []
    if len(tokens) < args.length + 1:
        ids = random_ids(len(vocab), args.length, args.seed)
    return gradient_flow(model, ids.to(next(model.parameters()).device), args.model)


# ---------------------------------------------------------------------------- zipf
def cmd_zipf(args, root) -> int:
    from ..data import corpus
    from ..inspect import zipf_stats

    c = corpus.load(args.name, root, encoding=args.encoding)
    z = zipf_stats(c.text, args.tokens, args.prep)
    names = {1: "unigrams", 2: "bigrams", 3: "trigrams"}
    if args.json:
        for g in z.ngrams:
            _out({"corpus": c.name, "tokens": args.tokens, "prep": args.prep, **g.to_dict(points=40)})
        return 0
    print(f"{_v(c.name)}: {z.tokens:,} {args.tokens} tokens (prep {args.prep}); slope: of log frequency "
          f"against log rank (rank 1 = the most frequent)")
    for g in z.ngrams:
        cover = ", ".join(f"top {k:,} {v:.0%}" for k, v in g.coverage.items())
        slope = f"{g.slope:+.3f}" if math.isfinite(g.slope) else "n/a (too few)"
        print(f"  {names[g.n]:<9} {g.distinct:>8,} distinct · slope {slope} · {cover} · "
              f"{g.hapax:,} seen once ({g.hapax / max(1, g.distinct):.0%})")
        print("            " + ", ".join(f"{_v(t)!r} {n:,}" for t, n in g.top[:5]))
    explained("zipf")
    return 0

