"""The seq2seq models' tensors from their config, torch-free."""
from __future__ import annotations

from ..shapes import Shapes, linear

GATES = {"gru": 3, "lstm": 4}


def _rnn(name: str, cell: str, n_in: int, hidden: int, layers: int) -> Shapes:
    g, out = GATES[cell] * hidden, {}
    for i in range(layers):
        out.update({f"{name}.weight_ih_l{i}": (g, n_in if i == 0 else hidden), f"{name}.weight_hh_l{i}": (g, hidden),
                    f"{name}.bias_ih_l{i}": (g,), f"{name}.bias_hh_l{i}": (g,)})
    return out


def of(c) -> Shapes:
    v, e, h = c.vocab_size, c.embed, c.hidden
    out: Shapes = {"src_embedding.weight": (v, e), **_rnn("encoder", c.cell, e, h, c.num_layers),
                   "tgt_embedding.weight": (v, e), **_rnn("decoder", c.cell, e + h, h, c.num_layers)}
    if c.attention == "additive":
        out.update({**linear("attention.W_k", h, h, bias=False), **linear("attention.W_q", h, h, bias=False),
                    **linear("attention.w_v", h, 1, bias=False)})
    return {**out, **linear("head", h, v)}
