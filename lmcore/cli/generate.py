"""``lmcore generate`` (stream text from a saved model) and ``lmcore compare`` (models side by side: one
prompt continued by each, or one text scored under each)."""
from __future__ import annotations

import sys
import threading

from .output import _out, _read_text_file, _v, print_named_table
from ..store.budget import budgets_differ, human, minutes


def add_parser(sub) -> None:
    from ..generation.sampling_settings import PRESETS as SAMPLING_PRESETS

    g = sub.add_parser("generate", help="stream text from a saved model")
    g.set_defaults(handler=cmd_generate)
    g.add_argument("name")
    g.add_argument("--prompt", default="", help="the text to continue ('-' reads standard input)")
    g.add_argument("--length", type=int, default=300, help="tokens to generate")
    g.add_argument("--sampling", choices=list(SAMPLING_PRESETS),
                   help="a preset for temperature, top-k, top-p and min-p (options given override it)")
    g.add_argument("--temperature", type=float, help="0 = greedy (default 0.8)")
    g.add_argument("--top-k", type=int, help="keep the k most likely tokens (default 0: off)")
    g.add_argument("--top-p", type=float, help="keep the smallest set reaching this probability (default 1: off)")
    g.add_argument("--min-p", type=float, help="drop tokens below this times the top one's probability (default 0)")
    g.add_argument("--repetition-penalty", type=float)
    g.add_argument("--beam", type=int, help="beam search with this many beams instead of sampling (deterministic)")
    g.add_argument("--length-penalty", type=float,
                   help="beam search ranks by log-probability / length ** this (default 1: mean per token)")
    g.add_argument("--seed", type=int)
    g.add_argument("--stop", action="append", help="stop once the output contains this text (repeatable)")
    g.add_argument("--unknown", choices=("unk", "drop"), default="unk",
                   help="prompt tokens not in the vocabulary: map to <unk> or drop")
    g.add_argument("--device", default="cpu")
    g.add_argument("--no-echo", action="store_true", help="do not print the prompt before the continuation")
    g.add_argument("--json", action="store_true", help="one JSON object per token")

    cp = sub.add_parser("compare", help="models side by side: one prompt continued by each, or one text scored")
    cp.set_defaults(handler=cmd_compare)
    cp.add_argument("names", nargs="+", metavar="MODEL")
    cp.add_argument("--prompt", default="", help="continue this prompt with every model (the same settings and "
                    "seed); models of one pairs corpus answer it as a source (greedy unless --temperature)")
    cp.add_argument("--file", help="score this text file under every model instead")
    cp.add_argument("--text", help="score this text under every model instead")
    cp.add_argument("--length", type=int, default=200)
    cp.add_argument("--sampling", choices=list(SAMPLING_PRESETS))
    cp.add_argument("--temperature", type=float)
    cp.add_argument("--beam", type=int)
    cp.add_argument("--seed", type=int, default=0)
    cp.add_argument("--device", default="cpu")
    cp.add_argument("--json", action="store_true")


def cmd_generate(args) -> int:
    from ..device import pick_device
    from ..generation.generator import Generator
    from ..generation.sampling import SamplingSettings, from_preset as sampling_preset, summary as sampling_summary
    from ..store.model_store import Store

    prompt = _stdin_text() if args.prompt == "-" else args.prompt
    given = dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, min_p=args.min_p,
                 repetition_penalty=args.repetition_penalty, max_tokens=args.length, seed=args.seed,
                 stop=args.stop or [], beam=args.beam, length_penalty=args.length_penalty)
    if args.sampling:
        settings = sampling_preset(args.sampling, **given).validate()
    else:
        settings = SamplingSettings(**{k: v for k, v in given.items() if v is not None}).validate()
    device = pick_device(args.device)
    gen = Generator.from_store(Store(args.home), args.name, device=str(device))
    if gen.model.family.reads_pairs:  # an encoder–decoder answers the prompt as a source
        return _reply(args, gen, prompt, settings)
    stream = gen.stream(prompt, settings, unknown=args.unknown)
    note = stream.info.message()
    if args.json:
        _out({"event": "settings", **settings.to_dict(), "summary": sampling_summary(settings.to_dict())})
        _out({"event": "prompt", "tokens": stream.info.tokens, "unknown": stream.info.unknown,
              "policy": stream.info.policy, "truncated": stream.info.truncated})
    elif note:
        print(f"note: {_v(note)}", file=sys.stderr)
    stop = threading.Event()
    stream.stop_event = stop
    if not args.json and not args.no_echo:
        sys.stdout.write(_v(getattr(stream, "prompt", prompt) or prompt))
    try:
        for tok in stream:
            if args.json:
                _out(tok.to_dict())
            else:
                sys.stdout.write(_v(tok.text))
                sys.stdout.flush()
    except KeyboardInterrupt:
        stop.set()
    if not args.json:
        sys.stdout.write("\n")
    if settings.beam and getattr(stream, "logprob", None) is not None:
        n = len(stream.tokens)
        if args.json:
            _out({"event": "beam", "tokens": n, "logprob": stream.logprob, "score": stream.score})
        else:
            print(f"beam {settings.beam}: log-probability {stream.logprob:.3f} over {n} tokens "
                  f"(score {stream.score:.4f})", file=sys.stderr)
    return 0


