"""``lmcore bench``: our trainer and generator against the plain PyTorch code a user would write.

Every measurement is taken in one process, one run, with the reference measured right beside ours:
- ``train``: training tokens/s (median over logging intervals after a warm-up). Fused models are
  compared with a hand-written ``nn.LSTM``/``nn.GRU``/``nn.RNN`` + Adam loop of the same size; scratch
  models with the naive per-time-step loop of the chapters (one matmul per gate); the transformer
  with a plain fp32 loop over the same module.
- ``time_to_loss``: seconds of training until the held-out loss reaches a target.
- ``generate``: characters/s, the median of three runs of each side, interleaved, after a warm-up;
  the transformer's reference recomputes the whole context for every
  token (no key/value cache); recurrent references step through the prompt one token at a time.
- ``first_char``: seconds from prompt (200 characters) to the first generated character.
- ``memory``: peak memory of a training run (CPU RSS growth, or CUDA max allocated), ours vs reference.
- ``quality`` (``--nanogpt`` only): the best validation loss of preset auto against nanoGPT's CPU recipe,
  each trained for the same minutes (lmcore/bench/nanogpt.py).
- pairs families (``--arch seq2seq``, ``seq2seq-transformer``): ``train`` against a plain loop over the same
  module and the same pair batches, and ``greedy``: output characters/s of greedy replies against a
  decoder-only LSTM of the same width (lmcore/bench/pairs.py), on the built-in ``dates`` pairs.
- ``shared``: on the CPU, training tokens/s of ``lmcore train`` processes when the machine is not theirs
  alone: two trainings at once (each against the same run alone), one beside a program that keeps one
  core busy (against alone, and against the same run fixed at one thread beside it), and alone against
  the same run fixed at one thread.
``ratio`` is ours over the reference for rates, the reference over ours for times, memory and losses
(higher is better)."""
from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import platform
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from . import plan as planning
from .plain_loop import median_rate, plain_step
from ..data import corpus as corpora
from ..device import pick_device
from ..errors import ConfigError
from ..safe_text import visible_line
from ..generation.generator import Generator
from .. import models
from ..models import build_model, family, preset_config
from ..generation.sampling import SamplingSettings
from ..store.model_store import Store
from ..data.text import Tokenizer, build_vocab, encode
from ..training.spec import RunSpec
from ..training.trainer import TrainConfig, Trainer


@dataclass
class Row:
    bench: str
    arch: str
    impl: str
    preset: str
    device: str
    value: float
    unit: str
    reference: float | None
    ratio: float | None
    against: str = ""
    chose: str = ""   # a quality row: what preset auto chose and why (its line)

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("value", "reference", "ratio"):
            if isinstance(d[k], float):  # losses and their ratio to 4 decimals: 1.43 cannot tell 1.434 from 1.425
                d[k] = round(d[k], 4 if self.bench == "quality" else 6 if d[k] < 1 else 2)
        if not d["chose"]:
            del d["chose"]
        return d


