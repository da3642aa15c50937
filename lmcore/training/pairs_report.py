"""``lmcore evaluate`` of a model that answers pairs: an encoder-decoder (a family that ``reads_pairs``) or a
decoder-only model trained on a pairs corpus (it reads ``source<TAB>target<NEWLINE>`` lines). The figures
are training's (lmcore/training/pairs_eval.py, lm_pairs_eval.py): the loss per target token (teacher
forcing; for a decoder-only model, its loss on the target's tokens and the newline after each source and
its tab), and from the greedy replies exact match, the chapter's BLEU (per sentence, averaged) and
sacrebleu's corpus BLEU, the replies also broken down by the length of their source.

Buckets (one rule): a source's length in characters, as the corpus writes it: 1-10, 11-20, 21-40, 41 and
more (BUCKETS). Every bucket is listed; one without pairs has no figures (None)."""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from . import bleu as scores

BUCKETS: tuple[tuple[int, int | None], ...] = ((1, 10), (11, 20), (21, 40), (41, None))  # characters, ends included


@dataclass
class Bucket:
    """The replies to the sources of ``low`` to ``high`` characters (``high`` None: no upper end)."""

    low: int
    high: int | None
    pairs: int
    exact: float | None = None
    bleu: float | None = None
    corpus_bleu: float | None = None

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}" if self.high is not None else f"{self.low}+"

    def to_dict(self) -> dict:
        return {"chars": self.label, "min": self.low, "max": self.high, "pairs": self.pairs,
                "exact": self.exact, "bleu": self.bleu, "corpus_bleu": self.corpus_bleu}


def buckets(sources: list[str], replies: list[str], refs: list[str]) -> list[Bucket]:
    """The replies' exact match and BLEU (both kinds) per bucket of source length (BUCKETS)."""
    out = []
    for low, high in BUCKETS:
        rows = [i for i, s in enumerate(sources) if len(s) >= low and (high is None or len(s) <= high)]
        hyp, ref = [replies[i] for i in rows], [refs[i] for i in rows]
        if not rows:
            out.append(Bucket(low, high, 0))
            continue
        out.append(Bucket(low, high, len(rows), scores.exact(hyp, ref), scores.mean_bleu(hyp, ref),
                          scores.corpus_bleu(hyp, ref)))
    return out


@dataclass
class PairsReport:
    """A pairs model's figures on a set of pairs (see the module's docstring)."""

    pairs: int                # pairs read (the loss's)
    target_tokens: int        # target tokens the loss is over (each target's end included; 0: not measured)
    target_loss: float | None  # nats per target token (None: not a next-token loss, see decoder_only_report)
    replies: int              # pairs answered (the first REPLY_CAP)
    bleu: float
    corpus_bleu: float
    exact: float
    by_length: list[Bucket] = field(default_factory=list)

    @property
    def target_ppl(self) -> float | None:
        if self.target_loss is None:
            return None
        return math.exp(self.target_loss) if self.target_loss < 700 else math.inf

    def to_dict(self) -> dict:
        """JSON-ready (strict: an infinite or unknown perplexity is None)."""
        p = self.target_ppl
        return {"pairs": self.pairs, "target_tokens": self.target_tokens, "target_loss": self.target_loss,
                "target_ppl": p if p is not None and math.isfinite(p) else None, "replies": self.replies, "bleu": self.bleu,
                "corpus_bleu": self.corpus_bleu, "exact": self.exact,
                "buckets": [b.to_dict() for b in self.by_length]}


@dataclass
class PairsSource:
    """The pairs a model is evaluated on, in words (``what``), and every pair of that text (``every``: the
    decoder-only model's reply limit is taken from its targets)."""

    pairs: list[tuple[str, str]]
    what: str
    every: list[tuple[str, str]]