def _reply(args, gen, source: str, settings) -> int:
    """A pairs model's reply to ``source`` (greedy, sampled, or with --beam the beam search's, with its
    log-probability line), at most --length tokens: the reply's text (with --json: its tokens and their
    probabilities); a note says when the reply was cut, and by which limit."""
    from ..generation.seq2seq_decode import reply

    sampling = (args.temperature, args.top_k, args.top_p, args.min_p, args.repetition_penalty, args.seed,
                args.sampling)
    if args.beam:  # beam search (lmcore/generation/seq2seq_decode.py)
        from ..generation.seq2seq_decode import beam_reply
        r = beam_reply(gen.model, gen.vocab, gen.tokenizer, source, args.beam, args.length_penalty, args.unknown,
                       args.length)
    elif any(v is not None for v in sampling):  # a sampling control given: sample (else greedy)
        from ..generation.seq2seq_decode import sample_reply
        r = sample_reply(gen.model, gen.vocab, gen.tokenizer, source, settings, args.unknown)
    else:
        r = reply(gen.model, gen.vocab, gen.tokenizer, source, unknown=args.unknown, max_len=args.length)
    note = r.info.message()
    if args.json:
        _out({"event": "prompt", "tokens": r.info.tokens, "unknown": r.info.unknown, "policy": r.info.policy,
              "truncated": 0})
        for i, (t, p) in enumerate(zip(r.tokens, r.probs)):
            _out({"event": "token", "index": i, "text": t, "prob": round(p, 6)})
        if args.beam:  # before the reply, which stays the last line
            _out({"event": "beam", "tokens": r.scored, "logprob": r.logprob, "score": r.score(_penalty(args))})
        _out({"event": "reply", "text": r.text, "ended": r.ended, "cut_by": None if r.ended else _cut_by(gen, r)})
        return 0
    if note:
        print(f"note: {_v(note)}", file=sys.stderr)
    print(_v(r.text))
    if not r.ended:
        why = ("--length" if _cut_by(gen, r) == "length" else
               f"the model's limit of {gen.model.config.max_len} tokens")
        print(f"note: the reply was cut at {len(r.tokens)} tokens ({why})", file=sys.stderr)
    if args.beam:
        print(f"beam {args.beam}: log-probability {r.logprob:.3f} over {r.scored} tokens "
              f"(score {r.score(_penalty(args)):.4f})", file=sys.stderr)
    return 0


def _cut_by(gen, r) -> str:
    """Which limit cut a reply that did not end: "length" (--length, below the model's) or "model"."""
    return "length" if r.limit < int(gen.model.config.max_len) else "model"


def _penalty(args) -> float:
    return 1.0 if args.length_penalty is None else args.length_penalty


def _stdin_text(limit: int = 8 * 2 ** 20) -> str:
    """Standard input as text: at most ``limit`` bytes (an endless pipe is refused, not read into memory),
    UTF-8 whatever the locale, undecodable bytes shown as U+FFFD (as ``--file`` texts are)."""
    from ..errors import ConfigError

    raw = getattr(sys.stdin, "buffer", None)
    data = raw.read(limit + 1) if raw is not None else sys.stdin.read(limit + 1).encode("utf-8", "surrogatepass")
    if len(data) > limit:
        raise ConfigError(f"standard input is over {limit >> 20} MB: give a shorter prompt")
    return data.decode("utf-8", errors="replace")



