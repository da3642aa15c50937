"""Size presets: model hyper-parameters and the training recipe that goes with them.

``small`` is sized for a 2-core CPU (readable text on timemachine within about 3 minutes);
``base`` is the GPU recipe (tinyshakespeare, batch 64, sequence 256)."""
from __future__ import annotations


def _recurrent(small_lr: float, base_dropout: float = 0.2, small_batch: int = 32) -> dict[str, dict]:
    """RNN, GRU and LSTM share sizes; on the CPU the gated cells take a higher learning rate."""
    return {
        "tiny": {"model": {"num_layers": 1, "hidden": 64, "embed": 32},
                 "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
        "small": {"model": {"num_layers": 2, "hidden": 256, "embed": 64, "dropout": 0.0},
                  "train": {"batch_size": small_batch, "seq_len": 64, "lr": small_lr, "steps": 1500}},
        "base": {"model": {"num_layers": 2, "hidden": 512, "embed": 128, "dropout": base_dropout},
                 "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 5000}},
    }


def _min_rnn() -> dict[str, dict]:
    """minGRU and minLSTM train as a parallel scan: longer sequences cost little more."""
    return {
        "tiny": {"model": {"num_layers": 2, "hidden": 64},
                 "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
        "small": {"model": {"num_layers": 3, "hidden": 192, "dropout": 0.0},
                  "train": {"batch_size": 32, "seq_len": 128, "lr": 3e-3, "steps": 1500}},
        "base": {"model": {"num_layers": 4, "hidden": 512, "dropout": 0.2},
                 "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 5000}},
    }


PRESETS: dict[str, dict[str, dict]] = {
    "ngram": {
        "tiny": {"model": {"order": 2}, "train": {}},
        "small": {"model": {"order": 4, "epsilon": 0.5}, "train": {}},
        "base": {"model": {"order": 5, "epsilon": 0.5}, "train": {}},
    },
    "rnn": _recurrent(small_lr=5e-3),
    "gru": _recurrent(small_lr=1e-2),
    # small: tinyshakespeare in 2.2 minutes of a 2-core CPU, validation loss 1.492 (batch 32, lr 1e-2: 1.521)
    "lstm": _recurrent(small_lr=1.5e-2, base_dropout=0.25, small_batch=24),
    "mingru": _min_rnn(),
    "minlstm": _min_rnn(),
    "transformer": {
        "tiny": {"model": {"num_layers": 2, "heads": 2, "hidden": 64, "context": 32},
                 "train": {"batch_size": 16, "seq_len": 32, "lr": 3e-3, "steps": 300}},
        # rotary positions and a longer context, at the same tokens per step: tinyshakespeare in 2.2 minutes
        # of a 2-core CPU, validation loss 1.597 (learned positions, context 64, batch 32: 1.667)
        "small": {"model": {"num_layers": 4, "heads": 4, "hidden": 128, "context": 128, "pos": "rotary",
                            "dropout": 0.0},
                  "train": {"batch_size": 16, "seq_len": 128, "lr": 5e-3, "steps": 1200}},
        "base": {"model": {"num_layers": 6, "heads": 6, "hidden": 384, "context": 256, "dropout": 0.2},
                 "train": {"batch_size": 64, "seq_len": 256, "lr": 2e-3, "steps": 2000}},
    },
}

NAMES = ("tiny", "small", "base")
