"""The recurrent models' tensors from their config, torch-free (as torch.nn.RNN/GRU/LSTM name them)."""
from __future__ import annotations

from ..shapes import Shapes, linear

GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # gates of a recurrent cell (rows of its weights, in hidden sizes)


def of(c) -> Shapes:
    v, h, dirs = c.vocab_size, c.hidden, 2 if c.bidirectional else 1
    out: Shapes = {}
    if c.input == "onehot":
        n_in = v
    else:
        n_in = c.embed or h
        out["embedding.weight"] = (v, n_in)
    g = GATES[c.arch] * h
    for layer in range(c.num_layers):
        for sfx in ("", "_reverse")[:dirs]:
            out[f"rnn.weight_ih_l{layer}{sfx}"] = (g, n_in if layer == 0 else h * dirs)
            out[f"rnn.weight_hh_l{layer}{sfx}"] = (g, h)
            out[f"rnn.bias_ih_l{layer}{sfx}"] = (g,)
            out[f"rnn.bias_hh_l{layer}{sfx}"] = (g,)
    return {**out, **linear("head", h * dirs, v)}
