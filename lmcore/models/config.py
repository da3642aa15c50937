"""ModelConfig: the hyper-parameters that rebuild a model exactly (saved in the checkpoint metadata)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import ConfigError
from ..store.typed import from_mapping

ARCHS = ("ngram", "rnn", "gru", "lstm", "mingru", "minlstm", "transformer")
RECURRENT = ("rnn", "gru", "lstm")
MIN_RNNS = ("mingru", "minlstm")
IMPLS = ("fused", "scratch")
MAX_VOCAB = 1 << 22
MAX_EPSILON = 1e30  # n-gram smoothing: far above any use (it flattens to the lower order), within float32's range
# Upper bounds well above any preset: a damaged or hostile config never asks for hundreds of GB.
LIMITS = {"num_layers": (1, 64), "hidden": (1, 16384), "embed": (0, 16384), "heads": (1, 256),
          "context": (1, 65536), "order": (1, 10), "vocab_size": (0, MAX_VOCAB)}


@dataclass(frozen=True)
class Traits:
    """What an architecture's model can do, known without importing torch (reading a checkpoint needs
    it). The model class says the same in its class attributes; tests check that they agree."""

    stateful: bool = False      # training carries a state across sequential batches (recurrent models)
    trainable: bool = True      # trained by gradient descent (the n-gram is trained by counting)
    fixed_shapes: bool = True   # the saved tensors' shapes follow from the config alone (not the n-gram's)


TRAITS = {"ngram": Traits(trainable=False, fixed_shapes=False), "transformer": Traits(),
          **{a: Traits(stateful=True) for a in (*RECURRENT, *MIN_RNNS)}}


def traits(arch: str) -> Traits:
    if arch not in TRAITS:
        raise ConfigError(f"unknown architecture '{arch}': use one of {', '.join(ARCHS)}")
    return TRAITS[arch]


@dataclass
class ModelConfig:
    arch: str
    vocab_size: int = 0
    # recurrent models
    impl: str = "fused"          # fused = torch.nn.RNN/GRU/LSTM (cuDNN on GPU); scratch = gate equations
    num_layers: int = 2
    hidden: int = 256            # recurrent state size; the transformer's width
    embed: int = 0               # input embedding size (0: same as hidden)
    input: str = "embed"         # embed | onehot (as in the chapters)
    dropout: float = 0.0
    bidirectional: bool = False
    forget_bias: float = 1.0     # LSTM forget-gate bias at init (0 keeps PyTorch's init)
    # transformer
    heads: int = 4
    context: int = 128
    pos: str = "learned"         # learned | rotary
    tie_weights: bool = True
    # n-gram
    order: int = 3
    epsilon: float = 1.0

    def validate(self) -> "ModelConfig":
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown architecture '{self.arch}': use one of {', '.join(ARCHS)}")
        if self.impl not in IMPLS:
            raise ConfigError(f"unknown implementation '{self.impl}': use fused or scratch")
        if self.input not in ("embed", "onehot"):
            raise ConfigError("input must be 'embed' or 'onehot'")
        if self.pos not in ("learned", "rotary"):
            raise ConfigError("positions must be 'learned' or 'rotary'")
        for name, (lo, hi) in LIMITS.items():
            if not lo <= getattr(self, name) <= hi:
                raise ConfigError(f"{name.replace('_', ' ')} must be between {lo} and {hi:,} "
                                  f"(got {getattr(self, name)})")
        if self.bidirectional and self.arch not in RECURRENT:
            raise ConfigError(f"--bidirectional applies to rnn, gru and lstm, not to {self.arch}")
        if not (isinstance(self.forget_bias, (int, float)) and -100 <= self.forget_bias <= 100):  # NaN fails too
            raise ConfigError(f"the forget-gate bias must be a number between -100 and 100 (got {self.forget_bias})")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("dropout must be in [0, 1)")
        if self.arch == "transformer" and self.hidden % self.heads:
            raise ConfigError(f"the width ({self.hidden}) must be a multiple of the heads ({self.heads})")
        if self.arch == "transformer" and self.pos == "rotary" and (self.hidden // self.heads) % 2:
            raise ConfigError("rotary positions need an even head size")
        if self.arch == "ngram" and not (isinstance(self.epsilon, (int, float))
                                         and 0 < self.epsilon <= MAX_EPSILON):  # NaN fails too
            raise ConfigError(f"epsilon (the n-gram's smoothing) must be a number > 0 and at most 1e30 (got "
                              f"{self.epsilon}); 1 is add-one smoothing")
        if self.arch == "ngram" and self.vocab_size > 1 and float(self.vocab_size) ** (self.order - 1) >= 2 ** 62:
            raise ConfigError(f"n-gram order {self.order} is too high for a vocabulary of {self.vocab_size:,}: "
                              f"use a lower --order")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """From JSON: wrong types raise ValueError, out-of-range values ConfigError."""
        return from_mapping(cls, d, "model").validate()
