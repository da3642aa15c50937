"""The models: one interface (``LanguageModel``, base.py) and one folder per family of architectures
(ngram/, recurrent/, minrnn/, transformer/, ...), each declaring itself (family.py); the registry
(registry.py) finds them. Nothing here imports torch until a model class is asked for."""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .config import ModelConfig
from .family import PRESET_NAMES, VIEWS, Family, option
from .registry import archs, default_arch, families, family, listed, showing

if TYPE_CHECKING:
    from .base import LanguageModel

# Model classes need torch: each is imported on first use (PEP 562). The families' own classes are
# reached through ``family(arch).model_class(arch)``; these names stay for the code that imports them.
_CLASSES = {"LanguageModel": ".base:LanguageModel", "MinRNNLM": ".minrnn.model:MinRNNLM",
            "NGramModel": ".ngram.model:NGramModel", "RecurrentLM": ".recurrent.model:RecurrentLM",
            "ScratchRNN": ".recurrent.model:ScratchRNN", "KVCache": ".transformer.model:KVCache",
            "TransformerLM": ".transformer.model:TransformerLM"}

__all__ = ["ARCHS", "PRESET_NAMES", "VIEWS", "Family", "KVCache", "LanguageModel", "MinRNNLM", "ModelConfig",
           "NGramModel", "RecurrentLM", "ScratchRNN", "TransformerLM", "archs", "build_model", "default_arch",
           "expected_shapes", "families", "family", "listed", "model_class", "option", "preset_config", "showing",
           "tensor_shapes"]


def __getattr__(name: str):
    if name == "ARCHS":  # asked afresh each time: families may be added (registry.refresh)
        return archs()
    if name not in _CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, _, attr = _CLASSES[name].partition(":")
    value = getattr(importlib.import_module(module, __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLASSES, "ARCHS"})


def preset_config(arch: str, preset: str = "small", vocab_size: int = 0, **overrides) -> ModelConfig:
    """A ModelConfig from an architecture's preset, with ``overrides`` applied. None values are ignored,
    and so is an option the family does not have when it is at the default the families that have it
    declare (a form or a command line that sends every option); any other value of one is refused."""
    fam = family(arch)
    values = dict(fam.preset(arch, preset)["model"])
    mine = set(fam.option_names())
    for name, value in overrides.items():
        if value is None:
            continue
        if name in mine:
            values[name] = value
        elif not _at_others_default(name, value):
            users = [a for f in families() if name in f.option_names() for a in f.archs]
            if not users:
                raise ConfigError(f"no model has an option '{name}'")
            raise ConfigError(f"--{name.replace('_', '-')} applies to {listed(users)}, not to {arch}")
    return ModelConfig(arch=arch, vocab_size=vocab_size, **values).validate()


def _at_others_default(name: str, value) -> bool:
    defaults = [f.default for fam in families() for f in fam.option_fields() if f.name == name]
    return bool(defaults) and all(value == d and type(value) is type(d) for d in defaults)


def model_class(arch: str) -> type[LanguageModel]:
    """The class that implements ``arch`` (it imports torch); ``family(arch)`` says what it can do
    without torch. ConfigError for an unknown architecture."""
    return family(arch).model_class(arch)


def build_model(config: ModelConfig) -> LanguageModel:
    config.validate()
    if config.vocab_size < 1:
        raise ConfigError("the model needs a vocabulary size")
    return model_class(config.arch)(config)


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]] | None:
    """The shape of every tensor a model with ``config`` saves, found without allocating anything;
    None for models whose tensors' sizes depend on the data (the n-gram's counts)."""
    return tensor_shapes(config) if config.family.fixed_shapes else None


def tensor_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensors of a freshly built model with ``config`` (its ``state_dict``: names and shapes), from
    the config alone where the family says (``Family.shapes``, no torch), else from the model built on
    the meta device (nothing allocated)."""
    known = config.family.shapes(config)
    if known is not None:
        return known
    import torch

    with torch.device("meta"):
        model = build_model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
