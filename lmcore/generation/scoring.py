"""How likely a model finds a given text: the log-probability of every token after the first, read
with the same decoder generation uses (so a transformer's window slides past its context as it does
when generating)."""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from .beam import log_softmax
from ..errors import ConfigError


@dataclass
class TokenScore:
    text: str
    token_id: int
    logprob: float  # natural log of the model's probability of this token after the ones before it
    rank: int | None = None  # 1: the model's first choice (with ``top``)
    alternatives: tuple = ()  # the model's ``top`` choices here: (text, probability), likeliest first

    @property
    def prob(self) -> float:
        return math.exp(self.logprob)

    def to_dict(self) -> dict:
        d = {"text": self.text, "token_id": self.token_id, "loss": -self.logprob, "prob": self.prob}
        if self.rank is not None:
            d.update(rank=self.rank, alternatives=[[a, p] for a, p in self.alternatives])
        return d


def rank_bucket(rank: int) -> int:
    """GLTR's buckets: 0 = the model's first choice, 1 = in its top 10, 2 = top 100, 3 = the rest."""
    return 0 if rank <= 1 else 1 if rank <= 10 else 2 if rank <= 100 else 3


BUCKETS = ("top 1", "top 10", "top 100", "rest")


@dataclass
class TextScore:
    tokens: list[TokenScore]  # every token of the text but the first (nothing predicts it)
    lead: str = ""            # the first token's text, as shown: read, not scored

    @property
    def text(self) -> str:
        """The text that was scored, as its tokens write it: preprocessed (CRLF line ends as newlines;
        word tokens joined with single spaces), so a view shows ``lead`` then each token's text, never
        pieces of the text as given."""
        return self.lead + "".join(t.text for t in self.tokens)

    @property
    def loss(self) -> float:
        """Mean nats per token."""
        return -sum(t.logprob for t in self.tokens) / len(self.tokens)

    @property
    def ppl(self) -> float:
        return math.exp(self.loss) if self.loss < 700 else float("inf")

    @property
    def bits(self) -> float:
        return -sum(t.logprob for t in self.tokens) / math.log(2)

    @property
    def bits_per_char(self) -> float:
        chars = sum(len(t.text) for t in self.tokens)
        return self.bits / chars if chars else float("nan")

    def summary(self) -> dict:
        return {"tokens": len(self.tokens), "loss": self.loss, "ppl": self.ppl, "bits": self.bits,
                "bits_per_char": self.bits_per_char}


def score_text(gen, text: str, stop_event: threading.Event | None = None, top: int = 0,
               progress=None) -> TextScore:
    """Each token's log-probability under ``gen``'s model (with ``top`` > 0 also its rank among the
    model's choices and the ``top`` likeliest tokens there). Tokens not in the vocabulary count as
    ``<unk>``. Raises ConfigError for a text of fewer than two tokens."""
    tokens = gen.tokenizer.tokenize(text)
    ids = [gen.vocab.token_to_idx.get(t, 0) for t in tokens]
    if len(ids) < 2:
        raise ConfigError("the text is too short to score: it needs at least two tokens")
    dec = gen.decoder()
    logits = dec.prefill(ids[:1])
    piece = gen.tokenizer.piece_decoder()
    lead = piece(tokens[0])  # the first token is read, not scored: its text is not counted
    out = []
    for i in range(1, len(ids)):
        if stop_event is not None and stop_event.is_set():
            break
        if progress is not None and i % 256 == 0:
            progress(i, len(ids) - 1)
        logp = log_softmax(np.asarray(logits))
        score = TokenScore(piece(tokens[i]), ids[i], float(logp[ids[i]]))
        if top:
            score.rank = int((logp > logp[ids[i]]).sum()) + 1
            best = np.argsort(-logp, kind="stable")[:top]
            score.alternatives = tuple((gen.tokenizer.display(gen.vocab.idx_to_token[j]), float(math.exp(logp[j])))
                                       for j in best)
        out.append(score)
        if i + 1 < len(ids):
            logits = dec.step(ids[i])
    return TextScore(out, lead)


def validation_text(store, name: str, chars: int = 2000, offset: int = 0) -> str:
    """About ``chars`` characters of the text ``name`` was validated on (the held-out tail of its corpus,
    as its tokenizer prepared it), from ``offset`` characters into that tail. Raises CorpusError when
    the corpus is not here (not downloaded, or the file moved) or is no longer the text it was trained on."""
    from ..data import corpus as corpora
    from ..errors import CorpusError

    ck = store.read(name)
    ref = ck.corpus
    c = corpora.load(ref.argument(), store.home, encoding=ref.encoding, fetch_missing=False)
    if c.sha1 != ref.sha1:
        raise CorpusError(f"'{ref.name}' is not the text '{name}' was trained on any more (its sha1 changed)")
    tokens = ck.tokenizer.tokenize(c.text)
    tail = tokens[len(tokens) - ref.val_tokens:] if ref.val_tokens else tokens[-len(tokens) // 10:]
    if ck.tokenizer.level == "char":
        return "".join(tail[offset: offset + chars])
    text = ck.tokenizer.join(tail)
    return text[offset: offset + chars]
