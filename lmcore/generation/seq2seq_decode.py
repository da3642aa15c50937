"""Decoding for encoder-decoder models (every family that ``reads_pairs``; the interface of
lmcore/models/encdec.py: ``encode``, ``decode_step``, ``select_state``, ``config.max_len``), written once
for all of them: greedy (one source or a batch), sampling with the usual controls, and beam search.

The source is read once; the target starts from ``bos`` and ends at ``eos`` or at the length limit (the
``max_len`` asked for, never more than the model's ``max_len``), and a :class:`Reply` says which. The
probabilities reported are the model's own (softmax of the raw logits), so they can be checked against a
forward pass; ``<unk>`` (id 0) is never chosen, as in sampling.

Each goes through the model's ``fast_decoder`` where it offers one (the seq2seq family's numpy step on the
CPU: lmcore/models/seq2seq/decoder.py), else through ``encode`` and ``decode_step``."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch

from ..errors import ConfigError, NotFinite
from .one_thread import one_torch_thread
from .sampling import sample, softmax, top_alternatives
from .sampling_settings import SamplingSettings
from .translate import Reply as TextReply, encode_source, target_limit


@dataclass
class Reply:
    """A decoded target: ``ids`` without ``eos``, the model's probability of each (``probs``), the
    log-probability of the whole (``eos`` included when it ended there), ``ended`` (True: at ``eos``;
    False: cut at ``limit`` tokens)."""

    ids: list[int] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    logprob: float = 0.0
    ended: bool = False
    limit: int = 0

    @property
    def reason(self) -> str:
        """"eos" or "length" (cut at the limit), for messages and --json."""
        return "eos" if self.ended else "length"

    @property
    def length(self) -> int:
        """Tokens scored: the ids, and eos when it ended there."""
        return len(self.ids) + (1 if self.ended else 0)

    def score(self, length_penalty: float = 1.0) -> float:
        """logprob / length ** length_penalty (0: the raw log-probability; 1: per token)."""
        return self.logprob / max(1, self.length) ** length_penalty


@dataclass
class Step:
    """One sampled token: its id, the model's probability of it, the top alternatives (ids, probs), and
    whether it is the ``eos`` that ends the reply."""

    token_id: int
    prob: float
    alternatives: tuple
    eos: bool


def source_problem(model, src_ids) -> str | None:
    """Why ``src_ids`` cannot be a source for ``model`` (empty, longer than its limit, ids outside its
    vocabulary), or None."""
    n, limit = len(src_ids), int(model.config.max_len)
    if n == 0:
        return "the source is empty: type something to translate"
    if n > limit:
        return f"the source is {n} tokens long, more than this model's limit of {limit}"
    return _outside(model, [int(i) for i in src_ids], "the source")


def _outside(model, ids: list[int], what: str) -> str | None:
    size = getattr(model.config, "vocab_size", 0)
    bad = [i for i in ids if not 0 <= i < size] if size else []
    return f"{what} holds token id {bad[0]}, outside the vocabulary of {size}" if bad else None


def _choosable(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the model's log-probabilities, the same with ``<unk>`` ruled out) of logits (rows, vocab); LmError
    when a row has no finite score (damaged weights, a diverged run)."""
    logp = torch.log_softmax(logits.double(), -1)
    if logp.shape[1] > 1 and not torch.isfinite(logp[:, 1:]).any(-1).all():
        raise NotFinite.scores()
    pick = logp.nan_to_num(float("-inf"))
    if pick.shape[1] > 1:
        pick[:, 0] = float("-inf")
    return logp, pick