# ---------------------------------------------------------------------------- measuring helpers
class PeakMemory:
    """Peak memory growth during a block: CUDA max allocated, or CPU RSS sampled every few ms."""

    def __init__(self, device: torch.device):
        self.device, self.peak = device, 0

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
        else:
            self.base = self._rss()
            self._stop = threading.Event()
            self._max = self.base

            def sample():
                while not self._stop.wait(0.005):
                    self._max = max(self._max, self._rss())

            self._t = threading.Thread(target=sample, daemon=True)
            self._t.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        else:
            self._stop.set()
            self._t.join()
            self.peak = max(self._max, self._rss()) - self.base


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------- references
def reference_train(model: nn.Module, ids: torch.Tensor, batch: int, seq: int, lr: float, steps: int,
                    warm: int, device: torch.device, interval: int = 5, measure: bool = True) -> tuple[float, int]:
    """A plain loop: random windows, Adam, clipping, loss.item() every step. Returns (tokens/s, peak bytes;
    0 unless ``measure``)."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    ids = ids.to(device)
    g = torch.Generator().manual_seed(0)
    times = []
    mem = PeakMemory(device)
    with mem if measure else contextlib.nullcontext():
        for step in range(warm + steps):
            starts = torch.randint(0, len(ids) - seq - 1, (batch,), generator=g).to(device)
            idx = starts[:, None] + torch.arange(seq, device=device)
            x, y = ids[idx].long(), ids[idx + 1].long()
            if hasattr(model, "train_loss"):  # the same module: its own objective (birnn: both directions)
                loss = model.train_loss(x, y)[0]
            else:
                out = model(x)
                out = out[0] if isinstance(out, tuple) else out
                loss = F.cross_entropy(out.flatten(0, 1), y.flatten())
            plain_step(model, opt, loss)
            if step >= warm and (step - warm) % interval == 0:
                times.append(time.perf_counter())
    return median_rate(times, batch * seq, interval), mem.peak


def reference_model(arch: str, impl: str, preset: str, vocab_size: int, c) -> tuple[nn.Module, str]:
    """The hand-written model ours is compared with (the family's, see plan.py), and how to describe it."""
    hand_written = getattr(planning.family_bench(arch), "reference", None)
    if hand_written is not None:
        return hand_written(c, impl, vocab_size)
    return build_model(preset_config(arch, preset, vocab_size=vocab_size)), "plain fp32 loop, same module"


def _model_config(arch: str, preset: str, impl: str, **extra):
    """A preset's config; ``impl`` given only to a family that has implementations."""
    impl_option = {"impl": impl} if "impl" in family(arch).option_names() else {}
    return preset_config(arch, preset, **impl_option, **extra)


def _memory_job(job: dict) -> int:
    """Peak memory growth (bytes) of a few training steps, ours or the reference; the corpus is read and
    encoded before the measurement starts, on both sides. The process sees the families its parent
    sees (a family folder added to lmcore.models' path included)."""
    if job["models_path"] != list(models.__path__):
        models.__path__[:] = job["models_path"]
        models.registry.refresh()
    device = torch.device(job["device"])
    torch.manual_seed(0)
    # the first optimizer imports torch._dynamo (~70 MB of code): load it before measuring, on both sides
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    cfg = TrainConfig(steps=job["steps"], eval_every=10 ** 9, log_every=5, sample_tokens=0, device=job["device"],
                      compile=job["compile"])
    mc = _model_config(job["arch"], job["preset"], job["impl"])
    tr = Trainer(Store(Path(job["home"])), "m").prepare(RunSpec("m", mc, job["preset"], corpus=job["corpus"], train=cfg))
    if job["side"] == "ours":
        with PeakMemory(device) as mem:
            tr.run()
        return mem.peak
    model, _ = reference_model(job["arch"], job["impl"], job["preset"], len(tr.vocab), tr.model_cfg)
    t = tr.cfg
    return reference_train(model, tr.train_ids, t.batch_size, t.seq_len, t.lr, job["steps"], 0, device)[1]


# ---------------------------------------------------------------------------- ours
class Bench:
    def __init__(self, device: str = "cpu", quick: bool = False, corpus: str = "timemachine",
                 archs: list[str] | None = None, on_row=None):
        self.device = pick_device(device)
        self.quick = quick
        self.archs = archs or planning.default_archs()
        self.jobs = planning.plan(self.archs, quick, self.device.type, named=bool(archs))  # unknown: ConfigError
        self.on_row = on_row or (lambda r: None)
        self.rows: list[Row] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="lmplay-bench-")
        text = corpora.load(corpus).text
        self.corpus_path = Path(self.tmp.name) / f"{corpus}.txt"
        self.corpus_path.write_text(text, "utf-8")
        tok = Tokenizer("char", "raw")
        self.vocab = build_vocab(text, tok)
        self.ids = encode(text, tok, self.vocab)
        self.preset = "base" if self.device.type == "cuda" else "small"
        self._n = 0
        self._t0 = time.perf_counter()

    def add(self, row: Row) -> None:
        if os.environ.get("LMPLAY_BENCH_DEBUG"):
            print(f"[{time.perf_counter() - self._t0:6.1f}s] {row.bench} {row.arch} {row.impl}", flush=True)
        self.rows.append(row)
        self.on_row(row)

    def close(self):
        self.tmp.cleanup()

    def _compiles(self, arch: str, impl: str) -> bool:
        return self.device.type == "cuda" and planning.compiles(arch, impl)

    def _trainer(self, arch, impl, steps, extra: dict | None = None, minutes=None, **train_kw) -> Trainer:
        self._n += 1
        name = f"b{self._n}"
        mc = _model_config(arch, self.preset, impl, **(extra or {}))
        opts = dict(eval_every=10 ** 9, log_every=5, sample_tokens=0, compile=self._compiles(arch, impl))
        opts.update(train_kw)
        cfg = TrainConfig(steps=steps, minutes=minutes, device=str(self.device), **opts)
        return Trainer(Store(Path(self.tmp.name) / "home"), name).prepare(
            RunSpec(name, mc, self.preset, corpus=str(self.corpus_path), train=cfg))

    # ------------------------------------------------------------ training throughput
    def train_throughput(self, arch: str, impl: str) -> None:
        steps = (6 if impl == "scratch" else 10) if self.quick else (30 if impl == "scratch" else 60)
        warm = (2 if self.quick else 5) if self.device.type == "cpu" else 20
        every = 2 if self.quick else 5
        times: list[float] = []
        tr = self._trainer(arch, impl, warm + steps, log_every=every)
        tr.on_event = lambda e: times.append(time.perf_counter()) if e.kind == "step" and e.step >= warm and e.step % every == 0 else None
        cuda = self.device.type == "cuda"  # CUDA's peak counters are exact in-process: measure alongside
        mem = PeakMemory(self.device)
        with mem if cuda else contextlib.nullcontext():
            tr.run()
        c, t = tr.model_cfg, tr.cfg
        ours = median_rate(times, t.batch_size * t.seq_len, every)
        torch.manual_seed(0)
        ref_model, against = reference_model(arch, impl, self.preset, len(tr.vocab), c)
        ref, ref_mem = reference_train(ref_model, tr.train_ids, t.batch_size, t.seq_len, t.lr, steps, warm,
                                       self.device, every, measure=cuda)
        dev = self.device.type
        self.add(Row("train", arch, impl, self.preset, dev, ours, "tokens/s", ref, ours / ref, against))
        if self.quick and self.rows_of("memory"):
            return  # --quick measures memory once
        if cuda:
            mem_ours, mem_ref = mem.peak, ref_mem
        else:
            mem_ours, mem_ref = (self._memory(arch, impl, side) for side in ("ours", "reference"))
        self.add(Row("memory", arch, impl, self.preset, dev, mem_ours / 2 ** 20, "MiB", mem_ref / 2 ** 20,
                      (mem_ref / mem_ours) if mem_ours > 0 else None, against))

    def rows_of(self, bench: str) -> list[Row]:
        return [r for r in self.rows if r.bench == bench]

    def _memory(self, arch: str, impl: str, side: str) -> int:
        """Peak CPU memory of a few training steps, each side in a fresh process (spawned: the RSS of one
        process depends on what ran before it, and fork hangs once OpenMP has run)."""
        job = dict(arch=arch, impl=impl, preset=self.preset, corpus=str(self.corpus_path), side=side,
                   home=str(Path(self.tmp.name) / f"mem-{arch}-{impl}-{side}"), device=str(self.device),
                   steps=5 if self.quick else 20, compile=self._compiles(arch, impl),
                   models_path=list(models.__path__))
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(_memory_job, (job,))


    # ------------------------------------------------------------ a machine shared with other work
    def _cli_rates(self, arch: str, *extra: str, runs: int = 1, burner: bool = False) -> list[float]:
        """The median step tokens/s of ``runs`` ``lmcore train`` processes started together (each in its
        own data folder), optionally beside a process that keeps one core busy."""
        import json
        import subprocess
        import sys

        steps = 40 if self.quick else 400
        hot = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if burner else None
        try:
            procs = []
            for _ in range(runs):
                self._n += 1
                home = Path(self.tmp.name) / f"shared-{self._n}"
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "lmcore", "--home", str(home), "train", "m", "--arch", arch,
                     "--preset", self.preset, "--corpus", str(self.corpus_path), "--steps", str(steps),
                     "--eval-every", str(10 ** 6), "--device", "cpu", "--json", *extra],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
            outs = [p.communicate()[0] for p in procs]
        finally:
            if hot:
                hot.kill()
                hot.wait()
        rates = []
        for out in outs:
            events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
            seen = [e["tokens_per_s"] for e in events if e.get("event") == "step" and e["step"] > steps // 4]
            rates.append(statistics.median(seen) if seen else math.nan)
        return rates

    def shared_cpu(self, arch: str) -> None:
        one = "--threads", "1"
        alone, = self._cli_rates(arch)
        alone_one, = self._cli_rates(arch, *one)
        pair = self._cli_rates(arch, runs=2)
        hot, = self._cli_rates(arch, burner=True)
        hot_one, = self._cli_rates(arch, *one, burner=True)
        row = lambda what, v, ref, against: self.add(Row(what, arch, "fused", self.preset, "cpu", v, "tokens/s", ref,
                                                         v / ref if ref else None, against))
        row("shared: alone", alone, alone_one, "the same run alone with --threads 1")
        row("shared: two at once", min(pair), alone, "each of two runs at once (the slower) vs one alone")
        row("shared: beside a busy core", hot, alone, "beside a program using one core vs alone")
        row("shared: beside a busy core", hot, hot_one, "beside a program using one core vs --threads 1 there")

    # ------------------------------------------------------------ time to a target loss
    def time_to_loss(self, arch: str, target: float, limit_minutes: float, reference: bool = True,
                     extra: dict | None = None, ref_limit_minutes: float | None = None, **train_kw) -> None:
        reached: list[float] = []
        steps = train_kw.pop("steps", None)
        train_kw.setdefault("eval_every", 50)
        tr = self._trainer(arch, "fused", steps, extra=extra, minutes=limit_minutes, **train_kw)
        stop = tr.stop

        def on_event(e):
            if e.kind == "eval" and e.val_loss <= target and not reached:
                reached.append(e.elapsed)
                stop.set()

        tr.on_event = on_event
        tr.run()
        ours = reached[0] if reached else float("inf")
        ref = None
        against = "not reached within the limit" if not reached else ""
        if reference:
            ref = self._reference_time_to_loss(tr, target, ref_limit_minutes or limit_minutes)
            against = "hand-written loop, same size" + ("" if math.isfinite(ref) else
                                                        f" (did not reach it in {(ref_limit_minutes or limit_minutes):g} min)")
        ratio = (ref / ours) if ref and math.isfinite(ours) and math.isfinite(ref) else None
        self.add(Row("time_to_loss", arch, "fused", self.preset, self.device.type, ours, f"s to val loss {target}",
                     ref, ratio, against))

    def _reference_time_to_loss(self, tr: Trainer, target: float, limit_minutes: float) -> float:
        c, t = tr.model_cfg, tr.cfg
        torch.manual_seed(0)
        model = reference_model(c.arch, "fused", self.preset, len(tr.vocab), c)[0].to(self.device)
        opt = torch.optim.Adam(model.parameters(), lr=t.lr)
        ids, val = tr.train_ids.to(self.device), tr.val_ids.to(self.device)
        g = torch.Generator().manual_seed(0)
        t0, step = time.perf_counter(), 0
        while time.perf_counter() - t0 < limit_minutes * 60:
            starts = torch.randint(0, len(ids) - t.seq_len - 1, (t.batch_size,), generator=g).to(self.device)
            idx = starts[:, None] + torch.arange(t.seq_len, device=self.device)
            loss = F.cross_entropy(model(ids[idx].long()).flatten(0, 1), ids[idx + 1].long().flatten())
            plain_step(model, opt, loss)
            step += 1
            if step % 50 == 0:
                model.eval()
                with torch.no_grad():
                    n = (len(val) - 1) // t.seq_len
                    xs = val[: n * t.seq_len].view(n, -1).long()
                    ys = val[1: n * t.seq_len + 1].view(n, -1).long()
                    vl = sum(F.cross_entropy(model(xs[i:i + 64]).flatten(0, 1), ys[i:i + 64].flatten(), reduction="sum").item()
                             for i in range(0, n, 64)) / ys.numel()
                model.train()
                if vl <= target:
                    return time.perf_counter() - t0
        return float("inf")

    # ------------------------------------------------------------ generation
    def generation(self, arch: str) -> None:
        torch.manual_seed(0)
        windowed = family(arch).windowed  # else it carries a state: the reference steps through the prompt
        extra = {"context": 256} if windowed else {}
        model = build_model(preset_config(arch, "small", vocab_size=len(self.vocab), **extra)).to(self.device).eval()
        gen = Generator(model, self.vocab, Tokenizer("char", "raw"), self.device)
        prompt = self.corpus_path.read_text("utf-8")[1000:1200]
        n = 150 if self.quick else 400
        s = SamplingSettings(temperature=1.0, seed=0, max_tokens=n)
        reference = self._no_cache if windowed else self._stepwise
        n_ref = 60 if self.quick and windowed else n  # ~110 chars/s: keep --quick quick
        against = ("recompute the whole context per token (no KV cache)" if windowed else
                   "prompt fed one token at a time, then step")
        self._stream(gen, prompt, s)  # warm-up
        reference(model, prompt, min(n, 20))
        runs = [(self._stream(gen, prompt, s), reference(model, prompt, n_ref)) for _ in range(3)]  # interleaved
        first, rate = (statistics.median(r[0][i] for r in runs) for i in (0, 1))
        ref_first, ref_rate = (statistics.median(r[1][i] for r in runs) for i in (0, 1))
        dev = self.device.type
        self.add(Row("generate", arch, "fused", "small", dev, rate, "chars/s", ref_rate, rate / ref_rate, against))
        self.add(Row("first_char", arch, "fused", "small", dev, first, "s", ref_first, ref_first / first, against))

    def _stream(self, gen, prompt, s):
        t0 = time.perf_counter()
        first, count = None, 0
        for _ in gen.stream(prompt, s):
            count += 1
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        return first - t0, (count - 1) / (end - first)

    @torch.inference_mode()
    def _no_cache(self, model, prompt, n):
        ids = torch.tensor([self.vocab.encode(prompt)], device=self.device)
        ctx = model.config.context
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        first = None
        for i in range(n):
            logits, _ = model(ids[:, -ctx:])
            p = torch.softmax(logits[0, -1].float(), -1).cpu()
            nxt = torch.multinomial(p, 1, generator=g)
            ids = torch.cat([ids, nxt.to(self.device)[None]], 1)
            if first is None:
                first = time.perf_counter()
        end = time.perf_counter()
        return first - t0, (n - 1) / (end - first)

    @torch.inference_mode()
    def _stepwise(self, model, prompt, n):
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        state = model.init_state(1, self.device)
        for i in self.vocab.encode(prompt):
            logits, state = model.step(torch.tensor([i], device=self.device), state)
        first = None
        for _ in range(n):
            p = torch.softmax(logits[0].float(), -1).cpu()
            nxt = int(torch.multinomial(p, 1, generator=g))
            if first is None:
                first = time.perf_counter()
            logits, state = model.step(torch.tensor([nxt], device=self.device), state)
        end = time.perf_counter()
        return first - t0, (n - 1) / (end - first)

    # ------------------------------------------------------------ the whole run
    def run(self) -> list[Row]:
        """Measure the planned rows (plan.py), in order."""
        from . import pairs

        for job in self.jobs:
            if job.bench in ("train", "generate") and family(job.arch).reads_pairs:  # on the dates pairs
                self.add(Row(**(pairs.train_row if job.bench == "train" else pairs.greedy_row)(self, job.arch)))
            elif job.bench == "train":
                self.train_throughput(job.arch, job.impl)
            elif job.bench == "generate":
                self.generation(job.arch)
            elif job.bench == "time_to_loss":
                kw = dict(job.options)
                self.time_to_loss(job.arch, kw.pop("target"), kw.pop("limit_minutes"), **kw)
            else:
                self.shared_cpu(job.arch)
        return self.rows


def machine_line(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{_dt.date.today().isoformat()} · {platform.system()} {cpu}, {os.cpu_count()} cores{gpu} · "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def run_cli(args) -> int:
    import sys

    from ..safe_text import strict_json

    archs = args.arch
    nanogpt = getattr(args, "nanogpt", False)
    if getattr(args, "minutes", None) is not None and not nanogpt:
        raise ConfigError("--minutes is the budget of --nanogpt's runs: give it with --nanogpt")
    if nanogpt and getattr(args, "shared", False):
        raise ConfigError("--nanogpt and --shared measure different rows: give one of them")
    if nanogpt:
        from .nanogpt import DEFAULT_MINUTES, check

        args.minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
        check(archs, args.minutes)  # before the corpus is read: a bad budget or architecture is one line
    if args.corpus is None:
        args.corpus = "tinyshakespeare" if nanogpt else "timemachine"
    if args.corpus == "timemachine" and str(args.device).startswith("cuda") and not args.quick:
        args.corpus = "tinyshakespeare"
    bench = Bench(args.device, args.quick, args.corpus, archs,
                  on_row=(lambda r: print(strict_json(r.to_dict()), flush=True)) if args.json else None)
    try:
        if not args.json:
            kind = "nanoGPT's recipe beside auto" if nanogpt else "quick" if args.quick else "full"
            print(f"lmcore bench ({kind}) on {args.corpus}: {machine_line(bench.device)}",
                  file=sys.stderr)
        if getattr(args, "shared", False):
            for arch in archs or planning.shared_archs():
                bench.shared_cpu(arch)
            rows = bench.rows
        elif nanogpt:
            from .nanogpt import against_reference

            for fields in against_reference(bench, archs, args.minutes):
                bench.add(Row(**fields))
            rows = bench.rows
        else:
            rows = bench.run()
    finally:
        bench.close()
    if args.json:
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table("bench", "model", "ours", "reference", "ratio", "unit", title=machine_line(bench.device))
    notes: dict[str, int] = {}
    for r in rows:
        digits = 4 if r.bench == "quality" else 3
        fmt = (lambda v: "-" if v is None else ("not reached" if v == float("inf") else
                                                 (f"{v:,.0f}" if v >= 100 else f"{v:.{digits}g}")))
        mark = notes.setdefault(r.against, len(notes) + 1) if r.against else None
        t.add_row(r.bench, f"{r.arch} {r.impl} {r.preset}", fmt(r.value), fmt(r.reference) + (f" [{mark}]" if mark else ""),
                  "-" if r.ratio is None else f"{r.ratio:.{digits - 1}f}x", r.unit)
    chosen = [f"{r.arch}: {r.chose}" for r in rows if r.chose]
    console = Console()
    console.print(t)
    for text, i in notes.items():
        console.print(f"[{i}] {text}", markup=False, highlight=False)
    for text in chosen:
        console.print(visible_line(text), markup=False, highlight=False)
    console.print("ratio: ours / reference for rates, reference / ours for times, memory and losses (higher is better)")
    return 0
