"""The seq2seq family (d2l.ai, "Sequence-to-Sequence Learning" and "The Bahdanau Attention Mechanism"): a
recurrent encoder reads the source, a recurrent decoder writes the target one token at a time. With
``--attention none`` the encoder's final state is the context at every step; ``additive`` (Bahdanau) and
``dot`` (scaled dot-product) let the decoder's state query the encoder's outputs, with a softmax masked
to the source's valid length. Trained on pairs corpora (``reads_pairs``)."""
from __future__ import annotations

from dataclasses import dataclass

from ..family import Family, option
from ..options import dropout, hidden, num_layers

CELLS = ("gru", "lstm")
ATTENTIONS = ("none", "additive", "dot")


@dataclass
class Options:
    cell: str = option("gru", "recurrent cell of the encoder and the decoder", choices=CELLS, form="Cell")
    attention: str = option("additive", "how the decoder reads the source: none (the encoder's final state), "
                            "additive (Bahdanau) or dot (scaled dot-product)", choices=ATTENTIONS, form="Attention")
    num_layers: int = num_layers(2)
    embed: int = option(64, "token embedding size", range=(1, 8192))
    hidden: int = hidden(128)
    dropout: float = dropout()
    max_len: int = option(128, "the longest source and target, in tokens (longer sources are cut when "
                          "training, refused when generating)", range=(2, 4096), form="Max length")


def _recipe() -> dict[str, dict]:
    return {
        "tiny": {"model": {"num_layers": 1, "embed": 32, "hidden": 64},
                 "train": {"batch_size": 32, "seq_len": 32, "lr": 5e-3, "steps": 300, "eval_every": 100}},
        "small": {"model": {"num_layers": 2, "embed": 64, "hidden": 128, "dropout": 0.1},
                  "train": {"batch_size": 64, "seq_len": 32, "lr": 5e-3, "steps": 2000, "eval_every": 250}},
        "base": {"model": {"num_layers": 2, "embed": 256, "hidden": 512, "dropout": 0.2},
                 "train": {"batch_size": 64, "seq_len": 32, "lr": 2e-3, "steps": 10000, "eval_every": 500}},
    }


class Seq2SeqFamily(Family):
    def shows(self, config, view: str) -> bool:
        return view in self.views and config.attention != "none"

    def cannot_fill(self, config) -> str | None:
        return "a seq2seq model answers a source: it does not fill blanks"

    def describe(self, config) -> str:
        return f"seq2seq/{config.cell}+{config.attention}"

    def window(self, config) -> int | None:
        return None


FAMILY = Seq2SeqFamily(
    name="seq2seq",
    archs={"seq2seq": "encoder–decoder RNN (GRU or LSTM) with none, additive or dot attention, for pairs corpora"},
    labels={"seq2seq": "seq2seq (encoder–decoder RNN)"},
    options=Options, presets={"seq2seq": _recipe()}, position=60,
    package=__name__, model=".model:Seq2Seq", tensors=".shapes:of", reads_pairs=True, views=frozenset({"attention"}), exports=frozenset())
