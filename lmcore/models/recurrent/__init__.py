"""The recurrent family: RNN, GRU and LSTM language models, ``fused`` (torch.nn.RNN/GRU/LSTM, cuDNN on a
GPU) or ``scratch`` (the gate equations written out), holding the same weights (model.py); on the CPU
they generate through the cell equations in numpy (decoder.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..family import Family, option
from ..options import dropout, hidden, num_layers


def _forget_bias(value) -> str | None:
    if isinstance(value, (int, float)) and -100 <= value <= 100:  # NaN fails too
        return None
    return f"the forget-gate bias must be a number between -100 and 100 (got {value})"


def _fused_label() -> str:
    """Asks torch whether a GPU is here (only when the dialog opens: the app starts without torch)."""
    import torch

    return "fused (torch.nn" + (", cuDNN on this GPU)" if torch.cuda.is_available() else ")")


@dataclass
class Options:
    impl: str = option("fused", "recurrent models: fused (torch.nn, cuDNN) or scratch", choices=("fused", "scratch"),
                       form="Implementation", labels={"fused": _fused_label, "scratch": "scratch (gate equations)"})
    num_layers: int = num_layers()
    hidden: int = hidden(256, "recurrent state size")
    embed: int = option(0, "embedding size of recurrent models (0: the state size)", range=(0, 16384))
    input: str = option("embed", "embed (a learnt table) or onehot (as in the chapters)", choices=("embed", "onehot"))
    dropout: float = dropout()
    bidirectional: bool = option(False, "(cannot generate: for the chapters' lesson)")
    forget_bias: float = option(1.0, "LSTM forget-gate bias at init (0 keeps PyTorch's init)", check=_forget_bias,
                                archs=("lstm",))


CANNOT_GENERATE = ("a bidirectional model cannot generate text: its backward direction reads the tokens that come "
                   "after the one it predicts, which do not exist yet when generating (its low training perplexity "
                   "comes from that leak). Train a unidirectional model to generate.")


READS_AHEAD = ("it reads the token it predicts: its backward direction has already read it, so its validation "
               "perplexity is near 1 and measures nothing (a birnn uses both directions honestly)")


class RecurrentFamily(Family):
    def cannot_generate(self, config) -> str | None:
        return CANNOT_GENERATE if config.bidirectional else None

    def reads_ahead(self, config) -> str | None:
        return READS_AHEAD if config.bidirectional else None

    def shows(self, config, view: str) -> bool:
        return view in self.views and not config.bidirectional

    def describe(self, config) -> str:
        return f"{config.arch}/{config.impl}"


def _recipe(small_lr: float, base_dropout: float = 0.2, small_batch: int = 32) -> dict[str, dict]:
    """RNN, GRU and LSTM share sizes; on the CPU the gated cells take a higher learning rate. ``small`` is
    sized for a 2-core CPU (readable text on timemachine within about 3 minutes); ``base`` is the GPU
    recipe (tinyshakespeare, batch 64, sequence 256)."""
    return {
        "tiny": {"model": {"num_layers": 1, "hidden": 64, "embed": 32},
                 "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
        "small": {"model": {"num_layers": 2, "hidden": 256, "embed": 64, "dropout": 0.0},
                  "train": {"batch_size": small_batch, "seq_len": 64, "lr": small_lr, "steps": 1500}},
        "base": {"model": {"num_layers": 2, "hidden": 512, "embed": 128, "dropout": base_dropout},
                 "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 5000}},
    }


def _sizes(small_lr: float, small_batch: int = 32) -> tuple[dict, ...]:
    """What ``--preset auto`` chooses from (lmcore/training/auto_preset.py), smallest first: the ``small``
    preset (2×256) with two sizes below it and two above, the wider ones at a lower rate."""
    def size(layers, hidden, embed, batch, seq, lr):
        return {"model": {"num_layers": layers, "hidden": hidden, "embed": embed},
                "train": {"batch_size": batch, "seq_len": seq, "lr": lr}}
    return (size(1, 128, 32, small_batch, 64, small_lr), size(2, 192, 64, small_batch, 64, small_lr),
            size(2, 256, 64, small_batch, 64, small_lr), size(2, 384, 96, 32, 64, small_lr * 2 / 3),
            size(2, 512, 128, 32, 128, small_lr / 3))


_BY_REPETITION = ((15.0, 0.0), (35.0, 0.1), (45.0, 0.2), (math.inf, 0.3))

FAMILY = RecurrentFamily(
    name="recurrent",
    archs={"rnn": "RNN: the plain tanh recurrent network",
           "gru": "GRU: gated recurrent units (reset and update gates)",
           "lstm": "LSTM: long short-term memory cells (gates i, f, g, o and a cell state)"},
    labels={"rnn": "RNN", "gru": "GRU", "lstm": "LSTM"},
    options=Options, position=10, default="lstm",
    # small lstm: tinyshakespeare in 2.2 minutes of a 2-core CPU, validation loss 1.492 (batch 32, lr 1e-2: 1.521)
    # --preset auto's dropout by repetition (auto_preset.repetition): 0.1 from 15 where the rule's own table starts
    # at 25 (2-core AMD EPYC, timemachine, 5 minutes: the gru's 2×256 at R 19.9 reached 1.536 without dropout,
    # worse than its 1.487 at 2.2 minutes (R 9.2), and 1.453 with 0.1, 1.429 with 0.2; the gru's 2×192 at R 8.4
    # 1.519 without, 1.551 with 0.1; the transformer, whose table it was, lost 0.11 with 0.1 at R 20.2); the lstm's
    # from 7 (same machine, the rule's sizes with and without 0.1, 2026-12-05/06: tinyshakespeare 10 minutes, 2×384 at
    # R 7.4, 1.438 and 1.444 without, 1.427 and 1.422 with; 5 minutes, 2×256 at R 7.3, 1.462 and 1.458; timemachine
    # 1 minute, 2×256 at R 10.2, 1.510 and 1.527 without, 1.505 and 1.488 with), where the gru and the rnn gained
    # nothing below 15 (the gru's 2×384 at R 6.6, 10 minutes of tinyshakespeare, 1.432 without and 1.443 with; its
    # 2×256 at R 6.9, 1 minute of timemachine, 1.470 and 1.478 against 1.464 and 1.476; the rnn's 2×384 at R 10,
    # 1.493 and 1.491 without, 1.511 and 1.488 with, its 2×512 at R 12.2 1.485 against 1.487)
    dropout_by_repetition={"rnn": _BY_REPETITION, "gru": _BY_REPETITION,
                           "lstm": ((7.0, 0.0),) + _BY_REPETITION[1:]},
    presets={"rnn": _recipe(small_lr=5e-3), "gru": _recipe(small_lr=1e-2),
             "lstm": _recipe(small_lr=1.5e-2, base_dropout=0.25, small_batch=24)},
    sizes={"rnn": _sizes(5e-3), "gru": _sizes(1e-2), "lstm": _sizes(1.5e-2, small_batch=24)},
    package=__name__, model=".model:RecurrentLM", decode=".decoder:choose", tensors=".shapes:of",
    stateful=True, views={"units", "gradients"},
    lessons={"gradients": (("rnn", "rnn", {}), ("gru", "gru", {}), ("lstm, forget bias 0", "lstm", {"forget_bias": 0.0}),
                           ("lstm, forget bias 1", "lstm", {"forget_bias": 1.0}))})
