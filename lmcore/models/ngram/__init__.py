"""The n-gram family: counts of each token after the order-1 tokens before it, with the chapters'
Laplace smoothing backed off order by order (model.py). "Training" is counting, in one pass."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from ..family import Family, option

MAX_EPSILON = 1e30  # far above any use (it flattens to the lower order), within float32's range


def _epsilon(value) -> str | None:
    if isinstance(value, (int, float)) and 0 < value <= MAX_EPSILON:  # NaN fails too
        return None
    return (f"epsilon (the n-gram's smoothing) must be a number > 0 and at most 1e30 (got {value}); 1 is "
            f"add-one smoothing")


@dataclass
class Options:
    order: int = option(3, "n-gram order", range=(1, 10))
    epsilon: float = option(1.0, "n-gram Laplace smoothing", check=_epsilon)


class NGramFamily(Family):
    def check(self, config) -> None:
        if config.vocab_size > 1 and float(config.vocab_size) ** (config.order - 1) >= 2 ** 62:
            raise ConfigError(f"n-gram order {config.order} is too high for a vocabulary of "
                              f"{config.vocab_size:,}: use a lower --order")

    def size(self, config) -> str:
        return f"order {config.order}"


PRESETS = {
    "tiny": {"model": {"order": 2}, "train": {}},
    "small": {"model": {"order": 4, "epsilon": 0.5}, "train": {}},
    "base": {"model": {"order": 5, "epsilon": 0.5}, "train": {}},
}

FAMILY = NGramFamily(
    name="ngram", archs={"ngram": "n-gram: counts with Laplace smoothing, trained in one pass"},
    labels={"ngram": "n-gram (counts)"}, options=Options, presets={"ngram": PRESETS}, position=40, package=__name__,
    model=".model:NGramModel", tensors=".shapes:of", trainable=False, fixed_shapes=False)
