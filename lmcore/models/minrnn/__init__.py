"""The minRNN family: minGRU and minLSTM ("Were RNNs All We Needed?", Feng et al., 2024), whose gates
read only the input, so a whole sequence trains as one parallel scan (model.py) while generation runs
the recurrence one token at a time (decoder.py: numpy on the CPU)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..family import Family
from ..options import dropout, hidden, num_layers


@dataclass
class Options:
    num_layers: int = num_layers()
    hidden: int = hidden(256, "state size (and the residual width)")
    dropout: float = dropout()


def _recipe() -> dict[str, dict]:
    """Trained as a parallel scan: longer sequences cost little more."""
    return {
        "tiny": {"model": {"num_layers": 2, "hidden": 64},
                 "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
        "small": {"model": {"num_layers": 3, "hidden": 192, "dropout": 0.0},
                  "train": {"batch_size": 32, "seq_len": 128, "lr": 3e-3, "steps": 1500}},
        "base": {"model": {"num_layers": 4, "hidden": 512, "dropout": 0.2},
                 "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 5000}},
    }


# what --preset auto chooses from (lmcore/training/auto_preset.py), smallest first
SIZES = tuple({"model": {"num_layers": n, "hidden": w}, "train": {"batch_size": b, "seq_len": s, "lr": lr}}
              for n, w, b, s, lr in ((2, 128, 32, 128, 3e-3), (3, 192, 32, 128, 3e-3), (4, 256, 32, 128, 3e-3),
                                     (4, 384, 32, 256, 2e-3)))

FAMILY = Family(
    name="minrnn",
    archs={"mingru": "minGRU: a GRU whose gates read only the input, trained as a parallel scan",
           "minlstm": "minLSTM: an LSTM whose gates read only the input, trained as a parallel scan"},
    labels={"mingru": "minGRU (parallel scan)", "minlstm": "minLSTM (parallel scan)"},
    options=Options, presets={"mingru": _recipe(), "minlstm": _recipe()},
    sizes={"mingru": SIZES, "minlstm": SIZES}, position=30,
    # --preset auto's dropout by repetition: 0.1 from 15, as the recurrent family's (2-core AMD EPYC, timemachine,
    # 5 minutes, 3×192 at 16×128: minGRU at R 15.0 1.535 without dropout, 1.484 with 0.1; minLSTM at R 18.3 1.528
    # without, 1.483 with 0.1; their small preset (3×192 at 32×128, no dropout) 1.508 and 1.500); 0.2 from 30, read
    # at the dropout's own speed (minLSTM, 10 minutes, 3×192 at 16×128: 0.1 at R 38 1.492 and 1.494, 0.2 at R 34 1.487)
    dropout_by_repetition=((15.0, 0.0), (30.0, 0.1), (45.0, 0.2), (math.inf, 0.3)),
    package=__name__, model=".model:MinRNNLM", decode=".decoder:choose", tensors=".shapes:of", stateful=True)
