"""How ``lmcore bench`` measures this family (lmcore/bench/plan.py reads it; nothing here imports torch):
the rows ``--quick`` keeps, the held-out loss timed on a GPU, ``--shared``'s model and compilation, and
the published recipe ``--nanogpt`` trains beside preset auto.
Its reference is the same module in a plain fp32 loop (the bench's default)."""
from __future__ import annotations

QUICK = {"transformer": ("train fused", "generate")}

TIME_TO_LOSS = {"transformer": {
    "cuda": ({"target": 1.47, "limit_minutes": 3, "reference": False, "eval_every": 250, "steps": 2000},),
}}

# the published recipe `lmcore bench --nanogpt` trains beside preset auto (lmcore/bench/nanogpt.py): the CPU
# command of nanoGPT's README (--block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
# --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0) over config/train_shakespeare_char.py (learning rate
# 1e-3, warm-up 100 iterations, cosine to min_lr 1e-4, evaluated every 250) and train.py's defaults (weight
# decay 0.1, clipping at 1, AdamW betas 0.9/0.99 as the config sets them); learned positions, tied weights
REFERENCE = {"transformer": {
    "name": "nanoGPT's CPU recipe (4x128, 4 heads, context 64, batch 12, lr 1e-3, warm-up 100, cosine to 1e-4)",
    "model": {"num_layers": 4, "heads": 4, "hidden": 128, "context": 64, "pos": "learned", "tie_weights": True,
              "dropout": 0.0},
    "train": {"batch_size": 12, "seq_len": 64, "lr": 1e-3, "warmup": 100, "schedule": "cosine",
              "min_lr_ratio": 0.1, "weight_decay": 0.1, "clip": 1.0, "eval_every": 250},
}}

SHARED = {"transformer": False}  # --shared measures it by default; a full CPU run does not


def compiles(arch: str, impl: str) -> bool:
    return True