def cmd_compare(args) -> int:
    from ..device import pick_device
    from ..errors import ConfigError
    from ..generation.generator import Generator
    from ..generation.scoring import score_text
    from ..generation.side_by_side import answers_sources, side_by_side_problem
    from ..store.model_store import Store

    if len(set(args.names)) < 2:
        raise ConfigError("compare needs two different models or more: lmcore compare A B [C …]")
    if args.file and args.text is not None:
        raise ConfigError("give --text or --file, not both")
    if (args.file or args.text is not None) and args.prompt:
        raise ConfigError("--prompt continues a prompt, --text/--file scores a text: give one of them")
    device = str(pick_device(args.device))
    store = Store(args.home)
    cks = {name: store.read(name) for name in dict.fromkeys(args.names)}
    problem = side_by_side_problem(cks)  # refused before anything is printed
    if problem:
        raise ConfigError(problem)
    gens = {name: Generator.from_store(store, name, device=device) for name in cks}
    answering = any(answers_sources(ck) for ck in cks.values())
    budgets = _budgets(store, gens)
    if args.file or args.text is not None:
        for name, gen in gens.items():
            if gen.model.family.reads_pairs:
                raise ConfigError(f"model '{name}' answers a source (an encoder-decoder): it scores no text; "
                                  f"give every model the same source with --prompt SOURCE")
        text = args.text if args.text is not None else _read_text_file(args.file)
        rc = _compare_text(args, gens, text, score_text, budgets)
    elif answering:
        rc = _compare_sources(args, gens)
    else:
        rc = _compare_prompt(args, gens, score_text, budgets)
    if args.json:  # last: each model's budget and whether they differ
        _out({"event": "budgets", "models": {n: b.to_dict() for n, b in budgets.items()},
              "warning": budgets_differ(list(budgets.values()))})
    return rc


def _budgets(store, gens) -> dict:
    from ..store.budget import model_budget

    return {name: model_budget(store.read(name), name) for name in gens}


def _compare_sources(args, gens) -> int:
    """Models of one pairs corpus answer the same source (``--prompt``), one after the other: an
    encoder-decoder replies, a decoder-only model continues the source and a tab up to the newline. Greedy
    unless a sampling control is given (as lmcore generate answers a source)."""
    from ..errors import ConfigError
    from ..generation.sampling import SamplingSettings, from_preset, summary
    from ..generation.side_by_side import answer_stream

    if not args.prompt.strip():
        raise ConfigError("these models answer a source: give every model the same one with --prompt SOURCE")
    temperature = args.temperature if args.temperature is not None or args.sampling else 0.0
    given = dict(temperature=temperature, max_tokens=args.length, seed=args.seed, beam=args.beam)
    settings = (from_preset(args.sampling, **given) if args.sampling
                else SamplingSettings(**{k: v for k, v in given.items() if v is not None})).validate()
    streams = {name: answer_stream(gen, args.prompt, SamplingSettings(**settings.to_dict()))
               for name, gen in gens.items()}  # every source checked before the first reply
    if args.json:
        _out({"event": "settings", **settings.to_dict(), "summary": summary(settings.to_dict())})
    else:
        print(f"source: {_v(args.prompt)!s}\nsettings: {summary(settings.to_dict())} (the same for every model)")
    for name, stream in streams.items():
        gen = gens[name]
        if args.json:
            _out({"event": "model", "model": name, "arch": gen.model.config.arch, "tokens": gen.tokenizer.level,
                  "answers": True, "unknown": stream.info.unknown})
        else:
            print(f"\n── {_v(name)} ({gen.model.config.arch}, {gen.tokenizer.level} tokens) · its reply ──")
        pieces = _echo_stream(args, name, stream)
        ended = bool(getattr(stream, "ended", False))
        if args.json:
            _out({"event": "done", "model": name, "text": "".join(pieces), "ended": ended})
        else:
            sys.stdout.write("\n" if ended else f"\n(cut at {len(pieces)} tokens: --length or the model's limit)\n")
    return 0


