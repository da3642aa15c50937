"""lmcore: the headless core of lmplay (corpora, tokenizers, batching, models, training, generation,
the checkpoint store). It never imports the UI."""
from __future__ import annotations

__version__ = "0.1.0"
