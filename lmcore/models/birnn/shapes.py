"""The birnn models' tensors from their config, torch-free (as torch.nn.RNN/GRU/LSTM name them)."""
from __future__ import annotations

from ..shapes import Shapes, linear

GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gates of a recurrent cell (rows of its weights, in hidden sizes)


def of(c) -> Shapes:
    v, h, n_in = c.vocab_size, c.hidden, c.embed or c.hidden
    out: Shapes = {"embedding.weight": (v, n_in)}
    g = GATES[c.cell] * h
    for direction in ("ltr", "rtl"):
        for layer in range(c.num_layers):
            out[f"{direction}.weight_ih_l{layer}"] = (g, n_in if layer == 0 else h)
            out[f"{direction}.weight_hh_l{layer}"] = (g, h)
            out[f"{direction}.bias_ih_l{layer}"] = (g,)
            out[f"{direction}.bias_hh_l{layer}"] = (g,)
    return {**out, **linear("next_head", h, v), **linear("previous_head", h, v), **linear("blank_head", 2 * h, v)}
