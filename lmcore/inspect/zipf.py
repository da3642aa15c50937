"""Zipf's law, as in the language-model chapter: n-gram frequencies by rank on log-log axes, the fitted
slope, how much of the text the most frequent tokens cover, how many n-grams occur once."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..data.stats import ngram_stats
from ..data.text import Tokenizer, build_vocab, encode

COVER = (10, 100, 1000)


@dataclass
class NgramStats:
    n: int
    freqs: np.ndarray          # counts, most frequent first
    top: list[tuple[str, int]]  # the most frequent n-grams
    slope: float               # of log frequency against log rank (Zipf: about -1 for words)
    coverage: dict[int, float]  # share of all n-grams the k most frequent cover
    hapax: int                 # n-grams that occur once

    @property
    def distinct(self) -> int:
        return len(self.freqs)

    def to_dict(self, points: int = 0) -> dict:
        d = {"n": self.n, "total": int(self.freqs.sum()), "distinct": self.distinct, "slope": self.slope,
             "coverage": {str(k): v for k, v in self.coverage.items()}, "hapax": self.hapax,
             "top": [[g, c] for g, c in self.top]}
        if points:
            d["rank_freq"] = [[int(r), int(self.freqs[r - 1])] for r in log_ranks(self.distinct, points)] \
                if self.distinct else []
        return d


@dataclass
class ZipfStats:
    level: str
    tokens: int
    ngrams: list[NgramStats]


def log_ranks(n: int, points: int) -> list[int]:
    """About ``points`` ranks from 1 to n, evenly spaced on a log axis."""
    return sorted({int(round(x)) for x in np.geomspace(1, max(1, n), points)})


def fit_slope(freqs: np.ndarray) -> float:
    """Least-squares slope of log frequency on log rank, over the ranks of n-grams seen at least twice
    (the long tail of ones is flat and would dominate the fit), evenly weighted on the log axis."""
    f = freqs[freqs >= 2] if (freqs >= 2).sum() >= 3 else freqs
    if len(f) < 3:
        return float("nan")
    ranks = np.array(log_ranks(len(f), 200))
    x, y = np.log(ranks), np.log(f[ranks - 1])
    return float(np.polyfit(x, y, 1)[0])


def zipf_stats(text: str, level: str = "word", prep: str = "d2l", max_n: int = 3, top: int = 10) -> ZipfStats:
    """Unigrams to ``max_n``-grams of ``text`` tokenized as ``level`` after ``prep`` (d2l: lower-case
    letters and spaces, as the chapter counts; raw: the text as it is). Line breaks are not words."""
    tok = Tokenizer(level, prep)
    prepared = tok.preprocess(text)
    tok = tok.fitted([prepared])  # bpe: subwords learnt from this text
    vocab = build_vocab(prepared, tok)
    ids = encode(prepared, tok, vocab)
    if level == "word" and "\n" in vocab.token_to_idx:
        ids = ids[ids != vocab.token_to_idx["\n"]]
    if len(ids) < 2:
        raise ConfigError("the text is too short for Zipf's law: it needs a few tokens")
    joiner = "" if level == "char" else " "
    out = []
    for n in range(1, max_n + 1):
        st = ngram_stats(ids, vocab.idx_to_token, n, top)
        freqs = np.array(st.freqs, dtype=np.int64)
        total = max(1, int(freqs.sum()))
        show = tok.join if level == "bpe" else joiner.join
        out.append(NgramStats(n, freqs, [(show(list(g)), c) for g, c in st.top], fit_slope(freqs),
                              {k: float(freqs[:k].sum() / total) for k in COVER}, int((freqs == 1).sum())))
    return ZipfStats(level, len(ids), out)
