"""``--preset auto``'s calibration: how many tokens per second this device trains a size at, measured in a
few timed steps of that size when the rule first asks for it; cached per device in the data folder
(auto_preset.calibrated_rate), so a second run does not measure."""
from __future__ import annotations

import os
import platform
import statistics
import time

import torch

from ..errors import Cancelled
from ..models import ModelConfig, build_model
from . import auto_preset
from .threads import ThreadGovernor

STEPS = 3          # timed steps at least, after one untimed step ...
MIN_SECONDS = 1.0  # ... and more until this long (3 steps of the lstm's 2×192 said 60.7k then 70k tokens/s)
MAX_STEPS = 50
ROUNDS = 4             # a halved batch against its whole: this many rounds, each timing both in turns ...
ROUND_SECONDS = 0.3    # ... each batch for this long and 2 steps at least; the median of the rounds' fractions


def device_key(device: torch.device) -> str:
    """The device a rate was measured on: the GPU's name, or the CPU's model, cores and threads."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{platform.machine()}:{cpu_model()[:60]}:{os.cpu_count()}:{torch.get_num_threads()}t"
    return device.type


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo's, where platform.processor() is empty), or ''. A data
    folder that moves to another machine (or is shared by two) then measures that machine afresh."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name") and ":" in line:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def measure(cfg: ModelConfig, batch: int, seq_len: int, lr: float, device: torch.device, stop=None) -> float:
    """Tokens per second of training ``cfg`` at ``batch`` × ``seq_len`` on ``device``; Cancelled as soon as
    ``stop`` (a threading.Event) is set."""
    step = _trainer(cfg, lr, device, stop)
    x = _batch(cfg, batch, seq_len, device)
    step(x)
    return _timed(step, x, device, STEPS, MIN_SECONDS)


def measure_keeps(cfg: ModelConfig, whole: tuple[int, int], half: tuple[int, int], lr: float, device: torch.device,
                  stop=None) -> float:
    """The fraction of its tokens per second ``cfg`` keeps at batch ``half`` against ``whole`` (each (batch,
    sequence length)): ROUNDS rounds on one model, each timing both batches in turns (the first one
    alternating), and the median of the rounds' fractions. Two rates measured apart differ by the machine's
    drift as much as by their batches (the AMD machine's cache held the gru's 16×64 at 1.33x the tokens/s of
    32×64, measured in two sittings; in turns: 0.69-0.74)."""
    step = _trainer(cfg, lr, device, stop)
    xs = [_batch(cfg, b, s, device) for b, s in (whole, half)]
    for x in xs:
        step(x)
    fractions = []
    for r in range(ROUNDS):
        rates = [0.0, 0.0]
        for i in ((0, 1) if r % 2 == 0 else (1, 0)):
            rates[i] = _timed(step, xs[i], device, 2, ROUND_SECONDS)
        fractions.append(rates[1] / rates[0])
    return statistics.median(fractions)


def _trainer(cfg: ModelConfig, lr: float, device: torch.device, stop=None):
    """A step of training a new ``cfg`` model on a batch, by the family's own objective (a birnn trains three
    heads, BERT masks and pairs); Cancelled as soon as ``stop`` is set."""
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)

    def step(x: torch.Tensor) -> None:
        if stop is not None and stop.is_set():
            raise Cancelled("stopped while measuring this device's speed")
        loss, _ = model.train_loss(x[:, :-1], x[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def _batch(cfg: ModelConfig, batch: int, seq_len: int, device: torch.device) -> torch.Tensor:
    return torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), device=device)


def _timed(step, x: torch.Tensor, device: torch.device, least: int, seconds: float) -> float:
    """Tokens per second of ``step(x)``: ``least`` steps, more until ``seconds`` have passed (MAX_STEPS at most)."""
    _sync(device)
    t0, steps = time.perf_counter(), 0
    while steps < least or (time.perf_counter() - t0 < seconds and steps < MAX_STEPS):
        step(x)
        steps += 1
        _sync(device)
    return steps * x.shape[0] * (x.shape[1] - 1) / max(time.perf_counter() - t0, 1e-9)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate_for(home, arch: str, vocab_size: int, device: torch.device, given: dict | None = None, stop=None,
             progress=None) -> auto_preset.Rate:
    """The rate function ``auto_preset.choose`` takes: a size's tokens per second, measured the first time
    it is asked for on this device (then read from the cache). Each size is measured, not scaled from
    another by its parameters: on the 2-core CPU the lstm's 2×192 trained at 48.7k tokens/s where 2×256's
    39.4k scaled by parameters said 67k (small sizes pay a fixed cost a step). ``stop``: a threading.Event
    that cancels a measurement; ``progress(what, done, total)``: called before each size is measured."""
    from ..models import family

    fam = family(arch)
    sizes, measured = len(fam.candidates(arch)), []

    def rate(params: int, size: dict) -> float:
        cfg, t, key = _keyed(fam, arch, size, vocab_size, device, given)

        def now() -> float:
            if progress is not None:
                progress("measuring this device's speed", len(measured), max(sizes, len(measured) + 1))
            measured.append(key)
            return _with_threads(device, lambda: measure(cfg, t["batch_size"], t["seq_len"], t["lr"], device, stop))

        return auto_preset.calibrated_rate(home, key, now)

    return rate


def keeps_for(home, arch: str, vocab_size: int, device: torch.device, given: dict | None = None, stop=None,
              progress=None) -> auto_preset.Keeps:
    """The keeps function ``auto_preset.choose`` takes: the fraction of a size's tokens per second a halved
    batch keeps, both batches timed in turns (``measure_keeps``) the first time it is asked for on this device
    (then read from the cache). ``stop`` and ``progress`` as for ``rate_for``."""
    from ..models import family

    fam = family(arch)

    def keeps(params: int, size: dict, half: dict) -> float:
        cfg, t, key = _keyed(fam, arch, size, vocab_size, device, given)
        key += f"|to {half['batch_size']}x{half['seq_len']}"

        def now() -> float:
            if progress is not None:
                progress("measuring this device's speed at a smaller batch", 0, 1)
            return _with_threads(device, lambda: measure_keeps(
                cfg, (t["batch_size"], t["seq_len"]), (half["batch_size"], half["seq_len"]), t["lr"], device, stop))

        return auto_preset.calibrated_keeps(home, key, now)

    return keeps


def _keyed(fam, arch: str, size: dict, vocab_size: int, device: torch.device, given: dict | None):
    """(the size's config, its train fields, its key in the cache: device, model, batch, vocabulary, dropout)."""
    from ..models import preset_config

    cfg = preset_config(arch, auto_preset.BASE_PRESET, vocab_size=vocab_size, **{**size["model"], **(given or {})})
    t = size["train"]
    key = f"{device_key(device)}|{fam.describe(cfg)}|{fam.size(cfg)}|{t['batch_size']}x{t['seq_len']}|v{vocab_size}"
    if cfg.get("dropout"):  # dropout slows a step (the transformer's attention leaves its fused kernel)
        key += f"|dropout {cfg.get('dropout'):g}"
    return cfg, t, key


def _with_threads(device: torch.device, timed):
    """``timed()`` with the threads the run will take: the cores other programs leave free (two threads
    beside a busy core spin and measure a tenth of the rate)."""
    threads = ThreadGovernor() if device.type == "cpu" else None
    if threads is not None:
        threads.start()
    try:
        return timed()
    finally:
        if threads is not None:
            threads.close()
