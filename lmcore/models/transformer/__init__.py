"""The transformer family: a decoder-only transformer in the spirit of nanoGPT (model.py), with a
context window instead of a carried state; it generates through preallocated key/value buffers
(decoder.py) and exports to Hugging Face transformers too."""
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
    context: int = option(128, "transformer context length", range=(1, 65536))
    pos: str = option("learned", "positions: learned or rotary", choices=("learned", "rotary"))
    tie_weights: bool = option(True, "the output layer shares the input embedding's weights")
    dropout: float = dropout()


class TransformerFamily(Family):
    def check(self, config) -> None:
        if config.hidden % config.heads:
            raise ConfigError(f"the width ({config.hidden}) must be a multiple of the heads ({config.heads})")
        if config.pos == "rotary" and (config.hidden // config.heads) % 2:
            raise ConfigError("rotary positions need an even head size")


PRESETS = {
    "tiny": {"model": {"num_layers": 2, "heads": 2, "hidden": 64, "context": 32},
             "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
    # rotary positions and a longer context, at the same tokens per step: tinyshakespeare in 2.2 minutes
    # of a 2-core CPU, validation loss 1.597 (learned positions, context 64, batch 32: 1.667)
    "small": {"model": {"num_layers": 4, "heads": 4, "hidden": 128, "context": 128, "pos": "rotary",
                        "dropout": 0.0},
              "train": {"batch_size": 16, "seq_len": 128, "lr": 5e-3, "steps": 1200}},
    "base": {"model": {"num_layers": 6, "heads": 6, "hidden": 384, "context": 256, "dropout": 0.2},
             "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 2000}},
}

# what --preset auto chooses from (lmcore/training/auto_preset.py), smallest first; rotary positions
SIZES = tuple({"model": {"num_layers": n, "heads": h, "hidden": w, "context": c, "pos": "rotary"},
               "train": {"batch_size": b, "seq_len": c, "lr": lr}}
              for n, h, w, c, b, lr in ((2, 2, 64, 64, 32, 5e-3), (4, 4, 128, 128, 16, 5e-3),
                                        (4, 6, 192, 128, 16, 3e-3), (6, 8, 256, 256, 16, 2e-3),
                                        (6, 6, 384, 256, 32, 1.5e-3)))

FAMILY = TransformerFamily(
    name="transformer",
    archs={"transformer": "transformer: causal self-attention over a context window (GPT-2 style)"},
    labels={"transformer": "Transformer"}, options=Options, presets={"transformer": PRESETS},
    sizes={"transformer": SIZES}, position=20,
    package=__name__, model=".model:TransformerLM", decode=".decoder:choose", tensors=".shapes:of",
    windowed=True, views={"attention"}, exports={"onnx", "hf"})