def pairs_source(store, ck, name: str, corpus: str | None, file: str | None) -> PairsSource:
    """The validation pairs of the model's own corpus (its split: the seed its checkpoint records), of
    another corpus (``corpus``: the split training would make of it), or every pair of a file. CorpusError
    (one line) for a text without pairs; ConfigError when the model's corpus changed."""
    from ..data import corpus as corpora
    from ..data import token_cache
    from ..data.pairs import SPLIT_SEED, VAL_FRACTION, read_pairs, split_pairs

    if file is not None:
        path = Path(file).expanduser()
        if not path.is_file():
            raise ConfigError(f"no file {file!r} to evaluate on (--file takes the path of a text file)")
        src = corpora.open_source(str(path.resolve()), store.home)
        read = read_pairs(src.read(), f"the file {path.name}")
        return PairsSource(read.pairs, f"the file {path.name}", read.pairs)
    src = corpora.open_source(corpus or ck.corpus.argument(), store.home,
                              encoding=None if corpus else ck.corpus.encoding)
    if corpus is None and src.sha1(token_cache.cache_dir(store.home).parent / "sha1") != ck.corpus.sha1:
        raise ConfigError(f"corpus '{ck.corpus.name}' is not the text model '{name}' was trained on any more "
                          f"(sha1 differs): evaluate on it with --corpus or --file")
    read = read_pairs(src.read(), f"corpus '{src.name}'")
    fraction = (ck.train.val_fraction or VAL_FRACTION) if ck.model.family.reads_pairs else VAL_FRACTION
    seed = ck.corpus.pairs_seed if ck.corpus.pairs_seed is not None else SPLIT_SEED
    split = split_pairs(read.pairs, seed, fraction)
    what = "its validation split" if corpus is None else "the validation split"
    return PairsSource(split.valid, f"{what} of {src.name}", read.pairs)


def encoder_decoder_report(model, ck, pairs: list[tuple[str, str]], autocast=contextlib.nullcontext) -> PairsReport:
    """An encoder-decoder's figures on ``pairs`` (sources and targets longer than its limit cut, as in
    training)."""
    from ..data.pair_batches import encode
    from ..models.encdec import special_ids
    from .pairs_eval import evaluate_pairs

    vocab, tok = ck.vocab, ck.tokenizer
    encoded, _ = encode(pairs, tok, vocab, int(ck.model.max_len))
    bos, eos = special_ids(vocab, tok)
    got = evaluate_pairs(model, encoded, vocab, tok, bos, eos, autocast=autocast)
    tokens = int(encoded.spans[:, 3].sum()) + len(encoded)
    return PairsReport(len(pairs), tokens, got.loss, got.pairs, got.bleu, got.corpus_bleu, got.exact,
                       buckets(got.sources, got.replies, got.references))


def decoder_only_report(model, ck, source: PairsSource, autocast=contextlib.nullcontext) -> PairsReport:
    """A decoder-only model's figures on ``source``'s pairs: each source and its tab continued greedily
    up to the newline (as training scores it). The loss per target token only for a model whose loss is a
    next-token loss that does not read the token it predicts (not BERT's masked tokens, not a both-ways
    model's): None otherwise."""
    from .lm_pairs_eval import REPLY_CAP, evaluate_lm_pairs, reply_limit, target_loss

    vocab, tok, fam = ck.vocab, ck.tokenizer, ck.model.family
    loss, tokens = None, 0
    if fam.next_token_loss and not fam.reads_ahead(ck.model):
        loss, tokens = target_loss(model, source.pairs, vocab, tok, autocast)
    got = evaluate_lm_pairs(model, source.pairs, vocab, tok, autocast=autocast, max_new=reply_limit(source.every))
    refs = [t for _, t in source.pairs[:REPLY_CAP]]
    return PairsReport(len(source.pairs), tokens, loss, len(got.replies), got.bleu, got.corpus_bleu, got.exact,
                       buckets(got.sources, got.replies, refs))


def report_lines(rep: PairsReport) -> list[str]:
    """The figures as the CLI prints them: the replies' line, then the table by source length."""
    lines = [f"greedy replies to {rep.replies:,} pairs: exact match {100 * rep.exact:.1f}%, BLEU {rep.bleu:.3f} "
             f"(the chapter's, per sentence), corpus BLEU {rep.corpus_bleu:.3f} (sacrebleu)",
             f"{'source characters':<18} {'pairs':>7} {'exact':>7} {'BLEU':>6} {'corpus BLEU':>11}"]
    for b in rep.by_length:
        if not b.pairs:
            lines.append(f"{b.label:<18} {0:>7} {'-':>7} {'-':>6} {'-':>11}")
            continue
        lines.append(f"{b.label:<18} {b.pairs:>7,} {100 * b.exact:>6.1f}% {b.bleu:>6.3f} {b.corpus_bleu:>11.3f}")
    return lines
