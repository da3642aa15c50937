"""Corpus statistics: n-gram counts of a token sequence, with every count for the chapters' Zipf plots."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class NgramStats:
    n: int
    total: int
    distinct: int
    top: list[tuple[tuple[str, ...], int]]
    freqs: list[int]  # all counts, descending: plot log(rank) vs log(freq) for Zipf's law


def ngram_stats(ids: torch.Tensor, idx_to_token: list[str], n: int = 1, top: int = 10) -> NgramStats:
    """Counts of the n-grams of an id sequence (computed on integer codes, not Python tuples)."""
    ids = ids.long()
    if len(ids) < n:
        return NgramStats(n, 0, 0, [], [])
    v = len(idx_to_token)
    codes = torch.zeros(len(ids) - n + 1, dtype=torch.long)
    for k in range(n):
        codes = codes * v + ids[k: len(ids) - n + 1 + k]
    uniq, counts = torch.unique(codes, return_counts=True)
    order = torch.argsort(counts, descending=True, stable=True)
    uniq, counts = uniq[order], counts[order]
    best = []
    for code, c in zip(uniq[:top].tolist(), counts[:top].tolist()):
        toks = []
        for _ in range(n):
            toks.append(idx_to_token[code % v])
            code //= v
        best.append((tuple(reversed(toks)), c))
    return NgramStats(n, len(codes), len(uniq), best, counts.tolist())
