"""Beam search: keep the ``width`` most likely continuations at every step, return the best one.

Deterministic (no temperature, no seed). Each beam has its own decoder state (a copy of its parent's
recurrent state or key/value cache), so a step costs ``width`` decoder steps. A beam ends at the
length asked for or at a stop string; the winner is the beam with the highest log-probability per
token raised to ``length_penalty`` (``logprob / n ** length_penalty``: 0 compares raw sums, which
favours short beams; 1, the default, compares the mean log-probability per token).

The search streams like sampling does: a token is handed out as soon as every beam still in the
running agrees on it (it can no longer change), the rest when the search ends. ``<unk>`` is never
chosen, as in sampling; the log-probability reported is the model's own (softmax of the raw logits
over the whole vocabulary), so it can be checked against a forward pass."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .sampling import finite_logits, top_alternatives
from .token_out import TokenOut



@dataclass(eq=False)
class _Node:
    """One chosen token; beams share their common history through ``parent`` links (a step costs
    the same at token 10 and at token 10,000: no history is copied)."""

    parent: "_Node | None"
    token_id: int
    prob: float        # the model's probability of this token
    alts: tuple        # (indices, probabilities) of the top 5 at this step
    depth: int         # generated tokens up to and including this one
    text: str = ""     # the text this token adds after its history (Tokenizer.piece_decoder)


@dataclass
class _Beam:
    node: _Node | None
    logprob: float
    decoder: object
    logits: np.ndarray
    pieces: object = None  # the beam's Tokenizer.piece_decoder: the text of its next token
    tail: str = ""
    done: bool = False

    @property
    def depth(self) -> int:
        return self.node.depth if self.node else 0

    def score(self, length_penalty: float) -> float:
        return self.logprob / max(1, self.depth) ** length_penalty


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max()
    return x - math.log(np.exp(x).sum())


class BeamStream:
    """Iterates the tokens (``TokenOut``) of the best beam; ``logprob``/``score`` once it has ended."""

    def __init__(self, gen, prompt_ids: list[int], info, settings, stop_event: threading.Event | None):
        self.gen, self.info, self.settings = gen, info, settings
        self.stop_event = stop_event or threading.Event()
        self._ids = prompt_ids
        self.logprob: float | None = None
        self.score: float | None = None
        self.tokens: list = []
        self.prompt = ""              # the text continued (a pairs model's: the source and a tab)
        self.end: str | None = None   # the text ends before this (a pairs model's newline): left out
        self.ended = False            # True once the text reached ``end``

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)

    def _out(self, node: _Node):
        top_i, top_p = node.alts
        vocab, tok = self.gen.vocab, self.gen.tokenizer
        alts = [(tok.display(vocab.idx_to_token[j]), p) for j, p in zip(top_i.tolist(), top_p.tolist())]
        return TokenOut(node.depth - 1, node.token_id, node.text, node.prob, alts)

    def _emit(self, node: _Node | None, emitted: int):
        """The tokens of ``node``'s history past the first ``emitted``, oldest first."""
        path = []
        while node is not None and node.depth > emitted:
            path.append(node)
            node = node.parent
        for n in reversed(path):
            tok = self._out(n)
            if self.end is not None and self.end in tok.text:
                tok.text = tok.text[:tok.text.index(self.end)]
                self.ended = True
                if not tok.text:
                    return
            self.tokens.append(tok)
            yield tok

    def __iter__(self) -> Iterator:
        s, width = self.settings, self.settings.beam
        stops = [x for x in s.stop if x]
        dec = self.gen.decoder()
        # the first token after an empty prompt follows nothing (the start token is not text)
        prev = self.gen.vocab.idx_to_token[self._ids[-1]] if self.info.tokens else None
        beams = [_Beam(None, 0.0, dec, finite_logits(dec.prefill(list(self._ids))),
                       self.gen.tokenizer.piece_decoder(prev))]
        finished: list[_Beam] = []
        emitted = 0
        for _ in range(s.max_tokens):
            if self.stop_event.is_set():
                break
            candidates = []
            for b, beam in enumerate(beams):
                logp = log_softmax(beam.logits)
                logp_pick = logp
                if logp.size > 1:
                    logp_pick = logp.copy()
                    logp_pick[0] = -np.inf  # never <unk>
                k = min(width, logp.size)
                idx = np.argpartition(-logp_pick, k - 1)[:k] if k < logp.size else np.arange(logp.size)
                for j in idx.tolist():
                    if logp_pick[j] > -np.inf:
                        candidates.append((beam.logprob + float(logp[j]), b, j, logp))
            candidates.sort(key=lambda c: (-c[0], c[1], c[2]))  # ties: the older beam, the lower id
            chosen = candidates[:width]
            if not chosen:
                break
            last_use = {b: n for n, (_, b, _, _) in enumerate(chosen)}
            new = []
            for n, (total, b, j, logp) in enumerate(chosen):
                parent = beams[b]
                decoder = parent.decoder if last_use[b] == n else parent.decoder.clone()
                pieces = parent.pieces if last_use[b] == n else parent.pieces.copy()
                probs = np.exp(logp)
                text = pieces(self.gen.vocab.idx_to_token[j])
                node = _Node(parent.node, j, float(probs[j]), top_alternatives(probs, 5), parent.depth + 1, text)
                child = _Beam(node, total, decoder, parent.logits, pieces, parent.tail)
                if stops:
                    child.tail = (child.tail + text)[-(max(len(x) for x in stops) + len(text)):]
                    child.done = any(x in child.tail for x in stops)
                new.append(child)
            beams = []
            for child in new:
                if child.done:
                    finished.append(child)
                else:
                    child.logits = finite_logits(child.decoder.step(child.node.token_id))
                    beams.append(child)
            # tokens every beam in the running agrees on can no longer change: hand them out now
            shared = _common_ancestor([b.node for b in beams + finished])
            if shared is not None and shared.depth > emitted:
                yield from self._emit(shared, emitted)
                emitted = shared.depth
            if not beams:
                break
        pool = finished + beams
        if not pool:
            return
        best = max(pool, key=lambda b: b.score(s.length_penalty))
        self.logprob, self.score = best.logprob, best.score(s.length_penalty)
        yield from self._emit(best.node, emitted)


def _common_ancestor(nodes: list) -> "_Node | None":
    """The deepest node every one of ``nodes`` descends from (or is); None if they share none."""
    if not nodes or any(n is None for n in nodes):
        return None
    depth = min(n.depth for n in nodes)
    level = []
    for n in nodes:
        while n.depth > depth:
            n = n.parent
        level.append(n)
    while level[0] is not None and any(n is not level[0] for n in level):
        level = [n.parent for n in level]
    return level[0]
