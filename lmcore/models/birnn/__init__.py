"""The birnn family: a forward and a backward recurrent network (``--cell rnn|gru|lstm``) trained as two
language models, next token and previous token, and a blank at position t predicted from the forward
state after t-1 and the backward state after t+1 (model.py): no direction ever reads the token it
predicts, so the losses are honest. It fills blanks (``lmcore fill``); it does not generate text."""
from __future__ import annotations

from dataclasses import dataclass

from ..family import Family, option
from ..options import dropout, hidden, num_layers


@dataclass
class Options:
    cell: str = option("lstm", "birnn: the recurrent cell of both directions", choices=("rnn", "gru", "lstm"),
                       form="Cell", labels={"rnn": "RNN (tanh)", "gru": "GRU", "lstm": "LSTM"})
    num_layers: int = num_layers()
    hidden: int = hidden(256, "recurrent state size")
    embed: int = option(0, "embedding size of recurrent models (0: the state size)", range=(0, 16384))
    dropout: float = dropout()


CANNOT_GENERATE = ("a birnn model fills blanks (lmcore fill) and does not generate: it is trained to predict a "
                   "token from both sides of it, and text written left to right has no right side yet")


class BiRNNFamily(Family):
    def cannot_generate(self, config) -> str | None:
        return CANNOT_GENERATE

    def describe(self, config) -> str:
        return f"birnn/{config.cell}"


def _recipe() -> dict[str, dict]:
    """The recurrent family's sizes: each direction is one of its networks. ``small`` drops 20% (the
    two directions fit a short text fast: on timemachine's characters in 3 minutes, dropout 0.2 took the
    validation perplexity from 4.62 to 4.16 and the fill accuracy from 85.5% to 88.0%) and evaluates
    every 600 steps (each evaluation also measures the fill accuracy and saves: every 200 steps they took
    a fifth of a 3-minute run; every 600, timemachine's words went from 546 to 681 steps and from 34.4%
    to 37.1% of all the validation blanks, its characters from 1,667 to 1,931 steps and 89.7% to 90.1%;
    quiet 2-core CPU, 2026-12-04)."""
    return {
        "tiny": {"model": {"num_layers": 1, "hidden": 64, "embed": 32},
                 "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
        "small": {"model": {"num_layers": 2, "hidden": 256, "embed": 64, "dropout": 0.2},
                  "train": {"batch_size": 24, "seq_len": 64, "lr": 1e-2, "steps": 1500, "eval_every": 600}},
        "base": {"model": {"num_layers": 2, "hidden": 512, "embed": 128, "dropout": 0.25},
                 "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 5000}},
    }


FAMILY = BiRNNFamily(
    name="birnn",
    archs={"birnn": "birnn: forward and backward RNNs that fill blanks from both sides (validation loss: the "
                    "forward direction's next-token loss, comparable with the forward models')"},
    labels={"birnn": "BiRNN (fills blanks)"},
    options=Options, presets={"birnn": _recipe()}, position=35, package=__name__,
    model=".model:BiRNNLM", tensors=".shapes:of", stateful=True, fills_both_ways=True, views=frozenset({"units"}),
    exports=frozenset())
