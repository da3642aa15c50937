"""Look inside: the views that make the RNN, LSTM and attention chapters visible, computed here and
drawn by the app (or printed by ``lmcore inspect``): the units of a recurrent model over a text,
a transformer's attention, an encoder-decoder's source-target alignment (``alignment_view``), gradients
flowing back through time, Zipf's law of a corpus, and a model's
training curves as a picture (``plot``), and what each view shows (``explain``: a line and a note). (The surprisal of a text is ``lmcore.score_text`` with ``top``.)

The views need torch: each is imported on first use (PEP 562), so ``plot`` loads without it."""
from __future__ import annotations

import importlib

_WHERE = {"AlignmentView": "alignment", "alignment_view": "alignment",
          "AttentionView": "attention", "attention_view": "attention", "GradientFlow": "gradients",
          "gradient_flow": "gradients", "gradient_flows": "gradients", "NeuronTrace": "neurons",
          "find_units": "neurons", "text_properties": "neurons", "trace_text": "neurons", "ZipfStats": "zipf",
          "zipf_stats": "zipf", "EXPLANATIONS": "explanations", "Explanation": "explanations", "explain": "explanations"}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
