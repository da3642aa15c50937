"""The model zoo: one interface (``LanguageModel``) for n-gram, RNN, GRU, LSTM and transformer."""
from __future__ import annotations

import importlib

from ..errors import ConfigError
from . import shapes
from .config import ARCHS, IMPLS, MIN_RNNS, RECURRENT, TRAITS, ModelConfig, Traits, traits
from .presets import NAMES as PRESET_NAMES
from .presets import PRESETS

# The model classes need torch: each is imported on first use (PEP 562), so reading a checkpoint's
# config, presets and traits does not load it.
_CLASSES = {"LanguageModel": "base", "MinRNNLM": "minrnn", "NGramModel": "ngram", "RecurrentLM": "rnn",
            "ScratchRNN": "rnn", "KVCache": "transformer", "TransformerLM": "transformer"}

__all__ = ["ARCHS", "IMPLS", "RECURRENT", "PRESETS", "PRESET_NAMES", "KVCache", "LanguageModel", "MIN_RNNS", "MinRNNLM",
           "ModelConfig", "NGramModel", "RecurrentLM", "ScratchRNN", "TRAITS", "Traits", "TransformerLM", "build_model",
           "expected_shapes", "model_class", "preset_config", "tensor_shapes", "traits"]


def __getattr__(name: str):
    if name not in _CLASSES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_CLASSES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_CLASSES})


def preset_config(arch: str, preset: str = "small", vocab_size: int = 0, **overrides) -> ModelConfig:
    """A ModelConfig from an architecture's preset, with ``overrides`` applied (None values ignored)."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture '{arch}': use one of {', '.join(ARCHS)}")
    if preset not in PRESETS[arch]:
        raise ConfigError(f"unknown preset '{preset}': use one of {', '.join(PRESET_NAMES)}")
    values = dict(PRESETS[arch][preset]["model"])
    values.update({k: v for k, v in overrides.items() if v is not None})
    return ModelConfig(arch=arch, vocab_size=vocab_size, **values).validate()


def model_class(arch: str) -> type[LanguageModel]:
    """The class that implements ``arch`` (it imports torch): ask it what the model can do (``stateful``,
    ``trainable``), or ask ``traits(arch)``, which says the same without torch."""
    traits(arch)  # an unknown one: ConfigError
    names = {"ngram": "NGramModel", "transformer": "TransformerLM", **{a: "MinRNNLM" for a in MIN_RNNS}}
    return __getattr__(names.get(arch, "RecurrentLM"))


def build_model(config: ModelConfig) -> LanguageModel:
    config.validate()
    if config.vocab_size < 1:
        raise ConfigError("the model needs a vocabulary size")
    return model_class(config.arch)(config)


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]] | None:
    """The shape of every tensor a model with ``config`` saves, found without allocating anything;
    None for models whose tensors' sizes depend on the data (the n-gram's counts)."""
    return tensor_shapes(config) if traits(config.arch).fixed_shapes else None


def tensor_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The tensors of a freshly built model with ``config`` (its ``state_dict``: names and shapes), from
    the config alone where models/shapes.py describes the architecture (no torch), else from the model
    built on the meta device (nothing allocated)."""
    known = shapes.of(config)
    if known is not None:
        return known
    import torch

    with torch.device("meta"):
        model = build_model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
