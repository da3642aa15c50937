"""Pairs as training data for encoder–decoder models (families that ``reads_pairs``): each side tokenized and
encoded, sources longer than the model's limit cut (counted, for a note), and ``PairStream``, the endless
reproducible stream of batches ``((src, src_len, tgt_in), tgt_out)`` bucketed by source length so that
padding stays small. Teacher forcing: ``tgt_in`` is bos + target, ``tgt_out`` the target + eos, its
padding ``IGNORE`` (no loss)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import torch

from ..errors import ConfigError
from .pairs import read_pairs, split_pairs
from .text import Tokenizer
from .vocab import Vocab

IGNORE = -100
POOL = 50  # batches sorted by length together: long enough to bucket, short enough to stay shuffled


@dataclass
class EncodedPairs:
    """Pairs as ids: ``ids`` every pair's source then target, concatenated; ``spans`` (n, 4): source start,
    source length, target start, target length; ``texts`` the pairs as read (references for BLEU)."""

    ids: torch.Tensor
    spans: torch.Tensor
    texts: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.spans)

    def source(self, i: int) -> list[int]:
        s, n, _, _ = self.spans[i].tolist()
        return self.ids[s: s + n].tolist()


@dataclass
class PairData:
    train: EncodedPairs
    valid: EncodedPairs
    seed: int
    cut: int = 0       # sources (or targets) cut to the model's limit
    note: str = ""     # lines skipped, sides cut: one line, or ""


def encode(pairs: list[tuple[str, str]], tok: Tokenizer, vocab: Vocab, max_len: int) -> tuple[EncodedPairs, int]:
    """Each side as ids, cut to ``max_len`` tokens (the target to max_len - 1: its eos takes a place);
    the number of pairs cut."""
    flat, spans, cut = [], [], 0
    for src, tgt in pairs:
        s, t = vocab.encode(tok.tokenize(src)), vocab.encode(tok.tokenize(tgt))
        if len(s) > max_len or len(t) > max_len - 1:
            cut += 1
            s, t = s[:max_len], t[: max_len - 1]
        spans.append((len(flat), len(s), len(flat) + len(s), len(t)))
        flat += s + t
    return (EncodedPairs(torch.tensor(flat, dtype=torch.long), torch.tensor(spans, dtype=torch.long).view(-1, 4),
                         list(pairs)), cut)


def pair_data(text: str, tok: Tokenizer, vocab: Vocab, max_len: int, val_fraction: float,
              where: str = "the corpus") -> PairData:
    """The pairs of ``text`` split (the fixed shuffle) and encoded; CorpusError when it holds none (``where``
    names it), ConfigError when a split is empty."""
    read = read_pairs(text, where)
    split = split_pairs(read.pairs, val_fraction=val_fraction)
    train, cut_t = encode(split.train, tok, vocab, max_len)
    valid, cut_v = encode(split.valid, tok, vocab, max_len)
    if not len(train) or not len(valid):
        raise ConfigError(f"the corpus has {len(read.pairs)} pairs: too few for a training and a validation split")
    notes = [read.note] if read.note else []
    if cut_t + cut_v:
        notes.append(f"{cut_t + cut_v:,} pairs longer than the model's limit of {max_len} tokens were cut "
                     f"(--max-len)")
    return PairData(train, valid, split.seed, cut_t + cut_v, "; ".join(notes))


def padded(ids: torch.Tensor, start: torch.Tensor, length: torch.Tensor, width: int, pad: int) -> torch.Tensor:
    """(B, width): row i is ids[start_i : start_i + length_i], then ``pad``."""
    pos = torch.arange(width)
    idx = (start[:, None] + pos).clamp(max=max(len(ids) - 1, 0))
    out = ids[idx.to(ids.device)].long()
    return out.masked_fill((pos[None, :] >= length[:, None]).to(ids.device), pad)


def make_batch(ids: torch.Tensor, spans: torch.Tensor, bos: int, eos: int):
    """((src, src_len, tgt_in), tgt_out) of the pairs ``spans`` (B, 4) of ``ids``."""
    s0, sl, t0, tl = spans.unbind(1)
    width = int(tl.max()) + 1
    src = padded(ids, s0, sl, max(int(sl.max()), 1), eos)
    body = padded(ids, t0, tl, width - 1, eos)
    tgt_in = torch.cat([torch.full((len(spans), 1), bos, dtype=torch.long, device=ids.device), body], 1)
    out = padded(ids, t0, tl, width, IGNORE)
    out[torch.arange(len(spans), device=ids.device), tl.to(ids.device)] = eos
    return (src, sl.to(ids.device), tgt_in), out


@dataclass
class PairStream:
    """Endless batches of pairs; the batch at step s depends only on (seed, s). Each epoch shuffles the
    pairs, sorts each pool of POOL batches by source length, and shuffles the batches of the pool."""

    ids: torch.Tensor
    spans: torch.Tensor
    batch_size: int
    bos: int
    eos: int
    seed: int = 0
    rank: int = 0
    world: int = 1

    def __post_init__(self):
        if len(self.spans) < self.batch_size:
            raise ConfigError(f"the training split has {len(self.spans):,} pairs, fewer than one batch of "
                              f"{self.batch_size}: use a smaller --batch")

    def batches_in_epoch(self, epoch: int = 0) -> int:
        return len(self.spans) // self.batch_size

    def _order(self, epoch: int) -> list[torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.spans), generator=g)
        B, out = self.batch_size, []
        for p in range(0, self.batches_in_epoch() * B, POOL * B):
            pool = perm[p: min(p + POOL * B, self.batches_in_epoch() * B)]
            pool = pool[torch.argsort(self.spans[pool, 1], stable=True)]
            batches = list(pool.view(-1, B))
            out += [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return out

    def iterate(self, start_step: int = 0) -> Iterator[tuple[tuple, torch.Tensor, bool]]:
        """Yield ((src, src_len, tgt_in), tgt_out, True) forever from ``start_step``."""
        nb = self.batches_in_epoch()
        epoch, skip = divmod(start_step, nb)
        per = self.batch_size // self.world
        while True:
            for rows in self._order(epoch)[skip:]:
                mine = rows[self.rank * per: (self.rank + 1) * per]
                x, y = make_batch(self.ids, self.spans[mine], self.bos, self.eos)
                yield x, y, True
            skip, epoch = 0, epoch + 1
