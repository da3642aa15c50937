"""How ``lmcore bench`` measures this family (lmcore/bench/plan.py reads it; nothing here imports torch):
the rows ``--quick`` keeps, the held-out loss timed on a GPU, ``--shared``'s model and compilation.
Its reference is the same module in a plain fp32 loop (the bench's default)."""
from __future__ import annotations

QUICK = {"transformer": ("train fused", "generate")}

TIME_TO_LOSS = {"transformer": {
    "cuda": ({"target": 1.47, "limit_minutes": 3, "reference": False, "eval_every": 250, "steps": 2000},),
}}

SHARED = {"transformer": False}  # --shared measures it by default; a full CPU run does not


def compiles(arch: str, impl: str) -> bool:
    return True
