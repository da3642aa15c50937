"""The bert models' tensors from their config, torch-free."""
from __future__ import annotations

from ..shapes import Shapes, linear, norm

SPECIAL = 3  # positions for <cls>, <sep>, <sep> (model.py)


def of(c) -> Shapes:
    v, h = c.vocab_size, c.hidden
    out: Shapes = {"tok.weight": (v, h), "pos.weight": (c.context + SPECIAL, h), "seg.weight": (2, h)}
    for i in range(c.num_layers):
        b = f"blocks.{i}"
        for part in (norm(f"{b}.ln_1", h), linear(f"{b}.attn.qkv", h, 3 * h), linear(f"{b}.attn.proj", h, h),
                     norm(f"{b}.ln_2", h), linear(f"{b}.fc", h, 4 * h), linear(f"{b}.out", 4 * h, h)):
            out.update(part)
    return {**out, **norm("ln_f", h), **linear("mlm_dense", h, h), **norm("mlm_norm", h),
            **linear("mlm_out", h, v), **linear("nsp_dense", h, h), **linear("nsp_out", h, 2)}
