"""``lmcore bench --arch seq2seq`` (any family that ``reads_pairs``): its rows, on the built-in ``dates`` pairs
(generated: no download).

- ``train``: training tokens/s of our trainer against a plain PyTorch loop over the same module — the
  same batches (the bucketed pair stream training reads), Adam, clipping, a cross-entropy that ignores
  padding, ``loss.item()`` every step, fp32. Tokens are counted as training counts them (a batch's pairs
  times their mean tokens: source, target and end), the median over logging intervals after a warm-up.
- ``greedy``: output characters/s of greedy replies (our reply path, ``sample_steps`` at temperature 0,
  the end token ruled out so that every reply runs to the length) against a decoder-only LSTM of the same
  width (hidden size, layers and embedding) continuing the same sources greedily (``Generator.stream``);
  the median of three interleaved runs after a warm-up, untrained weights on both sides.

Nothing here is timed by the tests beyond the shape of the rows (tests/test_bench_pairs.py)."""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import plan as planning
from .plain_loop import median_rate, plain_step
from ..data.pair_batches import IGNORE, PairStream
from ..data.pairs import dates_pairs
from ..data.text import Tokenizer, build_vocab
from ..generation.generator import Generator
from ..generation.sampling import SamplingSettings
from ..generation.seq2seq_decode import sample_steps
from ..models import build_model, preset_config
from ..models.encdec import special_ids
from ..store.model_store import Store
from ..training.spec import RunSpec
from ..training.trainer import TrainConfig, Trainer

CORPUS = "dates"
SOURCES = 4        # sources each greedy run replies to (1 with --quick)


def reference_pairs_train(model: nn.Module, stream: PairStream, tokens_per_step: int, lr: float, steps: int,
                          warm: int, device: torch.device, interval: int) -> float:
    """The plain loop over ``stream``'s batches (from step 0, as ours): tokens/s."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    times = []
    batches = stream.iterate(0)
    for step in range(warm + steps):
        (src, src_len, tgt_in), y, _ = next(batches)
        src, src_len, tgt_in, y = (t.to(device) for t in (src, src_len, tgt_in, y))
        logits = model(src, src_len, tgt_in)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE)
        plain_step(model, opt, loss)
        if step >= warm and (step - warm) % interval == 0:
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter())
    return median_rate(times, tokens_per_step, interval)


def _row(bench, name: str, arch: str, value: float, unit: str, reference: float, against: str) -> dict:
    """A row's fields (lmcore.bench.speed.Row)."""
    return dict(bench=name, arch=arch, impl="fused", preset=bench.preset, device=bench.device.type, value=value,
                unit=unit, reference=reference, ratio=value / reference, against=against)


def train_row(bench, arch: str) -> dict:
    """Our trainer on dates against the plain loop (see the module's docstring): a ``train`` row's fields."""
    steps, warm, every = (8, 2, 2) if bench.quick else (40, 5, 5)
    if bench.device.type != "cpu":
        warm = 20
    bench._n += 1
    name = f"b{bench._n}"
    cfg = TrainConfig(steps=warm + steps, device=str(bench.device), eval_every=10 ** 9, log_every=every,
                      sample_tokens=0)
    spec = RunSpec(name, preset_config(arch, bench.preset), bench.preset, corpus=CORPUS, train=cfg)
    tr = Trainer(Store(Path(bench.tmp.name) / "home"), name).prepare(spec)
    times: list[float] = []
    tr.on_event = lambda e: times.append(time.perf_counter()) if e.kind == "step" and e.step >= warm \
        and e.step % every == 0 else None
    tr.run()
    t, ours_stream = tr.cfg, tr.prepared.stream
    per_step = t.batch_size * t.seq_len
    ours = median_rate(times, per_step, every)
    torch.manual_seed(0)
    stream = PairStream(ours_stream.ids, ours_stream.spans, ours_stream.batch_size, ours_stream.bos,
                        ours_stream.eos, ours_stream.seed)
    ref = reference_pairs_train(build_model(tr.model_cfg), stream, per_step, t.lr, steps, warm, bench.device, every)
    against = "plain fp32 loop, same module, same pair batches"
    if bench.device.type == "cpu":  # ours chooses its threads by the free cores: a differing count shows here
        against += f" (CPU threads: ours {getattr(tr.threads, 'threads', '?')}, the loop {torch.get_num_threads()})"
    return _row(bench, "train", arch, ours, "tokens/s", ref, against)


class _NoEnd:
    """A pairs model whose end token is never chosen: each greedy reply runs to its length."""

    def __init__(self, model, eos: int):
        self._model, self._eos = model, eos

    def __getattr__(self, name):
        return getattr(self._model, name)

    def decode_step(self, token, state):
        logits, state = self._model.decode_step(token, state)
        return logits.index_fill(-1, torch.tensor([self._eos], device=logits.device), float("-inf")), state

    def fast_decoder(self):
        fast = self._model.fast_decoder()
        return None if fast is None else _NoEndSteps(fast, self._eos)


class _NoEndSteps:
    """A model's fast decoder whose end token is never chosen."""

    def __init__(self, fast, eos: int):
        self._fast, self._eos = fast, eos

    def __getattr__(self, name):
        return getattr(self._fast, name)

    def step(self, tokens):
        logits = self._fast.step(tokens)
        logits[:, self._eos] = -np.inf
        return logits


def _timed(chunks) -> float:
    """Characters per second of an iterator of text pieces."""
    t0, chars = time.perf_counter(), 0
    for piece in chunks:
        chars += len(piece)
    return chars / max(time.perf_counter() - t0, 1e-9)


def greedy_row(bench, arch: str) -> dict:
    """Greedy replies of ``arch`` against a decoder-only LSTM of the same width: a ``greedy`` row's fields."""
    tok = Tokenizer("char", "raw")
    pairs = dates_pairs()
    vocab = build_vocab("".join(f"{s}\t{t}\n" for s, t in pairs), tok)
    torch.manual_seed(0)
    cfg = preset_config(arch, bench.preset, vocab_size=len(vocab))
    model = build_model(cfg).to(bench.device).eval()
    width = {k: getattr(cfg, k) for k in ("hidden", "num_layers", "embed") if hasattr(cfg, k)}
    other = planning.decoder_only(arch)
    plain = build_model(preset_config(other, bench.preset, vocab_size=len(vocab), **width)).to(bench.device).eval()
    gen = Generator(plain, vocab, tok, bench.device)
    bos, eos = special_ids(vocab, tok)
    limit = 64 if bench.quick else int(cfg.max_len)
    greedy = SamplingSettings(temperature=0.0, max_tokens=limit)
    sources = [s for s, _ in pairs[: 1 if bench.quick else SOURCES]]
    no_end = _NoEnd(model, eos)

    def ours() -> float:
        steps = (s for src in sources for s in sample_steps(no_end, vocab.encode(tok.tokenize(src)), bos, eos,
                                                           greedy, np.random.default_rng(0), limit))
        return _timed(vocab.idx_to_token[s.token_id] for s in steps)

    def reference() -> float:
        return _timed(t.text for src in sources for t in gen.stream(src, SamplingSettings(**greedy.to_dict())))

    with torch.inference_mode():
        ours(), reference()  # warm-up
        runs = [(ours(), reference()) for _ in range(3)]  # interleaved
    rate, ref = (statistics.median(r[i] for r in runs) for i in (0, 1))
    sizes = ", ".join(f"{k} {v}" for k, v in width.items())
    return _row(bench, "greedy", arch, rate, "chars/s", ref,
                f"decoder-only {other} of the same width ({sizes}), greedy through Generator.stream")
