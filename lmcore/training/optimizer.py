"""The optimizer and its learning-rate schedule."""
from __future__ import annotations

import math

import torch

from ..models import LanguageModel
from .config import TrainConfig


def lr_at(cfg: TrainConfig, step_in_run: int, progress: float) -> float:
    """Linear warm-up over the run's first steps, then cosine decay to ``min_lr_ratio`` of the peak."""
    warm = cfg.warmup if cfg.warmup is not None else min(100, max(1, (cfg.steps or 2000) // 20))
    if step_in_run < warm:
        return cfg.lr * (step_in_run + 1) / warm
    if cfg.schedule == "constant":
        return cfg.lr
    p = min(1.0, max(0.0, progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> float:
    for g in opt.param_groups:
        g["lr"] = lr
    return lr


def make_optimizer(model: LanguageModel, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), **extra)
