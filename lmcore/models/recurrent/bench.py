"""How ``lmcore bench`` measures this family (lmcore/bench/plan.py reads it; nothing here imports torch):
the rows ``--quick`` keeps, the held-out losses timed, which models ``--shared`` runs, what is compiled
on a GPU, and the hand-written references ours are compared with (reference.py)."""
from __future__ import annotations

import math

# --quick: training throughput of the GRU (fused) and the LSTM (both implementations), the LSTM generating
QUICK = {"gru": ("train fused",), "lstm": ("train fused", "train scratch", "generate")}

# seconds until the validation loss reaches ``target`` (Bench.time_to_loss's keywords), per run kind
TIME_TO_LOSS = {"lstm": {
    "quick": ({"target": 3.0, "limit_minutes": 0.3, "eval_every": 10},),
    "cpu": ({"target": math.log(4.5), "limit_minutes": 4, "eval_every": 100},),
    "cuda": ({"target": 1.51, "limit_minutes": 2, "ref_limit_minutes": 1.5, "eval_every": 250},
             {"target": 1.45, "limit_minutes": 2, "reference": False, "eval_every": 250}),
}}

# --shared measures these by default; True: a full run on the CPU measures it too
SHARED = {"lstm": True}


def compiles(arch: str, impl: str) -> bool:
    """Whether the bench trains this model with torch.compile on a GPU (the scratch cells fuse; cuDNN's
    fused ones gain nothing)."""
    return impl == "scratch"


def reference(config, impl: str, vocab_size: int):
    """The model a user would write by hand for ``config`` (imports torch), and how to describe it."""
    from .reference import NaiveScratchLM, PlainRNNLM

    c = config
    args = (c.arch, vocab_size, c.embed or c.hidden, c.hidden, c.num_layers)
    if impl == "fused":
        return PlainRNNLM(*args), f"hand-written nn.{c.arch.upper()} + Adam loop"
    return NaiveScratchLM(*args), "naive per-gate, per-step loop"
