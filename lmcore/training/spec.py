"""RunSpec: one run of training, typed. The command line (``lmcore train``), ``lmcore.train()`` and the
app's new-model dialog each build one, the same one for the same choices, and hand it to
``Trainer.prepare``.

A new model's spec holds its family and options (a ModelConfig, its preset applied), the preset, the
tokenizer, the corpus and the training recipe given; a saved model's (``RunSpec.continued``) holds only
the corpus (when it moved), its encoding and the budget of the run. Either may fix the CPU threads the run
uses (``threads``; None: the cores other programs leave free, lmcore/training/threads.py). What a spec leaves out comes from the
preset's recipe and TrainConfig's DEFAULTS (new) or from the saved run (continued). Every spec is
checked when it is made: a bad value is one ConfigError line. Torch-free."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..data.text import Tokenizer
from ..errors import ConfigError
from ..models import ModelConfig, PRESET_NAMES, default_arch, preset_config
from ..models.family import AUTO
from ..store.model_store import validate_name
from .config import TrainConfig

# a new model's defaults, written here only (its architecture: the one a family declares, default_arch())
DEFAULT_PRESET = "auto"   # chosen for the corpus and the budget (lmcore/training/auto_preset.py)
DEFAULT_TOKENS = "char"
DEFAULT_PREP = "raw"
AUTO_BASE = "small"  # preset auto's sizes are written over this preset (lmcore/training/auto_preset.py)


@dataclass(frozen=True)
class RunSpec:
    name: str
    model: ModelConfig | None = None     # a new model's family and options; None: continue the saved model
    preset: str | None = None            # a new model's size: where its options and recipe start
    tokenizer: Tokenizer | None = None   # a new model's tokenization (default: characters, raw text)
    corpus: str | None = None            # registry name or path (continuing: None reads the saved one's)
    encoding: str | None = None          # of a local corpus (default utf-8; continuing: as trained)
    train: TrainConfig = field(default_factory=TrainConfig)  # the recipe given (continuing: steps/minutes more)
    threads: int | None = None           # CPU threads the run uses (None or "auto": the free cores)
    given: tuple = ()                    # preset auto: the model options given, ((name, value), ...), kept

    def __post_init__(self) -> None:
        validate_name(self.name)
        object.__setattr__(self, "threads", check_threads(self.threads))
        if not isinstance(self.train, TrainConfig):
            raise ConfigError(f"a run's train is a TrainConfig, not {type(self.train).__name__}")
        self.train.validate()
        if self.model is None:
            if self.preset is not None or self.tokenizer is not None:
                raise ConfigError(f"continuing '{self.name}' keeps its size and tokenizer: give only a corpus, "
                                  f"an encoding and how much more to train")
            return
        if not isinstance(self.model, ModelConfig):
            raise ConfigError(f"a run's model is a ModelConfig, not {type(self.model).__name__}")
        self.model.validate()
        if self.preset not in PRESET_NAMES + (AUTO,):
            raise ConfigError(f"unknown preset {self.preset!r}: use one of {', '.join(PRESET_NAMES + (AUTO,))}")
        if not self.corpus:
            raise ConfigError("a new model needs a corpus: a registry name (e.g. pythondocs) or the path of a "
                              "text file or folder")
        if self.tokenizer is None:
            object.__setattr__(self, "tokenizer", Tokenizer(DEFAULT_TOKENS, DEFAULT_PREP))

    @classmethod
    def new(cls, name: str, corpus: str | None, *, arch: str | None = None, preset: str | None = None,
            options: dict | None = None, tokens: str | None = None, prep: str | None = None,
            vocab_size: int | None = None, encoding: str | None = None,
            train: TrainConfig | None = None, threads: int | str | None = None) -> "RunSpec":
        """A new model: ``arch`` at size ``preset``, its preset's options changed by ``options`` (e.g.
        ``{"hidden": 128}``; None values are not given; preset "auto": chosen when the run is prepared,
        the options given kept); ``tokens`` char, word or bpe (``vocab_size``: a
        BPE's size); ``train`` the recipe given; ``threads`` the CPU threads. None takes the default."""
        preset = preset or DEFAULT_PRESET
        extra = {} if vocab_size is None else {"vocab_size": vocab_size}
        given = tuple(sorted((k, v) for k, v in (options or {}).items() if v is not None)) if preset == AUTO else ()
        model = preset_config(arch or default_arch(), AUTO_BASE if preset == AUTO else preset, **(options or {}))
        return cls(name, model=model, preset=preset,
                   tokenizer=Tokenizer(tokens or DEFAULT_TOKENS, prep or DEFAULT_PREP, **extra), corpus=corpus,
                   encoding=encoding, train=train or TrainConfig(), threads=threads, given=given)

    @classmethod
    def continued(cls, name: str, *, corpus: str | None = None, encoding: str | None = None,
                  train: TrainConfig | None = None, threads: int | str | None = None) -> "RunSpec":
        """More of saved model ``name``: its interrupted run, or ``train.steps`` / ``train.minutes`` more."""
        return cls(name, corpus=corpus, encoding=encoding, train=train or TrainConfig(), threads=threads)

    @property
    def resume(self) -> bool:
        """Whether this run continues a saved model."""
        return self.model is None

    def with_budget(self, steps: int | None, minutes: float | None) -> "RunSpec":
        """This spec with another budget (both None: the same)."""
        if steps is None and minutes is None:
            return self
        return replace(self, train=replace(self.train, steps=steps, minutes=minutes))

    def with_threads(self, threads: int | str | None) -> "RunSpec":
        """This spec with another CPU thread count (None or "auto": the free cores)."""
        return replace(self, threads=threads)


def check_threads(n) -> int | None:
    """``None``/``"auto"`` (choose from the free cores) or a whole number of threads ≥ 1."""
    if n is None or n == "auto":
        return None
    try:
        value = int(n)
        if value != float(n):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"threads must be a whole number of at least 1, or auto (got {n!r})") from None
    if value < 1:
        raise ConfigError(f"threads must be at least 1 (got {value}); auto chooses from the free cores")
    return value


def budget_from_text(steps: str, minutes: str) -> tuple[int | None, float | None]:
    """A training budget typed in a form (an empty field: not given), checked as every budget is."""
    try:
        s = int(steps) if steps.strip() else None
        m = float(minutes) if minutes.strip() else None
    except ValueError:
        raise ConfigError("steps must be a whole number and minutes a number") from None
    TrainConfig(steps=s, minutes=m).validate()
    return s, m
