"""The bert family: a small BERT (d2l's BERT chapter): a transformer encoder with no causal mask,
learned positions and segment embeddings, reading ``<cls> A <sep> B <sep>``, trained by masked language
modelling (15% of the tokens chosen: 80% ``<mask>``, 10% a random token, 10% kept) and next-sentence
prediction (half of the pairs with B swapped for another text's), both made from the windows every model
is trained on (batch.py). Its vocabulary is the text's, then ``<cls> <sep> <mask>``. Its validation loss
is the MLM loss (not comparable with the next-token losses); evaluations add the pseudo-perplexity and
the NSP accuracy (metrics.py). It fills blanks, all at once (``lmcore fill``: mask-predict, the most
confident first); it does not generate text."""
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
    context: int = option(128, "bert: the text tokens it reads (3 more positions for <cls> and <sep>)",
                          range=(2, 65536))
    dropout: float = dropout()


CANNOT_GENERATE = ("a bert model fills blanks (lmcore fill) and does not generate: it is trained to predict "
                   "masked tokens from both sides of them, and text written left to right has no right side yet")


class BertFamily(Family):
    def check(self, config) -> None:
        if config.hidden % config.heads:
            raise ConfigError(f"the width ({config.hidden}) must be a multiple of the heads ({config.heads})")

    def cannot_generate(self, config) -> str | None:
        return CANNOT_GENERATE

    def describe(self, config) -> str:
        return "bert"


PRESETS = {
    "tiny": {"model": {"num_layers": 2, "heads": 2, "hidden": 64, "context": 32},
             "train": {"batch_size": 16, "seq_len": 32, "lr": 2e-3, "steps": 300}},
    "small": {"model": {"num_layers": 4, "heads": 4, "hidden": 128, "context": 64, "dropout": 0.1},
              "train": {"batch_size": 32, "seq_len": 64, "lr": 1e-3, "steps": 1500}},
    "base": {"model": {"num_layers": 6, "heads": 6, "hidden": 384, "context": 128, "dropout": 0.1},
             "train": {"batch_size": 64, "seq_len": 128, "lr": 5e-4, "steps": 5000}},
}

FAMILY = BertFamily(
    name="bert",
    archs={"bert": "bert: a transformer encoder trained to fill masked tokens and tell next sentences "
                   "(validation loss: the masked-token loss, not comparable with next-token losses)"},
    labels={"bert": "BERT (fills blanks)"}, options=Options, presets={"bert": PRESETS}, position=40,
    package=__name__, model=".model:BertLM", tensors=".shapes:of", windowed=True, fills_both_ways=True,
    fills_jointly=True, next_token_loss=False, special_tokens=("<cls>", "<sep>", "<mask>"), views={"attention"}, exports=frozenset())
