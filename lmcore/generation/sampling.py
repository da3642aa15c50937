"""Turning next-token logits into a choice. The controls apply in this order:

1. repetition penalty (CTRL-style: a positive logit of a token seen in the last ``repetition_window``
   tokens is divided by the penalty, a negative one multiplied);
2. temperature: 0 means greedy (argmax of the penalised logits; steps 3-5 are skipped), otherwise the
   logits are divided by it;
3. top-k: keep the k most likely tokens (0: off);
4. top-p (nucleus): keep the smallest set of most likely tokens whose probability adds up to p (1: off);
5. min-p: drop tokens whose probability is below min_p times the most likely one's (0: off);
then one token is drawn from what is left (renormalised), with a seeded ``numpy.random.Generator``.
``<unk>`` is never chosen unless it is the only token.

The work is done in numpy on a float32 vector: one token at a time it is a handful of operations on a
few dozen (characters) to a few thousand (words) numbers, where numpy's per-call cost is a third of
torch's."""
from __future__ import annotations

import numpy as np

from ..errors import NotFinite
from .sampling_settings import MAX_BEAM, MAX_SEED, PRESETS, SamplingSettings, from_preset, summary  # noqa: F401

FLOAT_MAX = 1e30  # penalised logits are clipped to this: never an infinity that turns into NaN


def as_vector(logits) -> np.ndarray:
    """A float32 numpy vector from a numpy array, a list or a (CPU or GPU) torch tensor."""
    if hasattr(logits, "detach"):
        logits = logits.detach().float().cpu().numpy()
    return np.asarray(logits, dtype=np.float32).reshape(-1)


# Per token these run on small vectors: ufuncs and ndarray methods are called directly, as numpy's
# module-level wrappers (np.cumsum, ndarray.max, ...) add a microsecond or more of Python each.
def softmax(logits: np.ndarray) -> np.ndarray:
    e = logits - np.maximum.reduce(logits)
    np.exp(e, out=e)
    e /= np.add.reduce(e)
    return e


def top_alternatives(probs: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Indices and probabilities of the k most likely tokens, most likely first."""
    k = min(k, probs.size)
    if probs.size <= 256:  # characters: one sort is cheaper than partition-then-sort (3.6 vs 8 us)
        idx = (-probs).argsort(kind="stable")[:k]
    else:
        idx = probs.argpartition(probs.size - k)[-k:]
        idx = idx[(-probs[idx]).argsort(kind="stable")]
    return idx, probs[idx]


def apply_repetition_penalty(logits: np.ndarray, recent, penalty: float) -> np.ndarray:
    if penalty == 1.0 or len(recent) == 0:
        return logits
    idx = np.unique(np.asarray(recent, dtype=np.int64))
    out = logits.copy()
    vals = out[idx]
    with np.errstate(over="ignore"):
        out[idx] = np.clip(np.where(vals > 0, vals / penalty, vals * penalty), -FLOAT_MAX, FLOAT_MAX)
    return out


TOP_P_TOLERANCE = 1e-6


def filter_probs(probs: np.ndarray, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> np.ndarray:
    """Zero the tokens removed by top-k, then top-p, then min-p; renormalise. probs: (V,)."""
    p = np.array(probs, dtype=np.float32)
    if top_k and top_k < p.size:
        kth = np.partition(p, p.size - top_k)[p.size - top_k]
        p[p < kth] = 0
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        sorted_p = p[order]
        mass = sorted_p.astype(np.float64) / float(sorted_p.sum(dtype=np.float64))
        before = np.cumsum(mass) - mass  # mass of the more likely tokens
        # a token is kept only while the set before it falls short of p; float32 probabilities are
        # rounded, so "reaches p" has the same tolerance as min-p (0.5 + 0.3 reaches 0.8)
        sorted_p[before >= top_p - TOP_P_TOLERANCE] = 0
        p = np.zeros_like(p)
        p[order] = sorted_p
    if min_p > 0:
        p[p < min_p * p.max() * (1 - 1e-6)] = 0  # a token right at the threshold stays (rounding)
    return p / p.sum()


def next_token_distribution(logits, s: SamplingSettings, recent=()) -> np.ndarray:
    """The distribution a token is drawn from (one-hot for greedy). logits: (V,)."""
    logits = finite_logits(logits)
    if logits.size > 1:
        logits[0] = -np.inf  # never emit <unk>
    if s.penalised:
        recent = recent if isinstance(recent, list) else list(recent)
        logits = apply_repetition_penalty(logits, recent[-s.repetition_window:], s.repetition_penalty)
    if s.temperature == 0:
        out = np.zeros(logits.size, np.float32)
        out[int(np.argmax(logits))] = 1.0
        return out
    # shifted before dividing: (l - max) / T is <= 0, so a tiny temperature gives 0 and -inf, never NaN
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        scaled = (logits - np.maximum.reduce(logits)) / np.float32(s.temperature)
    scaled[np.isnan(scaled)] = -np.inf
    probs = softmax(scaled)
    if not s.filtered:
        return probs  # no filter: nothing to cut or renormalise
    return filter_probs(probs, s.top_k, s.top_p, s.min_p)


def finite_logits(logits) -> np.ndarray:
    """A float32 copy with NaN as -inf; raises LmError when the model gave no finite score at all (its
    weights hold NaN or infinities), rather than letting a stream of <unk> out."""
    out = as_vector(logits).copy()
    out[np.isnan(out)] = -np.inf
    out[out == np.inf] = FLOAT_MAX
    if out.size > 1 and not np.isfinite(out[1:]).any():
        raise NotFinite.scores()
    return out


def draw(weights: np.ndarray, rng: np.random.Generator) -> int:
    """One index with probability proportional to ``weights`` (non-negative); -1 if they are all zero."""
    cum = weights.cumsum(dtype=np.float64)
    if not cum[-1] > 0:
        return -1
    i = int(cum.searchsorted(rng.random() * cum[-1], side="right"))
    i = min(i, weights.size - 1)
    while weights[i] == 0 and i > 0:  # a draw of exactly the upper edge: step back to a kept token
        i -= 1
    return i


def sample(logits, s: SamplingSettings, recent=(), rng: np.random.Generator | None = None,
           probs: np.ndarray | None = None) -> int:
    """Draw the next token. ``probs`` (the softmax of the raw logits, if the caller already has it) saves
    a second softmax when no control changes the distribution (temperature 1, no penalty, no filter)."""
    rng = rng if rng is not None else np.random.default_rng()
    if s.temperature == 1.0 and probs is not None and not s.penalised and not s.filtered:
        w = probs.copy()
        if w.size > 1:
            w[0] = 0.0
        i = draw(w, rng)
        if i >= 0:
            return i
    dist = next_token_distribution(logits, s, recent)
    if s.temperature == 0:
        return int(dist.argmax())
    i = draw(dist, rng)
    if i < 0:  # nothing left to draw: the most likely real token
        i = int(finite_logits(logits)[1:].argmax()) + 1 if dist.size > 1 else 0
    return i