def _echo_stream(args, name: str, stream) -> list[str]:
    """A model's tokens as they come: a JSON line each (--json), else their text (control characters made
    visible); the pieces of text, in order."""
    pieces = []
    for tok in stream:
        pieces.append(tok.text)
        if args.json:
            _out({"model": name, **tok.to_dict()})
        else:
            sys.stdout.write(_v(tok.text))
            sys.stdout.flush()
    return pieces


def _compare_prompt(args, gens, score_text, budgets) -> int:
    from ..errors import ConfigError
    from ..generation.sampling import SamplingSettings, from_preset, summary

    given = dict(temperature=args.temperature, max_tokens=args.length, seed=args.seed, beam=args.beam)
    settings = (from_preset(args.sampling, **given) if args.sampling
                else SamplingSettings(**{k: v for k, v in given.items() if v is not None})).validate()
    if args.json:
        _out({"event": "settings", **settings.to_dict(), "summary": summary(settings.to_dict())})
    else:
        print(f"prompt: {_v(args.prompt)!s}\nsettings: {summary(settings.to_dict())} (the same for every model)")
        if warning := budgets_differ(list(budgets.values())):
            print(warning)
    for name, gen in gens.items():
        try:
            prompt_ppl = score_text(gen, args.prompt).ppl
        except ConfigError:
            prompt_ppl = None  # fewer than two tokens: nothing to score
        cfg = gen.model.config
        if args.json:
            _out({"event": "model", "model": name, "arch": cfg.arch, "tokens": gen.tokenizer.level,
                  "prompt_ppl": prompt_ppl, "budget": budgets[name].to_dict()})
        else:
            ppl = f"perplexity on the prompt {prompt_ppl:.2f}" if prompt_ppl is not None else "prompt too short to score"
            print(f"\n── {_v(name)} ({cfg.arch}, {gen.tokenizer.level} tokens) · {ppl} · "
                  f"{budgets[name].describe()} ──")
            sys.stdout.write(_v(args.prompt))
        pieces = _echo_stream(args, name, gen.stream(args.prompt, SamplingSettings(**settings.to_dict())))
        if args.json:
            _out({"event": "done", "model": name, "text": "".join(pieces)})
        else:
            sys.stdout.write("\n")
    return 0


def _compare_text(args, gens, text: str, score_text, budgets) -> int:
    scores = {name: score_text(gen, text) for name, gen in gens.items()}
    if args.json:
        for name, sc in scores.items():
            for t in sc.tokens:
                _out({"model": name, **t.to_dict()})
            _out({"event": "summary", "model": name, **sc.summary(), "budget": budgets[name].to_dict()})
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    console = Console()
    print_named_table(("model", "tokens", "loss/token", "ppl/token", "bits/char", "trained", "seen", "params"),
                       [[escape(_v(name)), f"{len(sc.tokens):,}", f"{sc.loss:.3f}", f"{sc.ppl:.2f}",
                         f"{sc.bits_per_char:.3f}", minutes(budgets[name].seconds), human(budgets[name].tokens),
                         human(budgets[name].params)]
                        for name, sc in sorted(scores.items(), key=lambda kv: kv[1].bits_per_char)],
                       console=console, title="the same text under each model (trained: time; seen: tokens)")
    if warning := budgets_differ(list(budgets.values())):
        console.print(Text(warning))
    (a, sa), (b, sb) = list(scores.items())[:2]
    if [x.text for x in sa.tokens] == [x.text for x in sb.tokens]:
        out = Text(_v(sa.lead))  # the first token: read, not scored
        for x, y in zip(sa.tokens, sb.tokens):
            diff = x.logprob - y.logprob  # > 0: the first model found this token more likely
            style = "green" if diff > 0.5 else "magenta" if diff < -0.5 else ""
            out.append(_v(x.text), style=style)
        console.print(Text.assemble("green: ", (a, "green"), " found the token more likely, magenta: ",
                                    (b, "magenta"), " did (by more than 0.5 nats)"))
        console.print(out)
    return 0

