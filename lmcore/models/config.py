"""ModelConfig: the hyper-parameters that rebuild a model exactly (saved in the checkpoint metadata).

A config is the architecture, the vocabulary size and the options its family declares (a dataclass
instance, ``config.options``; ``config.hidden`` reads ``config.options.hidden``). It is saved as one flat
object, {"arch": ..., "vocab_size": ..., option: value, ...}; reading one ignores keys the family does not
declare (checkpoints written before families held every family's options)."""
from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import ConfigError
from ..store.typed import check_value, from_mapping
from . import registry

MAX_VOCAB = 1 << 22


@dataclasses.dataclass(init=False, eq=False, repr=False)
class ModelConfig:
    """``ModelConfig(arch, vocab_size=0, **options)``: options the family does not declare are refused
    (ConfigError), missing ones take the declared defaults. ``options`` may instead be given whole, as an
    instance of the family's options dataclass (``dataclasses.replace(config)`` copies a config so)."""

    arch: str
    vocab_size: int
    options: Any

    def __init__(self, arch: str, vocab_size: int = 0, options: Any = None, **values):
        fam = registry.family(arch)
        unknown = sorted(set(values) - set(fam.option_names()))
        if unknown:
            raise ConfigError(f"{arch} models have no option '{unknown[0]}' (theirs: "
                              f"{', '.join(fam.option_names()) or 'none'})")
        if options is not None:
            if not isinstance(options, fam.options):
                raise TypeError(f"{arch} models take {fam.options.__qualname__} options")
            values = {**dataclasses.asdict(options), **values}
        object.__setattr__(self, "arch", arch)
        object.__setattr__(self, "vocab_size", vocab_size)
        object.__setattr__(self, "options", fam.options(**values))

    @property
    def family(self) -> registry.Family:
        return registry.family(self.arch)

    def __getattr__(self, name: str) -> Any:
        if name in _OWN or name.startswith("__"):  # not set yet (copy, pickle)
            raise AttributeError(name)
        try:
            return getattr(self.options, name)
        except AttributeError:
            raise AttributeError(f"{self.arch} models have no option '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN:
            object.__setattr__(self, name, value)
        elif name in self.family.option_names():
            object.__setattr__(self, "options", dataclasses.replace(self.options, **{name: value}))
        else:
            raise AttributeError(f"{self.arch} models have no option '{name}'")

    def __eq__(self, other) -> bool:
        return isinstance(other, ModelConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(self.to_dict().items()))

    def __repr__(self) -> str:
        return "ModelConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"

    def __getstate__(self):
        return self.to_dict()

    def __setstate__(self, state: dict) -> None:
        other = ModelConfig(**state)
        for k in _OWN:
            object.__setattr__(self, k, getattr(other, k))

    def __copy__(self) -> ModelConfig:
        return ModelConfig(**self.to_dict())

    def __deepcopy__(self, memo) -> ModelConfig:
        return ModelConfig(**self.to_dict())

    def get(self, name: str, default: Any = None) -> Any:
        """The option ``name``, or ``default`` when the family has no such option."""
        return getattr(self.options, name, default)

    def replace(self, **changes) -> ModelConfig:
        """A copy with ``changes`` (arch and vocab_size included)."""
        return ModelConfig(**{**self.to_dict(), **changes})

    def validate(self) -> ModelConfig:
        if not isinstance(self.vocab_size, int) or isinstance(self.vocab_size, bool) \
                or not 0 <= self.vocab_size <= MAX_VOCAB:
            raise ConfigError(f"vocab size must be between 0 and {MAX_VOCAB:,} (got {self.vocab_size})")
        self.family.validate(self)
        return self

    def to_dict(self) -> dict:
        """The flat form checkpoints hold: arch, vocab_size and every option."""
        return {"arch": self.arch, "vocab_size": self.vocab_size, **dataclasses.asdict(self.options)}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        """From JSON: wrong types raise ValueError, an unknown architecture or out-of-range values
        ConfigError; keys the family does not declare are ignored."""
        if not isinstance(d, dict):
            raise ValueError(f"model must be an object (got {type(d).__name__})")
        arch = check_value("model.arch", d.get("arch"), str)
        fam = registry.family(arch)
        vocab_size = check_value("model.vocab_size", d.get("vocab_size", 0), int)
        options = from_mapping(fam.options, d, "model")
        return cls(arch, vocab_size, **dataclasses.asdict(options)).validate()


_OWN = ("arch", "vocab_size", "options")
