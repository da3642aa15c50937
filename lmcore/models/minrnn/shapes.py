"""The minRNN models' tensors from their config, torch-free."""
from __future__ import annotations

from ..shapes import Shapes, linear, norm

GATE_ROWS = {"mingru": 2, "minlstm": 3}  # the projection's rows, in hidden sizes: (z, h~) or (f, i, h~)


def of(c) -> Shapes:
    v, h = c.vocab_size, c.hidden
    out: Shapes = {"embedding.weight": (v, h)}
    for i in range(c.num_layers):
        b = f"blocks.{i}"
        for part in (norm(f"{b}.ln_1", h), linear(f"{b}.rnn.proj", h, GATE_ROWS[c.arch] * h),
                     linear(f"{b}.rnn.out", h, h), norm(f"{b}.ln_2", h), linear(f"{b}.mlp.0", h, 2 * h),
                     linear(f"{b}.mlp.2", 2 * h, h)):
            out.update(part)
    return {**out, **norm("ln_f", h), **linear("head", h, v)}
