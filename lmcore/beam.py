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
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .sampling import finite_logits, top_alternatives



@dataclass
class _Beam:
    ids: list[int]
    logprob: float
    decoder: object
    logits: np.ndarray
    probs: list[float] = field(default_factory=list)   # the model's probability of each chosen token
    alts: list[tuple] = field(default_factory=list)    # (indices, probabilities) of the top 5 at each step
    tail: str = ""
    done: bool = False

    def score(self, length_penalty: float) -> float:
        n = max(1, len(self.ids))
        return self.logprob / n ** length_penalty


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

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def text(self) -> str:
        return "".join(t.text for t in self.tokens)

    def _token_text(self, history: list[int], i: int) -> str:
        vocab, tok = self.gen.vocab, self.gen.tokenizer
        token = vocab.idx_to_token[history[i]]
        # the first token after an empty prompt follows nothing (the start token is not text)
        first_after_nothing = i == len(self._ids) and not self.info.tokens
        prev = None if first_after_nothing else vocab.idx_to_token[history[i - 1]]
        return tok.separator(prev, token) + token

    def _out(self, beam: _Beam, k: int):
        from .generate import TokenOut

        history = self._ids + beam.ids
        i = len(self._ids) + k
        top_i, top_p = beam.alts[k]
        vocab = self.gen.vocab
        alts = [(vocab.idx_to_token[j], p) for j, p in zip(top_i.tolist(), top_p.tolist())]
        return TokenOut(k, beam.ids[k], self._token_text(history, i), beam.probs[k], alts)

    def __iter__(self) -> Iterator:
        s, width = self.settings, self.settings.beam
        stops = [x for x in s.stop if x]
        dec = self.gen.decoder()
        beams = [_Beam([], 0.0, dec, finite_logits(dec.prefill(list(self._ids))))]
        finished: list[_Beam] = []
        emitted = 0
        for _ in range(s.max_tokens):
            if self.stop_event.is_set():
                break
            candidates = []
            for b, beam in enumerate(beams):
                logp = log_softmax(beam.logits)
                if logp.size > 1:
                    logp_pick = logp.copy()
                    logp_pick[0] = -np.inf  # never <unk>
                else:
                    logp_pick = logp
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
                probs = np.exp(logp)
                child = _Beam(parent.ids + [j], total, decoder, parent.logits, parent.probs + [float(probs[j])],
                              parent.alts + [top_alternatives(probs, 5)], parent.tail)
                if stops:
                    text = self._token_text(self._ids + child.ids, len(self._ids) + len(child.ids) - 1)
                    child.tail = (child.tail + text)[-(max(len(x) for x in stops) + len(text)):]
                    child.done = any(x in child.tail for x in stops)
                new.append(child)
            beams = []
            for child in new:
                if child.done:
                    finished.append(child)
                else:
                    child.logits = finite_logits(child.decoder.step(child.ids[-1]))
                    beams.append(child)
            # tokens every beam in the running agrees on can no longer change: hand them out now
            pool = beams + finished
            common = _common_prefix([b.ids for b in pool])
            while emitted < common:
                tok = self._out(pool[0], emitted)
                self.tokens.append(tok)
                yield tok
                emitted += 1
            if not beams:
                break
        pool = finished + beams
        if not pool:
            return
        best = max(pool, key=lambda b: b.score(s.length_penalty))
        self.logprob, self.score = best.logprob, best.score(s.length_penalty)
        while emitted < len(best.ids):
            tok = self._out(best, emitted)
            self.tokens.append(tok)
            yield tok
            emitted += 1


def _common_prefix(seqs: list[list[int]]) -> int:
    if not seqs:
        return 0
    n = min(len(x) for x in seqs)
    first = seqs[0]
    for i in range(n):
        if any(x[i] != first[i] for x in seqs[1:]):
            return i
    return n
