"""The model zoo: one interface (``LanguageModel``) for n-gram, RNN, GRU, LSTM and transformer."""
from __future__ import annotations

from ..errors import ConfigError
from .base import LanguageModel
from .config import ARCHS, IMPLS, RECURRENT, ModelConfig
from .ngram import NGramModel
from .presets import NAMES as PRESET_NAMES
from .presets import PRESETS
from .rnn import RecurrentLM, ScratchRNN
from .transformer import KVCache, TransformerLM

__all__ = ["ARCHS", "IMPLS", "RECURRENT", "PRESETS", "PRESET_NAMES", "KVCache", "LanguageModel",
           "ModelConfig", "NGramModel", "RecurrentLM", "ScratchRNN", "TransformerLM", "build_model",
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


def build_model(config: ModelConfig) -> LanguageModel:
    config.validate()
    if config.vocab_size < 1:
        raise ConfigError("the model needs a vocabulary size")
    if config.arch == "ngram":
        return NGramModel(config)
    if config.arch == "transformer":
        return TransformerLM(config)
    return RecurrentLM(config)
