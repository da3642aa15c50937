"""The transformer's tensors from its config, torch-free."""
from __future__ import annotations

from ..shapes import Shapes, linear, norm


def of(c) -> Shapes:
    v, h = c.vocab_size, c.hidden
    out: Shapes = {"wte.weight": (v, h), **({"wpe.weight": (c.context, h)} if c.pos == "learned" else {})}
    for i in range(c.num_layers):
        b = f"blocks.{i}"
        for part in (norm(f"{b}.ln_1", h), linear(f"{b}.attn.c_attn", h, 3 * h), linear(f"{b}.attn.c_proj", h, h),
                     norm(f"{b}.ln_2", h), linear(f"{b}.mlp.c_fc", h, 4 * h), linear(f"{b}.mlp.c_proj", 4 * h, h)):
            out.update(part)
    return {**out, **norm("ln_f", h), **linear("lm_head", h, v, bias=False)}  # tied: the same as wte
