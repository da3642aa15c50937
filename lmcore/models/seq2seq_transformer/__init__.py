"""The seq2seq-transformer family: d2l's transformer encoder-decoder (model.py) for pairs corpora. The
encoder reads the source under a mask of its valid length; the decoder's blocks attend to what they
wrote (masked self-attention) and to the encoder's output (cross-attention), multi-head, with learned or
sinusoidal positions. Decoding goes one token at a time through a key/value cache
(``encode``/``decode_step``); lmcore.generation.seq2seq_decode runs greedy and beam search on it."""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import ConfigError
from ..family import Family, option
from ..options import dropout, hidden, num_layers


@dataclass
class Options:
    num_layers: int = num_layers()
    hidden: int = hidden(256, "transformer width")
    heads: int = option(4, "attention heads", range=(1, 256))
    ffn: int = option(1024, "width of each block's feed-forward layer", range=(1, 65536))
    max_len: int = option(128, "the longest source and target, in tokens (longer sources are cut when "
                          "training, refused when generating)", range=(2, 4096), form="Max length")
    pos: str = option("sinusoidal", "positions: sinusoidal (d2l's) or learned", choices=("sinusoidal", "learned"))
    dropout: float = dropout(0.1)


class Seq2SeqTransformerFamily(Family):
    def check(self, config) -> None:
        if config.hidden % config.heads:
            raise ConfigError(f"the width ({config.hidden}) must be a multiple of the heads ({config.heads})")

    def cannot_fill(self, config) -> str | None:
        return "an encoder-decoder answers a source: it does not fill blanks"

    def size(self, config) -> str:
        o = config.options
        return f"{o.num_layers}+{o.num_layers} layers × {o.hidden}"


PRESETS = {
    "tiny": {"model": {"num_layers": 2, "heads": 2, "hidden": 64, "ffn": 128, "max_len": 64, "dropout": 0.0},
             "train": {"batch_size": 32, "seq_len": 32, "lr": 3e-3, "steps": 300, "eval_every": 100}},
    "small": {"model": {"num_layers": 2, "heads": 4, "hidden": 128, "ffn": 256, "max_len": 96, "dropout": 0.1},
              "train": {"batch_size": 64, "seq_len": 32, "lr": 2e-3, "steps": 1500, "eval_every": 250}},
    "base": {"model": {"num_layers": 3, "heads": 4, "hidden": 256, "ffn": 1024, "max_len": 128, "dropout": 0.2},
             "train": {"batch_size": 64, "seq_len": 32, "lr": 1e-3, "steps": 4000, "eval_every": 500}},
}

FAMILY = Seq2SeqTransformerFamily(
    name="seq2seq_transformer",
    archs={"seq2seq-transformer": "transformer encoder-decoder: masked self-attention and cross-attention "
                                  "over the source (d2l)"},
    labels={"seq2seq-transformer": "Transformer encoder-decoder"}, options=Options,
    presets={"seq2seq-transformer": PRESETS}, position=61,
    package=__name__, model=".model:Seq2SeqTransformer", tensors=".shapes:of", reads_pairs=True,
    views={"attention"}, exports=frozenset())
