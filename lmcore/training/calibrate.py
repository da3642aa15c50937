"""``--preset auto``'s calibration: how many tokens per second this device trains a size at, measured in a
few timed steps of that size when the rule first asks for it; cached per device in the data folder
(auto_preset.calibrated_rate), so a second run does not measure."""
from __future__ import annotations

import os
import platform
import time

import torch

from ..errors import Cancelled
from ..models import ModelConfig, build_model
from . import auto_preset
from .threads import ThreadGovernor

STEPS = 3          # timed steps at least, after one untimed step ...
MIN_SECONDS = 1.0  # ... and more until this long (3 steps of the lstm's 2×192 said 60.7k then 70k tokens/s)
MAX_STEPS = 50


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
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    x = torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), device=device)

    def step() -> None:  # the family's own objective (a birnn trains three heads, BERT masks and pairs)
        if stop is not None and stop.is_set():
            raise Cancelled("stopped while measuring this device's speed")
        loss, _ = model.train_loss(x[:, :-1], x[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    _sync(device)
    t0, steps = time.perf_counter(), 0
    while steps < STEPS or (time.perf_counter() - t0 < MIN_SECONDS and steps < MAX_STEPS):
        step()
        steps += 1
        _sync(device)
    return steps * batch * seq_len / max(time.perf_counter() - t0, 1e-9)


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
    from ..models import family, preset_config

    fam = family(arch)
    sizes, measured = len(fam.candidates(arch)), []

    def rate(params: int, size: dict) -> float:
        cfg = preset_config(arch, auto_preset.BASE_PRESET, vocab_size=vocab_size, **{**size["model"], **(given or {})})
        t = size["train"]
        key = (f"{device_key(device)}|{fam.describe(cfg)}|{fam.size(cfg)}|{t['batch_size']}x{t['seq_len']}|"
               f"v{vocab_size}")

        def now() -> float:
            if progress is not None:
                progress("measuring this device's speed", len(measured), max(sizes, len(measured) + 1))
            measured.append(key)
            return _measured(cfg, t, device, stop)

        return auto_preset.calibrated_rate(home, key, now)

    return rate


def _measured(cfg: ModelConfig, t: dict, device: torch.device, stop=None) -> float:
    """``measure`` with the threads the run will take: the cores other programs leave free (two threads
    beside a busy core spin and measure a tenth of the rate)."""
    threads = ThreadGovernor() if device.type == "cpu" else None
    if threads is not None:
        threads.start()
    try:
        return measure(cfg, t["batch_size"], t["seq_len"], t["lr"], device, stop)
    finally:
        if threads is not None:
            threads.close()
