"""The model zoo: one interface (``LanguageModel``) for n-gram, RNN, GRU, LSTM and transformer."""
from __future__ import annotations

from ..errors import ConfigError
from .base import LanguageModel
from .config import ARCHS, IMPLS, RECURRENT, ModelConfig
from .minrnn import MIN_RNNS, MinRNNLM
from .ngram import NGramModel
from .presets import NAMES as PRESET_NAMES
from .presets import PRESETS
from .rnn import RecurrentLM, ScratchRNN
from .transformer import KVCache, TransformerLM

__all__ = ["ARCHS", "IMPLS", "RECURRENT", "PRESETS", "PRESET_NAMES", "KVCache", "LanguageModel", "MIN_RNNS", "MinRNNLM",
           "ModelConfig", "NGramModel", "RecurrentLM", "ScratchRNN", "TransformerLM", "build_model", "expected_shapes",
           "model_class",
           "preset_config"]


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
    """The class that implements ``arch``: ask it what the model can do (``stateful``, ``trainable``)."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture '{arch}': use one of {', '.join(ARCHS)}")
    return {"ngram": NGramModel, "transformer": TransformerLM, **{a: MinRNNLM for a in MIN_RNNS}}.get(arch, RecurrentLM)


def build_model(config: ModelConfig) -> LanguageModel:
    config.validate()
    if config.vocab_size < 1:
        raise ConfigError("the model needs a vocabulary size")
    return model_class(config.arch)(config)


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]] | None:
    """The shape of every tensor a model with ``config`` saves, found without allocating anything
    (the model is built on the meta device); None for models whose tensors' sizes depend on the data
    (the n-gram's counts)."""
    import torch

    cls = model_class(config.arch)
    if not cls.fixed_shapes:
        return None
    with torch.device("meta"):
        model = build_model(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}
