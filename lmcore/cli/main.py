"""The ``lmcore`` command line: corpora, models, train, generate, compare, inspect, export, bench."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from .. import __version__
from .output import _out, _read_text_file, _v


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return str(n)


# ---------------------------------------------------------------------------- corpora
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
                     "url": e.url, "sha1": e.sha1, "licence": e.licence})
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


# ---------------------------------------------------------------------------- models
def _print_named_table(columns, rows, name_col: int = 0, console=None, **table_kw) -> None:
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
        arch = s["arch"] + (f"/{s['impl']}" if s["arch"] in ("rnn", "gru", "lstm") else "")
        ppl = f"{s['best_val_ppl']:.3f}" if s["best_val_ppl"] else "-"
        rows.append([escape(e.name), arch, f"{s['params']:,}", escape(_v(s["corpus"])), str(s["step"]), ppl,
                     escape(_v(s["device"]).split(" (")[0]), escape(_v(s["updated"])[5:16].replace("T", " "))])
    from rich import box

    _print_named_table(("name", "arch", "params", "corpus", "step", "val ppl", "device", "updated"), rows,
                       box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True)
    return 0


def _leaderboard(args, store, entries) -> int:
    from ..store.model_store import leaderboard

    rows = leaderboard(entries, args.corpus)
    if args.json:
        for r in rows:
            _out(r)
        return 0
    if not rows:
        print(f"no models trained on '{_v(args.corpus)}' in {_v(store.root)}")
        return 0
    from rich.markup import escape

    from rich import box

    cells = []
    for r in rows:
        bpc = f"{r['best_val_bpc']:.3f}" if r["best_val_bpc"] is not None else "-"
        ppl = f"{r['best_val_ppl']:.3f}" if r["best_val_ppl"] else "-"
        mins, secs = divmod(int(r["elapsed"] or 0), 60)
        rate = f"{r['tokens_per_s']:,.0f}" if r["tokens_per_s"] else "-"
        cells.append([str(r["rank"]), escape(_v(r["name"])), r["arch"], r["tokens"], f"{r['params']:,}", bpc, ppl,
                      f"{mins}:{secs:02d}", rate, escape(_v(r["device"]).split(" (")[0])])
    _print_named_table(("#", "name", "arch", "tokens", "params", "bpc", "ppl", "time", "tok/s", "device"), cells,
                       name_col=1, title=f"trained on {escape(_v(args.corpus))}: best first by validation bits per "
                       "character (bpc); ppl is per token", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False,
                       collapse_padding=True)
    return 0


# ---------------------------------------------------------------------------- train
MODEL_OPTIONS = ("arch", "preset", "impl", "layers", "hidden", "embed", "input", "heads", "context", "pos",
                 "dropout", "bidirectional", "order", "epsilon", "prep", "tokens", "vocab_size")


def _train_config(args):
    from ..training.config import TrainConfig

    return TrainConfig(steps=args.steps, minutes=args.minutes, batch_size=args.batch, seq_len=args.seq_len,
                       lr=args.lr, optimizer=args.optimizer, clip=args.clip, warmup=args.warmup,
                       eval_every=args.eval_every, sampling=args.sampling, device=args.device,
                       compile=args.compile or None, seed=args.seed, eval_tokens=args.eval_tokens,
                       weight_decay=args.weight_decay)


def _tokenizer(args):
    from ..data.text import Tokenizer

    extra = {} if args.vocab_size is None else {"vocab_size": args.vocab_size}
    return Tokenizer(args.tokens or "char", args.prep or "raw", **extra)


def cmd_train(args) -> int:
    from ..errors import Cancelled, ConfigError, LmError
    from ..events import DoneEvent, FailedEvent
    from ..models import preset_config
    from ..store.model_store import Store
    from ..training.trainer import Trainer, stopped_before_start

    from ..training import distributed

    ranks = distributed.current()  # under torchrun only process 0 reports; the others print their errors
    if ranks.main:
        render = _JsonRender(args.name) if args.json else _HumanRender(args.name)
    else:
        render = _OtherRank(ranks.rank)
    stop = threading.Event()
    bar = _PrepareProgress(ranks.main and not args.json)
    try:
        store = Store(args.home)
        cfg = _train_config(args).validate()
        trainer = Trainer(store, args.name, render, stop, threads=args.threads)
        with _StopSignals(stop, args.json, echo=ranks.main):
            if args.resume:
                fixed = [f"--{k.replace('_', '-')}" for k in MODEL_OPTIONS if getattr(args, k) not in (None, False)]
                if fixed:
                    raise ConfigError(f"{', '.join(fixed)} cannot change a saved model: --resume continues "
                                      f"'{args.name}' as it was built (train a new model to change it)")
                trainer.prepare(train=cfg, resume=True, corpus=args.corpus, encoding=args.encoding, progress=bar)
                bar.close()
            else:
                if not args.corpus:
                    raise ConfigError("a new model needs --corpus NAME|PATH (e.g. --corpus pythondocs)")
                mc = preset_config(args.arch or "lstm", args.preset or "small", impl=args.impl,
                                   num_layers=args.layers, hidden=args.hidden, embed=args.embed, heads=args.heads,
                                   context=args.context, dropout=args.dropout, order=args.order,
                                   epsilon=args.epsilon, pos=args.pos, input=args.input,
                                   bidirectional=args.bidirectional or None)
                trainer.prepare(model=mc, preset=args.preset or "small", train=cfg, corpus=args.corpus,
                                tokenizer=_tokenizer(args), encoding=args.encoding, progress=bar)
            bar.close()
            result = trainer.run()
    except Cancelled:
        result = stopped_before_start(render)
    except LmError as exc:
        result = FailedEvent(str(exc), 0)
        render(result)
        if isinstance(exc, distributed.PeerFailed) and not ranks.main:
            render.quiet = True  # process 0 says why
    finally:
        bar.close()
        render.close()
    if isinstance(result, DoneEvent):
        return render.summary(result, store)
    render.summary(result, None)
    return 1


def cmd_train_ranks(args) -> int:
    """``train``, also as one of several processes started by torchrun (DistributedDataParallel): the
    process group starts first and ends last; without torchrun this is ``cmd_train``."""
    from ..training import distributed

    distributed.setup()
    try:
        return cmd_train(args)
    finally:
        distributed.teardown()


class _OtherRank:
    """The renderer of processes other than rank 0 under torchrun: silent, but for this process's own
    error (one line on standard error)."""

    def __init__(self, rank: int):
        self.rank, self.quiet = rank, False

    def __call__(self, ev):
        pass

    def close(self):
        pass

    def summary(self, result, store) -> int:
        if result.kind == "done":
            return 0
        if not self.quiet:
            print(f"error (process {self.rank}): {_v(result.message)}", file=sys.stderr)
        return 1


class _PrepareProgress:
    """A progress bar on stderr while a corpus downloads or is tokenized (nothing when it is cached)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.task, self.what = enabled and sys.stderr.isatty(), None, None, None

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                                TimeRemainingColumn(), transient=True, console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task(what, total=None)
        self.bar.update(self.task, description=what, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class _StopSignals:
    """Ctrl+C, SIGTERM and SIGHUP stop training after the current step and save; a second one aborts
    at once (the last saved checkpoint stays: saves are atomic)."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self, stop: threading.Event, quiet: bool, echo: bool = True):
        self.stop, self.quiet, self.old, self.echo = stop, quiet, {}, echo

    def _handle(self, signum, frame):
        if self.stop.is_set():
            os.write(2, b"\naborted: the last saved checkpoint is kept\n")
            os._exit(130)
        self.stop.set()
        name = signal.Signals(signum).name
        if self.echo:  # under torchrun: process 0 only
            os.write(2, f"\n{name}: stopping after this step and saving (again to abort)\n".encode())

    def __enter__(self):
        for n in self.SIGNALS:
            if hasattr(signal, n):
                self.old[n] = signal.signal(getattr(signal, n), self._handle)
        return self

    def __exit__(self, *exc):
        for n, h in self.old.items():
            signal.signal(getattr(signal, n), h)


class _JsonRender:
    def __init__(self, name: str):
        self.name = name

    def __call__(self, ev):
        _out(ev.to_dict())

    def close(self):
        pass

    def summary(self, result, store) -> int:
        ok = result.kind == "done" and result.saved  # stopped before the first step: nothing trained or saved
        d = {"event": "summary", "name": self.name, "ok": ok, "step": result.step}
        if result.kind == "done":
            d.update(reason=result.reason, saved=result.saved, steps_trained=result.steps_trained,
                     best_val_loss=result.best_val_loss, best_val_ppl=result.best_val_ppl,
                     elapsed=round(result.elapsed, 3), tokens_per_s=round(result.tokens_per_s, 1))
        else:
            d["error"] = result.message
        _out(d)
        return 0 if ok else 1


class _HumanRender:
    def __init__(self, name: str):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=False)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
                                 disable=not self.console.is_terminal)
        self.task = None
        self.name = name

    def __call__(self, ev):
        from rich.markup import escape

        p = self.progress
        if ev.kind == "start":
            p.start()
            self.console.print(f"training [bold]{ev.name}[/]: {ev.arch}"
                               f"{'/' + ev.impl if ev.arch in ('rnn', 'gru', 'lstm') else ''}, {ev.params:,} parameters, "
                               f"vocabulary {ev.vocab_size}, {ev.train_tokens:,} training / {ev.val_tokens:,} "
                               f"validation tokens, on {escape(_v(ev.device))}" +
                               (f", continuing at step {ev.step:,}" if ev.step else "") +
                               (f"; {escape(ev.threads)}" if ev.threads else ""))
            total = ev.steps or (ev.minutes * 60 if ev.minutes else None)
            self.by_time = ev.steps is None
            self.t0 = 0.0
            self.task = p.add_task(self.name, total=total, completed=0 if self.by_time else ev.step, info="")
        elif ev.kind == "step":
            eta = f"ETA {int(ev.eta) // 60}:{int(ev.eta) % 60:02d}" if ev.eta is not None else ""
            info = (f"step {ev.step:,}  loss {ev.loss:.4f}  ppl {ev.ppl:.3f}  {ev.tokens_per_s:,.0f} tok/s  "
                    f"lr {ev.lr:.2e}  {eta}")
            p.update(self.task, completed=ev.elapsed if self.by_time else ev.step, info=info)
            if not self.console.is_terminal and ev.step % 100 == 0:
                self.console.print(info)
        elif ev.kind == "eval":
            star = " (best, saved)" if ev.improved else ""
            self.console.print(f"step {ev.step:,}: validation loss {ev.val_loss:.4f}, perplexity {ev.val_ppl:.3f}{star}")
            if ev.sample:
                self.console.print("  sample: " + repr(ev.sample[:160]), markup=False, highlight=False)
                self.console.print("  greedy: " + repr(ev.greedy[:160]), markup=False, highlight=False)
        elif ev.kind == "failed":
            self.progress.stop()

    def close(self):
        self.progress.stop()

    def summary(self, result, store) -> int:
        if result.kind != "done":
            print(f"error: {_v(result.message)}", file=sys.stderr)
            return 1
        how = {"finished": "finished", "time": "time budget reached", "stopped": "stopped"}[result.reason]
        if not result.saved:  # a failure for a script: this run did nothing
            print(f"{how} before the first step: nothing was trained or saved", file=sys.stderr)
            return 1
        print(f"{how} at step {result.step:,} ({result.steps_trained:,} steps this run): best validation perplexity "
              f"{result.best_val_ppl:.3f} (loss {result.best_val_loss:.4f}), {result.tokens_per_s:,.0f} tokens/s.")
        print(f"saved as '{self.name}' in {_v(store.root)}. Generate: lmcore generate {self.name} --prompt \"…\"")
        if result.reason == "stopped":
            print(f"continue with: lmcore train {self.name} --resume")
        elif result.steps_trained > 0 and store.check(self.name).ok and store.read(self.name).model_trainable:
            print(f"train more with: lmcore train {self.name} --resume --steps N (or --minutes M)")
        return 0


# ---------------------------------------------------------------------------- generate
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
        sys.stdout.write(_v(prompt))
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


def _stdin_text(limit: int = 8 * 2 ** 20) -> str:
    """Standard input as text: at most ``limit`` bytes (an endless pipe is refused, not read into memory),
    UTF-8 whatever the locale, undecodable bytes shown as U+FFFD (as ``--file`` texts are)."""
    from ..errors import ConfigError

    raw = getattr(sys.stdin, "buffer", None)
    data = raw.read(limit + 1) if raw is not None else sys.stdin.read(limit + 1).encode("utf-8", "surrogatepass")
    if len(data) > limit:
        raise ConfigError(f"standard input is over {limit >> 20} MB: give a shorter prompt")
    return data.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------- compare
def cmd_compare(args) -> int:
    from ..device import pick_device
    from ..errors import ConfigError
    from ..generation.generator import Generator
    from ..generation.scoring import score_text
    from ..store.model_store import Store

    if len(set(args.names)) < 2:
        raise ConfigError("compare needs two different models or more: lmcore compare A B [C …]")
    if args.file and args.text is not None:
        raise ConfigError("give --text or --file, not both")
    if (args.file or args.text is not None) and args.prompt:
        raise ConfigError("--prompt continues a prompt, --text/--file scores a text: give one of them")
    device = str(pick_device(args.device))
    store = Store(args.home)
    gens = {name: Generator.from_store(store, name, device=device) for name in dict.fromkeys(args.names)}
    if args.file or args.text is not None:
        text = args.text if args.text is not None else _read_text_file(args.file)
        return _compare_text(args, gens, text, score_text)
    return _compare_prompt(args, gens, score_text)


def _compare_prompt(args, gens, score_text) -> int:
    from ..errors import ConfigError
    from ..generation.sampling import SamplingSettings, from_preset, summary

    given = dict(temperature=args.temperature, max_tokens=args.length, seed=args.seed, beam=args.beam)
    settings = (from_preset(args.sampling, **given) if args.sampling
                else SamplingSettings(**{k: v for k, v in given.items() if v is not None})).validate()
    if args.json:
        _out({"event": "settings", **settings.to_dict(), "summary": summary(settings.to_dict())})
    else:
        print(f"prompt: {_v(args.prompt)!s}\nsettings: {summary(settings.to_dict())} (the same for every model)")
    for name, gen in gens.items():
        try:
            prompt_ppl = score_text(gen, args.prompt).ppl
        except ConfigError:
            prompt_ppl = None  # fewer than two tokens: nothing to score
        cfg = gen.model.config
        if args.json:
            _out({"event": "model", "model": name, "arch": cfg.arch, "tokens": gen.tokenizer.level,
                  "prompt_ppl": prompt_ppl})
        else:
            ppl = f"perplexity on the prompt {prompt_ppl:.2f}" if prompt_ppl is not None else "prompt too short to score"
            print(f"\n── {_v(name)} ({cfg.arch}, {gen.tokenizer.level} tokens) · {ppl} ──")
            sys.stdout.write(_v(args.prompt))
        pieces = []
        for tok in gen.stream(args.prompt, SamplingSettings(**settings.to_dict())):
            pieces.append(tok.text)
            if args.json:
                _out({"model": name, **tok.to_dict()})
            else:
                sys.stdout.write(_v(tok.text))
                sys.stdout.flush()
        if args.json:
            _out({"event": "done", "model": name, "text": "".join(pieces)})
        else:
            sys.stdout.write("\n")
    return 0


def _compare_text(args, gens, text: str, score_text) -> int:
    scores = {name: score_text(gen, text) for name, gen in gens.items()}
    if args.json:
        for name, sc in scores.items():
            for t in sc.tokens:
                _out({"model": name, **t.to_dict()})
            _out({"event": "summary", "model": name, **sc.summary()})
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    console = Console()
    _print_named_table(("model", "tokens", "loss/token", "ppl/token", "bits/char"),
                       [[escape(_v(name)), f"{len(sc.tokens):,}", f"{sc.loss:.3f}", f"{sc.ppl:.2f}",
                         f"{sc.bits_per_char:.3f}"]
                        for name, sc in sorted(scores.items(), key=lambda kv: kv[1].bits_per_char)],
                       console=console, title="the same text under each model")
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


# ---------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    from ..models import ARCHS, IMPLS, PRESET_NAMES
    from ..generation.sampling_settings import PRESETS as SAMPLING_PRESETS
    from ..data.bpe import DEFAULT_VOCAB_SIZE
    from ..data.text import LEVELS, PREPS
    from ..training.config import SAMPLINGS

    p = _Parser(prog="lmcore", description="Train small language models and generate text, headless.")
    p.add_argument("--version", action="version", version=f"lmplay {__version__}")
    p.add_argument("--home", help="data folder (default: $LMPLAY_HOME or the user data dir)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("corpora", help="list, fetch and inspect corpora")
    c.add_argument("--json", action="store_true", help="one JSON object per corpus")
    csub = c.add_subparsers(dest="action", parser_class=_Parser)
    f = csub.add_parser("fetch", help="download a corpus and verify its sha1")
    f.add_argument("name")
    f.add_argument("--json", action="store_true")
    i = csub.add_parser("info", help="characters, tokens, vocabulary sizes and top n-grams")
    i.add_argument("name", help="registry name or path of a text file or folder")
    i.add_argument("--prep", choices=PREPS, default="raw")
    i.add_argument("--encoding", help="text encoding of a local file (default utf-8)")
    i.add_argument("--top", type=int, default=10)
    i.add_argument("--json", action="store_true", default=argparse.SUPPRESS)  # `corpora --json info` too
    from .inspect import add_parsers as add_inspect_parsers, add_zipf_parser

    add_zipf_parser(csub, _Parser)

    m = sub.add_parser("models", help="list, show, rename and delete saved models")
    m.add_argument("--json", action="store_true", help="one JSON object per model")
    m.add_argument("--corpus", help="rank the models trained on this corpus by validation bits per character")
    msub = m.add_subparsers(dest="action", parser_class=_Parser)
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

    t = sub.add_parser("train", help="train a new model or continue one (--resume)")
    t.add_argument("name", help="model name (letters, digits, . _ -)")
    t.add_argument("--arch", choices=ARCHS)
    t.add_argument("--impl", choices=IMPLS, help="recurrent models: fused (torch.nn, cuDNN) or scratch")
    t.add_argument("--preset", choices=PRESET_NAMES)
    t.add_argument("--layers", type=int)
    t.add_argument("--hidden", type=int, help="recurrent state size / transformer width")
    t.add_argument("--embed", type=int, help="embedding size of recurrent models")
    t.add_argument("--input", choices=("embed", "onehot"))
    t.add_argument("--heads", type=int)
    t.add_argument("--context", type=int, help="transformer context length")
    t.add_argument("--pos", choices=("learned", "rotary"))
    t.add_argument("--dropout", type=float)
    t.add_argument("--bidirectional", action="store_true", help="(cannot generate: for the chapters' lesson)")
    t.add_argument("--order", type=int, help="n-gram order")
    t.add_argument("--epsilon", type=float, help="n-gram Laplace smoothing")
    t.add_argument("--corpus", help="registry name or path of a text file or folder")
    t.add_argument("--encoding", help="text encoding of a local corpus (default utf-8)")
    t.add_argument("--prep", choices=PREPS)
    t.add_argument("--tokens", choices=LEVELS, help="char, word or bpe (byte-level subwords learnt from the text)")
    t.add_argument("--vocab-size", type=int, help=f"tokens of a bpe vocabulary (default {DEFAULT_VOCAB_SIZE})")
    t.add_argument("--sampling", choices=SAMPLINGS)
    t.add_argument("--steps", type=int, help="steps to train (with --resume: steps more)")
    t.add_argument("--minutes", type=float, help="time budget (with --resume: minutes more)")
    t.add_argument("--batch", type=int)
    t.add_argument("--seq-len", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--optimizer", choices=("adamw", "sgd"))
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--clip", type=float, help="gradient-norm clipping (0: off)")
    t.add_argument("--warmup", type=int)
    t.add_argument("--eval-every", type=int)
    t.add_argument("--eval-tokens", type=int, help="validate on at most this many tokens (default: the whole validation split, at most 1,000,000)")
    t.add_argument("--device", default=None, help="auto (default), cpu, cuda or mps")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--threads", default=None, metavar="N|auto",
                   help="CPU threads (default auto: the cores other programs leave free, looked at again while training)")
    t.add_argument("--seed", type=int)
    t.add_argument("--resume", action="store_true",
                   help="continue a saved model: its interrupted run, or --steps/--minutes more")
    t.add_argument("--json", action="store_true", help="one JSON object per event")

    g = sub.add_parser("generate", help="stream text from a saved model")
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
    cp.add_argument("names", nargs="+", metavar="MODEL")
    cp.add_argument("--prompt", default="", help="continue this prompt with every model (the same settings and seed)")
    cp.add_argument("--file", help="score this text file under every model instead")
    cp.add_argument("--text", help="score this text under every model instead")
    cp.add_argument("--length", type=int, default=200)
    cp.add_argument("--sampling", choices=list(SAMPLING_PRESETS))
    cp.add_argument("--temperature", type=float)
    cp.add_argument("--beam", type=int)
    cp.add_argument("--seed", type=int, default=0)
    cp.add_argument("--device", default="cpu")
    cp.add_argument("--json", action="store_true")

    add_inspect_parsers(sub, _Parser)

    ex = sub.add_parser("export", help="a saved model for other tools: ONNX (every family) or Hugging Face (transformer)")
    ex.add_argument("name")
    ex.add_argument("--format", required=True, choices=("onnx", "hf"),
                    help="onnx: a step model for onnxruntime; hf: a transformers model (transformer only)")
    ex.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder to write")
    ex.add_argument("--json", action="store_true", help="one JSON object saying what was written")

    b = sub.add_parser("bench", help="speed and quality against plain PyTorch references")
    b.add_argument("--device", default="cpu")
    b.add_argument("--arch", action="append", help="limit to these architectures (repeatable)")
    b.add_argument("--quick", action="store_true", help="a short run (under a minute on a 2-core CPU)")
    b.add_argument("--corpus", default="timemachine")
    b.add_argument("--shared", action="store_true",
                   help="only the rows of a shared CPU: two trainings at once, one beside a busy core")
    b.add_argument("--startup", action="store_true",
                   help="instead: how long lmcore's reading commands and lmplay (to its picker) take to start")
    b.add_argument("--runs", type=int, default=7, help="with --startup: runs of each command (the median is shown)")
    b.add_argument("--json", action="store_true")
    return p


# commands that only read files and print them: they start without torch or numpy (lmcore bench --startup)
_READ_ONLY = {("corpora", None), ("corpora", "fetch"), ("models", None), ("models", "show"), ("models", "rm"),
              ("models", "rename")}


def main(argv=None) -> int:
    from ..errors import LmError

    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"corpora": cmd_corpora, "models": cmd_models, "train": cmd_train_ranks, "generate": cmd_generate,
                "compare": cmd_compare, "bench": _cmd_bench, "inspect": _cmd_inspect,
                "export": _cmd_export}
    if (args.command, getattr(args, "action", None)) not in _READ_ONLY:
        import numpy as np

        np.seterr(all="ignore")  # a damaged model's NaN is reported as one line, not warnings
    try:
        return handlers[args.command](args)
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


def _cmd_inspect(args) -> int:
    from .inspect import cmd_inspect

    return cmd_inspect(args)


def _cmd_export(args) -> int:
    from ..export import export_model
    from ..store.model_store import Store

    what = {"onnx": "ONNX", "hf": "Hugging Face"}[args.format]

    def started():
        if not args.json:
            print(f"exporting '{_v(args.name)}' as {what}…", file=sys.stderr)

    r = export_model(Store(args.home), args.name, args.format, args.out, started)
    check = r["check"]
    if args.json:
        _out({"event": "exported", "name": r["name"], "format": r["format"], "out": r["out"], "files": r["files"],
              "arch": r["arch"], "check": check})
        return 0
    print(f"exported '{_v(r['name'])}' ({r['arch']}) as {what} to {_v(r['out'])}: {', '.join(map(_v, r['files']))}")
    print(f"checked: the logits from {check['runtime']} match lmcore's within {check['max_abs_logit_diff']:.1e} "
          f"over {check['tokens']} tokens; README.md in the folder says how to run it")
    if check["tokenizer_same"] < check["tokenizer_tokens"]:
        print(f"note: its tokenizer splits {check['tokenizer_tokens'] - check['tokenizer_same']} of "
              f"{check['tokenizer_tokens']} test tokens differently from lmcore's", file=sys.stderr)
    return 0


def _cmd_bench(args) -> int:
    if args.startup:
        from ..bench.startup import run

        return run(args.runs, picker=True, as_json=args.json)
    from ..bench.speed import run_cli

    return run_cli(args)


if __name__ == "__main__":
    sys.exit(main())
