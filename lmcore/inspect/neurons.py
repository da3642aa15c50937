"""The units of a recurrent model over a text (Karpathy, Johnson & Fei-Fei 2015, "Visualizing and
Understanding Recurrent Networks"): every unit's cell, hidden state and gates at every token, and a
ranking of units by how well they track simple properties of the text, or by how saturated their
gates are."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import Cancelled, ConfigError
from ..models import listed, showing

QUOTES = '"“”«»'
OPEN, CLOSE = "([{", ")]}"
GATES = ("i", "f", "o", "r", "z")
SATURATED = 0.1  # a gate value below this or above 1 - this is saturated


@dataclass
class NeuronTrace:
    tokens: list[str]                    # the text, token by token (the first included)
    layers: list[dict[str, np.ndarray]]  # per layer: value name -> (tokens, units)
    text_tokens: int = 0                 # tokens in the whole text (more than ``tokens``: cut at the limit)
    layer_names: tuple[str, ...] = ()    # what each layer is ("forward 0", "backward 0"); none: numbered

    def layer_name(self, layer: int) -> str:
        return self.layer_names[layer] if layer < len(self.layer_names) else str(layer)

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self.layers[0]) if self.layers else ()

    @property
    def units(self) -> int:
        return next(iter(self.layers[0].values())).shape[1] if self.layers else 0

    def unit(self, layer: int, value: str, unit: int) -> np.ndarray:
        """One unit's value after each token."""
        if not 0 <= layer < len(self.layers):
            raise ConfigError(f"layer must be between 0 and {len(self.layers) - 1} (got {layer})")
        if value not in self.layers[layer]:
            raise ConfigError(f"a {'/'.join(self.values)} model has no '{value}': use one of {', '.join(self.values)}")
        if not 0 <= unit < self.units:
            raise ConfigError(f"unit must be between 0 and {self.units - 1} (got {unit})")
        return self.layers[layer][value][:, unit]


def trace_text(gen, text: str, max_tokens: int = 20_000, stop_event: threading.Event | None = None,
               progress: Callable[[int, int], None] | None = None) -> NeuronTrace:
    """Every unit of ``gen``'s recurrent model while it reads ``text`` (unknown tokens read as <unk>; at
    most ``max_tokens``). Raises Cancelled once ``stop_event`` is set."""
    model = gen.model
    if not model.unit_values:
        raise ConfigError(f"'{model.config.arch}' models have no recurrent units to show: "
                          f"neurons are shown for {listed(showing('units'))} models")
    tokens = gen.tokenizer.tokenize(text)
    text_tokens, tokens = len(tokens), tokens[:max_tokens]
    if not tokens:
        raise ConfigError("the text is empty")
    ids = torch.tensor([gen.vocab.token_to_idx.get(t, 0) for t in tokens], device=gen.device)
    def tick(done: int, total: int) -> None:
        if stop_event is not None and stop_event.is_set():
            raise Cancelled("stopped")
        if progress is not None:
            progress(done, total)

    layers = [{k: v.float().cpu().numpy() for k, v in layer.items()} for layer in model.trace(ids, tick)]
    pieces = gen.tokenizer.pieces(tokens)
    return NeuronTrace(pieces, layers, text_tokens, tuple(model.unit_layers or ()))


def text_properties(pieces: list[str]) -> dict[str, np.ndarray]:
    """Simple properties of the text after each token (as float arrays): inside quotes, inside brackets,
    position in the line, just after a line break, inside a word. A ' opens a quote when no letter is
    before it and closes one when no letter follows it (else it is an apostrophe)."""
    text = "".join(pieces)
    n = len(pieces)
    quote, bracket, pos, newline, word = (np.zeros(n) for _ in range(5))
    in_quote, depth, col, k, end = False, 0, 0, 0, 0
    for k, piece in enumerate(pieces):
        start, end = end, end + len(piece)
        for j in range(start, end):
            ch = text[j]
            before = text[j - 1] if j else " "
            after = text[j + 1] if j + 1 < len(text) else " "
            if ch in QUOTES:
                in_quote = not in_quote
            elif ch == "'" and not before.isalpha() and not in_quote:
                in_quote = True
            elif ch == "'" and not after.isalpha() and in_quote:
                in_quote = False
            elif ch in OPEN:
                depth += 1
            elif ch in CLOSE:
                depth = max(0, depth - 1)
            col = 0 if ch == "\n" else col + 1
        quote[k], bracket[k], pos[k] = in_quote, depth > 0, col
        newline[k] = piece.endswith("\n")
        word[k] = end > 0 and text[end - 1].isalpha()
    return {"inside quotes": quote, "inside brackets": bracket, "position in line": pos,
            "after a line break": newline, "inside a word": word}


def _correlations(values: np.ndarray, prop: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``values`` (tokens, units) with ``prop`` (0 where either
    does not vary)."""
    v = values - values.mean(0)
    p = prop - prop.mean()
    denom = np.sqrt((v * v).sum(0) * (p * p).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (v * p[:, None]).sum(0) / denom
    return np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0)


def find_units(trace: NeuronTrace, top: int = 5, layer: int | None = None,
               stop_event: threading.Event | None = None) -> dict:
    """Units ranked by |correlation| with each property of the text, and gates ranked by saturation.
    Each entry: layer, value, unit, score (|r| or the saturated fraction), and r / the left and right
    saturated fractions."""
    props = text_properties(trace.tokens)
    layers = range(len(trace.layers)) if layer is None else [layer]
    if layer is not None and not 0 <= layer < len(trace.layers):
        raise ConfigError(f"layer must be between 0 and {len(trace.layers) - 1} (got {layer})")
    ranked: dict[str, list] = {}
    for name, prop in props.items():
        found = []
        if prop.std() > 0:
            for li in layers:
                if stop_event is not None and stop_event.is_set():
                    return {}
                for value in ("c", "h"):
                    if value in trace.layers[li]:
                        r = _correlations(trace.layers[li][value], prop)
                        for u in np.argsort(-np.abs(r), kind="stable")[:top]:
                            found.append({"layer": li, "value": value, "unit": int(u),
                                          "score": float(abs(r[u])), "r": float(r[u])})
        ranked[name] = sorted(found, key=lambda e: -e["score"])[:top]
    sat = []
    for li in layers:
        for value in GATES:
            g = trace.layers[li].get(value)
            if g is None:
                continue
            left, right = (g < SATURATED).mean(0), (g > 1 - SATURATED).mean(0)
            both = left + right
            for u in np.argsort(-both, kind="stable")[:top]:
                sat.append({"layer": li, "value": value, "unit": int(u), "score": float(both[u]),
                            "left": float(left[u]), "right": float(right[u])})
    ranked["saturated gates"] = sorted(sat, key=lambda e: -e["score"])[:top]
    return ranked
