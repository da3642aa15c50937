"""``--preset auto``'s calibration: how many tokens per second this device trains a size at, measured in a
few timed steps of one size (the family's middle one) and scaled to the others by their parameters;
cached per device in the data folder (auto_preset.calibrated_rate), so a second run does not measure."""
from __future__ import annotations

import os
import platform
import time

import torch
import torch.nn.functional as F

from ..models import ModelConfig, build_model
from . import auto_preset
from .threads import ThreadGovernor

STEPS = 3  # timed, after one untimed step


def device_key(device: torch.device) -> str:
    """The device a rate was measured on: the GPU's name, or the CPU's kind, cores and threads."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    if device.type == "cpu":
        return f"cpu:{platform.machine()}:{platform.processor()[:60]}:{os.cpu_count()}:{torch.get_num_threads()}t"
    return device.type


def measure(cfg: ModelConfig, batch: int, seq_len: int, lr: float, device: torch.device) -> float:
    """Tokens per second of training ``cfg`` at ``batch`` × ``seq_len`` on ``device``."""
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    x = torch.randint(0, cfg.vocab_size, (batch, seq_len + 1), device=device)

    def step() -> None:
        logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(STEPS):
        step()
    _sync(device)
    return STEPS * batch * seq_len / max(time.perf_counter() - t0, 1e-9)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def rate_for(home, arch: str, vocab_size: int, device: torch.device, given: dict | None = None) -> auto_preset.Rate:
    """The rate function ``auto_preset.choose`` takes: the middle size measured (or read from the cache),
    the others scaled by their parameters (a size twice as large trains half as many tokens a second)."""
    from ..models import family, preset_config

    sizes = family(arch).candidates(arch)
    ref = sizes[len(sizes) // 2]
    cfg = preset_config(arch, auto_preset.BASE_PRESET, vocab_size=vocab_size, **{**ref["model"], **(given or {})})
    t = ref["train"]
    threads = ThreadGovernor() if device.type == "cpu" else None
    if threads is not None:  # measured with the threads the run will take: the cores other programs leave
        threads.start()      # free (two threads beside a busy core spin and measure a tenth of the rate)
    try:
        key = (f"{device_key(device)}|{family(arch).describe(cfg)}|{family(arch).size(cfg)}|"
               f"{t['batch_size']}x{t['seq_len']}|v{vocab_size}")
        ref_rate = auto_preset.calibrated_rate(
            home, key, lambda: measure(cfg, t["batch_size"], t["seq_len"], t["lr"], device))
    finally:
        if threads is not None:
            threads.close()
    ref_params = auto_preset.count_params(cfg)
    return lambda params, size: ref_rate * ref_params / max(params, 1)
