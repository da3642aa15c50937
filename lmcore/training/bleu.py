"""BLEU of pairs models: the chapter's (d2l.ai, "Sequence-to-Sequence Learning": a brevity penalty times
the n-gram precisions weighted 1/2^n, per sentence, averaged over the sentences) and corpus BLEU as
sacrebleu computes it (the figure papers report). Both as fractions in [0, 1]; tokens are the words of
the text (split on spaces), as in the chapter."""
from __future__ import annotations

import collections
import math

K = 2  # the longest n-gram the chapter's BLEU counts (its examples use k=2)


def bleu(pred_seq: str, label_seq: str, k: int = K) -> float:
    """d2l's ``bleu(pred_seq, label_seq, k)``: exp(min(0, 1 - len_label/len_pred)) * prod p_n^(1/2^n) for
    n = 1..min(k, len_pred), p_n the clipped n-gram precision; 0 for an empty prediction."""
    pred, label = pred_seq.split(), label_seq.split()
    if not pred:
        return 1.0 if not label else 0.0
    score = math.exp(min(0.0, 1 - len(label) / len(pred)))
    for n in range(1, min(k, len(pred)) + 1):
        subs = collections.Counter(tuple(label[i: i + n]) for i in range(len(label) - n + 1))
        matches = 0
        for i in range(len(pred) - n + 1):
            gram = tuple(pred[i: i + n])
            if subs[gram] > 0:
                matches += 1
                subs[gram] -= 1
        score *= math.pow(matches / (len(pred) - n + 1), math.pow(0.5, n))
    return score


def mean_bleu(preds: list[str], labels: list[str], k: int = K) -> float:
    """The chapter's BLEU of each sentence, averaged."""
    return sum(bleu(p, t, k) for p, t in zip(preds, labels)) / max(len(preds), 1)


def corpus_bleu(preds: list[str], labels: list[str]) -> float:
    """sacrebleu's corpus BLEU (its default 13a tokenization, 4-grams), as a fraction, with its effective
    order: n-gram orders no reference is long enough for are left out (otherwise a corpus of one-word
    targets scores 0 even when every reply is right; on longer sentences the figure is the default's)."""
    from sacrebleu.metrics import BLEU

    score = BLEU(effective_order=True).corpus_score(list(preds), [list(labels)]).score / 100.0
    return min(1.0, max(0.0, score))  # its percentage over 100 can land a rounding error above 1


def exact(preds: list[str], labels: list[str]) -> float:
    """The fraction of predictions equal to their reference."""
    return sum(p == t for p, t in zip(preds, labels)) / max(len(preds), 1)
