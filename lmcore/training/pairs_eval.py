"""Evaluation of pairs models on the validation pairs: the loss per target token (teacher forcing, padding
ignored) and, from the greedy replies, exact match and BLEU (the chapter's, averaged per sentence, and
sacrebleu's corpus BLEU)."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..data.pair_batches import IGNORE, EncodedPairs, make_batch
from ..data.text import Tokenizer
from ..data.vocab import Vocab
from ..errors import ConfigError
from ..generation.translate import greedy
from . import bleu as scores

REPLY_CAP = 1000  # validation pairs answered greedily at each evaluation (the loss reads them all); a reply
# stops at twice its batch's longest reference + 10 tokens (or the model's max_len)


@dataclass
class PairScores:
    loss: float          # nats per target token (its eos included)
    bleu: float          # the chapter's BLEU per sentence, averaged
    corpus_bleu: float   # sacrebleu
    exact: float
    pairs: int           # the pairs answered
    replies: list[str]
    references: list[str]
    sources: list[str] = field(default_factory=list)  # each reply's source, as read (texts of the pairs)


def _batches(valid: EncodedPairs, batch_size: int, limit: int = 0):
    """Indices of the validation pairs in batches of similar source length."""
    n = len(valid) if not limit else min(limit, len(valid))
    order = torch.argsort(valid.spans[:n, 1], stable=True)
    return [order[i: i + batch_size] for i in range(0, n, batch_size)]


@torch.no_grad()
def evaluate_pairs(model, valid: EncodedPairs, vocab: Vocab, tok: Tokenizer, bos: int, eos: int,
                   batch_size: int = 64, autocast=contextlib.nullcontext, replies: int = REPLY_CAP) -> PairScores:
    device = next(model.parameters()).device
    ids = valid.ids.to(device)
    was = model.training
    model.eval()
    total, count, hyps, refs, srcs = 0.0, 0, [], [], []
    try:
        for rows in _batches(valid, batch_size):
            x, y = make_batch(ids, valid.spans[rows], bos, eos)
            with autocast():
                logits = model(*x)
            total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=IGNORE,
                                     reduction="sum").item()
            count += int((y != IGNORE).sum())
        for rows in _batches(valid, batch_size, replies):
            (src, src_len, _), y = make_batch(ids, valid.spans[rows], bos, eos)
            limit = min(int(model.config.max_len), 2 * y.shape[1] + 10)  # longer: wrong anyway, and slow
            with autocast():
                out, _, _ = greedy(model, src, src_len, bos, eos, limit)
            hyps += [tok.join(vocab.decode(o)) for o in out]
            refs += [tok.join(vocab.decode([t for t in row if t not in (IGNORE, eos)])) for row in y.tolist()]
            srcs += [valid.texts[i][0] if valid.texts else "" for i in rows.tolist()]
    finally:
        model.train(was)
    if not count:
        raise ConfigError("the validation split holds no pairs to evaluate")
    return PairScores(total / count, scores.mean_bleu(hyps, refs), scores.corpus_bleu(hyps, refs),
                      scores.exact(hyps, refs), len(hyps), hyps, refs, srcs)