def _device(model) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _batch(model, sources, eos: int, bos: int) -> tuple[torch.Tensor, torch.Tensor]:
    problem = _outside(model, [bos, eos], "the start and end tokens")
    if problem:
        raise ConfigError(problem)
    for src in sources:
        problem = source_problem(model, src)
        if problem:
            raise ConfigError(problem)
    width, dev = max(len(s) for s in sources), _device(model)
    src = torch.full((len(sources), width), eos, dtype=torch.long)
    for i, s in enumerate(sources):
        src[i, : len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return src.to(dev), torch.tensor([len(s) for s in sources], dtype=torch.long, device=dev)


class _Decoding:
    """The decoder of one batch of sources: the model's ``fast_decoder`` where it has one (e.g. numpy on the
    CPU), else its ``encode`` and ``decode_step``; tokens and rows are lists of ids."""

    def __init__(self, model, src: torch.Tensor, src_len: torch.Tensor):
        self.model, self.device = model, src.device
        make = getattr(model, "fast_decoder", None)
        self.fast = make() if make is not None else None
        if self.fast is not None:
            self.fast.start(src, src_len)
        else:
            with torch.no_grad():
                self.state = model.encode(src, src_len)

    def logits(self, tokens: list[int]) -> torch.Tensor:
        """The next logits (rows, vocab) as a tensor (on the CPU for the fast decoder)."""
        if self.fast is not None:
            return torch.from_numpy(self.fast.step(tokens))
        with torch.no_grad():
            logits, self.state = self.model.decode_step(torch.tensor(tokens, dtype=torch.long, device=self.device),
                                                        self.state)
        return logits

    def vectors(self, tokens: list[int]) -> np.ndarray:
        """The next logits (rows, vocab) as a float32 numpy array."""
        if self.fast is not None:
            return self.fast.step(tokens)
        return self.logits(tokens).detach().float().cpu().numpy()

    def select(self, rows: list[int]) -> None:
        if self.fast is not None:
            self.fast.select(rows)
        else:
            index = torch.tensor(rows, dtype=torch.long, device=self.device)
            with torch.no_grad():
                self.state = self.model.select_state(self.state, index)


@torch.no_grad()
def greedy_many(model, sources: list, bos: int, eos: int, max_len: int | None = None) -> list[Reply]:
    """The most likely token at every step, for each source of a batch (one encoder pass; rows that
    reached ``eos`` stop counting)."""
    if not sources:
        return []
    limit = target_limit(model, max_len)
    src, src_len = _batch(model, sources, eos, bos)
    replies = [Reply(limit=limit) for _ in sources]
    decoding = _Decoding(model, src, src_len)
    tokens = [bos] * len(sources)
    done = [False] * len(sources)
    with one_torch_thread(decoding.fast is not None):  # numpy decodes; torch only picks
        for _ in range(limit):
            logp, pick = _choosable(decoding.logits(tokens))
            token = pick.argmax(-1)
            best = logp.gather(1, token[:, None])[:, 0].tolist()
            tokens = token.tolist()
            for i, (t, lp) in enumerate(zip(tokens, best)):
                if done[i]:
                    continue
                r = replies[i]
                r.logprob += lp
                if t == eos:
                    r.ended = done[i] = True
                else:
                    r.ids.append(t)
                    r.probs.append(math.exp(lp))
            if all(done):
                break
    return replies


def greedy(model, src_ids, bos: int, eos: int, max_len: int | None = None) -> Reply:
    """The most likely token at every step for one source."""
    return greedy_many(model, [list(src_ids)], bos, eos, max_len)[0]


def sample_steps(model, src_ids, bos: int, eos: int, settings: SamplingSettings | None = None,
                 rng: np.random.Generator | None = None, max_len: int | None = None) -> Iterator[Step]:
    """The reply to one source token by token, each drawn with the sampling controls of ``settings``
    (temperature 0: greedy); the last step is the ``eos`` (``Step.eos``) unless the limit cut it. (Not under
    ``torch.no_grad`` as a whole: a generator so wrapped enters and leaves it at every token; the decoding
    does its torch work under it.)"""
    s = settings or SamplingSettings()
    rng = rng if rng is not None else np.random.default_rng(s.seed)
    limit = target_limit(model, max_len)
    src, src_len = _batch(model, [list(src_ids)], eos, bos)
    decoding = _Decoding(model, src, src_len)
    token, recent = bos, []
    for _ in range(limit):
        vec = decoding.vectors([token])[0]
        probs = softmax(vec)  # a new array: vec stays as the model gave it
        token = sample(vec, s, recent[-s.repetition_window:] if s.repetition_window else (), rng, probs)
        yield Step(token, float(probs[token]), top_alternatives(probs), token == eos)
        if token == eos:
            return
        recent.append(token)


@dataclass
class _Beam:
    ids: list
    probs: list
    logprob: float


def _advance(beams: list, logp: torch.Tensor, eos: int, width: int, limit: int) -> tuple[list, list, list]:
    """One step of the search: the ``width`` best continuations of ``beams`` (logp: (beams, vocab)),
    as (parent row, token, beam); the replies that ended at ``eos`` (only those ranked within the best
    ``width``: a beam of 1 is greedy)."""
    total = torch.tensor([b.logprob for b in beams], dtype=torch.float64, device=logp.device)[:, None] + logp
    k = min(2 * width, total.numel())
    values, flat = total.flatten().topk(k)
    vocab = logp.shape[1]
    live, ended = [], []
    for rank, (value, at) in enumerate(zip(values.tolist(), flat.tolist())):
        row, token = divmod(at, vocab)
        if value == float("-inf"):
            break
        parent, p = beams[row], math.exp(value - beams[row].logprob)
        if token == eos:
            if rank < width:
                ended.append(Reply(list(parent.ids), list(parent.probs), value, True, limit))
            continue
        live.append((row, token, _Beam(parent.ids + [token], parent.probs + [p], value)))
        if len(live) == width:
            break
    return live, ended


@torch.no_grad()
def beam_search(model, src_ids, bos: int, eos: int, width: int = 4, max_len: int | None = None,
                length_penalty: float = 1.0) -> Reply:
    """The reply of highest ``Reply.score(length_penalty)`` among the ``width`` best continuations kept at
    every step (all beams in one batch). It stops once ``width`` replies have ended at ``eos`` (or none is
    left to extend); beams still open at the length limit compete as cut replies (``ended`` False)."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"the beam width must be a whole number of at least 1 (got {width!r})")
    limit = target_limit(model, max_len)
    src, src_len = _batch(model, [list(src_ids)], eos, bos)
    decoding = _Decoding(model, src, src_len)
    beams, tokens, finished = [_Beam([], [], 0.0)], [bos], []
    with one_torch_thread(decoding.fast is not None):  # numpy decodes; torch only picks
        for _ in range(limit):
            live, ended = _advance(beams, _choosable(decoding.logits(tokens))[1], eos, width, limit)
            finished += ended
            if len(finished) >= width or not live:
                beams = []
                break
            decoding.select([row for row, _, _ in live])
            tokens = [t for _, t, _ in live]
            beams = [b for _, _, b in live]
    finished += [Reply(b.ids, b.probs, b.logprob, False, limit) for b in beams]
    return max(finished, key=lambda r: r.score(length_penalty))


def text_reply(model, vocab, tok, source: str, unknown: str, decode):
    """``decode(src_ids, bos, eos) -> Reply`` on the text ``source``, as translate's ``Reply``."""
    from ..models.encdec import special_ids

    ids, info = encode_source(vocab, tok, source, int(model.config.max_len), unknown)
    bos, eos = special_ids(vocab, tok)
    was = model.training
    model.eval()
    try:
        r = decode(ids, bos, eos)
    finally:
        model.train(was)
    tokens = vocab.decode(r.ids)
    return TextReply(tok.join(tokens), tok.pieces(tokens), r.probs, r.ended, info, r.limit, r.logprob, r.length)


def reply(model, vocab, tok, source: str, unknown: str = "unk", max_len: int | None = None):
    """The greedy reply of ``model`` to the text ``source`` (its whole text: a pairs model answers a line), at
    most ``max_len`` tokens (None: the model's limit), with its log-probability, as translate's ``Reply``."""
    target_limit(model, max_len)  # a bad limit is refused before anything is read
    return text_reply(model, vocab, tok, source, unknown, lambda ids, bos, eos: greedy(model, ids, bos, eos, max_len))


def beam_reply(model, vocab, tok, source: str, width: int, length_penalty: float | None = None,
               unknown: str = "unk", max_len: int | None = None):
    """The beam-search reply of ``model`` to the text ``source``, as lmcore.generation.translate's
    ``Reply`` (its text, tokens and their probabilities, whether it ended at eos, its log-probability);
    ``length_penalty`` None: 1 (the mean log-probability per token); ``max_len``: the most tokens (None:
    the model's limit)."""
    penalty = 1.0 if length_penalty is None else length_penalty
    return text_reply(model, vocab, tok, source, unknown,
                       lambda ids, bos, eos: beam_search(model, ids, bos, eos, width, max_len, penalty))


def sampled(model, src_ids, bos: int, eos: int, settings: SamplingSettings, max_len: int | None = None) -> Reply:
    """The whole reply of :func:`sample_steps` as a :class:`Reply`."""
    reply = Reply(limit=target_limit(model, max_len))
    for step in sample_steps(model, src_ids, bos, eos, settings, max_len=max_len):
        reply.logprob += math.log(max(step.prob, 1e-300))
        if step.eos:
            reply.ended = True
        else:
            reply.ids.append(step.token_id)
            reply.probs.append(step.prob)
    return reply


def sample_reply(model, vocab, tok, source: str, settings: SamplingSettings, unknown: str = "unk"):
    """A reply of ``model`` to the text ``source`` drawn with ``settings``' sampling controls (its
    ``max_tokens`` a limit below the model's), as lmcore.generation.translate's ``Reply``."""
    return text_reply(model, vocab, tok, source, unknown,
                       lambda ids, bos, eos: sampled(model, ids, bos, eos, settings, settings.max_tokens))
