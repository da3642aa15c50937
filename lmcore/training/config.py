"""TrainConfig: the training recipe. Every field is None until given; ``resolved`` fills the rest from the
preset's recipe, then from DEFAULTS (the one place defaults are written). A resumed run keeps its saved
recipe and takes only what the caller gave (``overlaid``): a value is never "given" by differing from a
default."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace

from ..errors import ConfigError
from ..safe_text import visible_line
from ..store.typed import from_mapping

SAMPLINGS = ("random", "sequential")  # how training draws its batches (lmcore.data makes them)

DEFAULTS = {
    "batch_size": 32, "seq_len": 64, "lr": 2e-3, "optimizer": "adamw", "weight_decay": 0.1, "clip": 1.0,
    "schedule": "cosine", "min_lr_ratio": 0.1, "eval_every": 200, "eval_tokens": 0, "device": "auto",
    "compile": False, "amp": True, "seed": 0, "val_fraction": 0.1, "log_every": 10, "sample_tokens": 100,
    "steps": 1000,
}
MAX_SEED = 2 ** 32 - 1
MAX_LR = 1000.0  # far above any rate that trains; a rate past float32's range would fail inside the optimizer
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d{1,3})?)$", re.IGNORECASE)


@dataclass
class TrainConfig:
    steps: int | None = None          # steps in this run (a continued run: steps more)
    minutes: float | None = None      # time budget of this run (a continued run: minutes more)
    batch_size: int | None = None
    seq_len: int | None = None
    lr: float | None = None
    optimizer: str | None = None      # adamw | sgd
    weight_decay: float | None = None
    clip: float | None = None         # gradient-norm clipping (0: off)
    warmup: int | None = None         # warm-up steps (None: 5% of the steps, at most 100)
    schedule: str | None = None       # cosine | constant
    min_lr_ratio: float | None = None
    eval_every: int | None = None
    eval_tokens: int | None = None    # 0: the whole validation set
    sampling: str | None = None       # random | sequential (default: sequential for stateful models)
    device: str | None = None
    compile: bool | None = None
    amp: bool | None = None           # bf16 autocast on CUDA
    seed: int | None = None
    val_fraction: float | None = None
    log_every: int | None = None
    sample_tokens: int | None = None
    fill_eval: bool | None = None     # fill accuracy at each evaluation (default: for models that fill both ways)

    def given(self) -> dict:
        """The fields that were set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    def resolved(self, arch: str, preset: str, stateful: bool) -> "TrainConfig":
        """Every field filled: what was given, then the preset's recipe, then DEFAULTS."""
        from ..models import family

        recipe = family(arch).preset(arch, "small" if preset == "auto" else preset)["train"]  # auto: over small
        c = replace(self)
        for f in fields(c):
            if getattr(c, f.name) is None and f.name not in ("steps", "minutes", "warmup", "sampling", "fill_eval"):
                setattr(c, f.name, recipe.get(f.name, DEFAULTS[f.name]))
        if c.steps is None and c.minutes is None:
            c.steps = recipe.get("steps", DEFAULTS["steps"])
        if c.sampling is None:
            c.sampling = "sequential" if stateful else "random"
        if c.fill_eval is None:  # scoring a forward model's candidates costs more than its validation loss
            c.fill_eval = family(arch).fills_both_ways
        return c.validate(stateful)

    def overlaid(self, given: "TrainConfig") -> "TrainConfig":
        """This (saved) recipe with the fields ``given`` sets replaced."""
        return replace(self, **given.given())

    def validate(self, stateful: bool = True) -> "TrainConfig":
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be at least 1 (got {self.steps})")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be > 0 (got {self.minutes})")
        for k in ("batch_size", "seq_len", "eval_every", "log_every"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise ConfigError(f"{k.replace('_', '-')} must be at least 1 (got {v})")
        for k in ("eval_tokens", "sample_tokens", "warmup"):
            v = getattr(self, k)
            if v is not None and v < 0:
                raise ConfigError(f"{k.replace('_', '-')} must be >= 0 (got {v})")
        if self.lr is not None and not 0 < self.lr <= MAX_LR:
            raise ConfigError(f"learning rate must be a number > 0 and at most {MAX_LR:,.0f} (got {self.lr})")
        if self.minutes is not None and not self.minutes < math.inf:
            raise ConfigError(f"minutes must be a finite number (got {self.minutes})")
        if self.optimizer is not None and self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"unknown optimizer '{self.optimizer}': use adamw or sgd")
        if self.schedule is not None and self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"unknown schedule '{self.schedule}': use cosine or constant")
        if self.sampling is not None and self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling '{self.sampling}': use random or sequential")
        if self.sampling == "sequential" and not stateful:
            raise ConfigError("sequential sampling carries a recurrent state: use it with rnn, gru or lstm")
        if self.clip is not None and not 0 <= self.clip < math.inf:
            raise ConfigError(f"clip must be >= 0 (got {self.clip})")
        if self.weight_decay is not None and not 0 <= self.weight_decay <= 10:
            raise ConfigError(f"weight decay must be in [0, 10] (got {self.weight_decay})")
        if self.min_lr_ratio is not None and not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"min-lr-ratio must be in [0, 1] (got {self.min_lr_ratio})")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise ConfigError(f"the validation fraction must be in (0, 1) (got {self.val_fraction})")
        if self.device is not None and not _DEVICE_RE.match(self.device):
            raise ConfigError(f"unknown device {visible_line(self.device)[:40]!r}: use auto, cpu, cuda, cuda:N or mps")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be between 0 and {MAX_SEED} (got {self.seed})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        return from_mapping(cls, d, "train")
