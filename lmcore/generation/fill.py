"""Fill in the blanks: every ``_`` of a text is one blank token (``\\_`` a literal underscore); each
blank gets the model's candidates with their probabilities.

Several blanks are filled one at a time, the most confident first (the blank whose first candidate is
the likeliest), and each round reads again what is known around the blanks still open: a blank's
context runs from the open blank before it to the open blank after it (a model reads nothing it does
not know).

Two ways of filling, by what the model can do (its family's capabilities):

- both directions (``fills_both_ways``, the birnn family): the model's ``blank_logits``, which predict
  a token from the left-to-right state before it and the right-to-left state after it (a birnn also
  scores its first candidates again with each direction reading the other side through them);
- all at once (``fills_jointly``, the bert family: mask-predict): the whole text is read with every open
  blank masked, each round, and the most confident blank is filled;
- scoring (any model that generates: the recurrent, min and n-gram models, the transformer): the
  forward model's top ``SCORED`` candidates at the blank, from its left context, each rescored with the
  probability of the text after it, P(w | left) * P(right | left, w), renormalised over those candidates
  (with no left context: every token, each equally likely before the right side is read)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..errors import ConfigError

SCORED = 100      # candidates a forward model rescores at each blank
MAX_TOP = 100
CHUNK = 256       # candidate texts scored in one batch
BLANK_ID = 0      # what a both-ways model reads at a blank (<unk>; it never reads the token there anyway)
_MARK = "qzxblankxzq"  # a blank while the text is preprocessed and split: letters only (d2l keeps it)
BOTH_WAYS = ("both directions: the left-to-right state before each blank and the right-to-left state after it, "
             "the first candidates scored again by each direction reading on through them")
JOINTLY = "mask-predict: the whole text read with every open blank masked, the most confident blank filled first"
SCORING = (f"scoring: the forward model's top {SCORED} candidates at each blank rescored with the probability of "
           f"the text after it (up to the next open blank), renormalised over them")


@dataclass
class Blank:
    number: int                 # 1: the first blank of the text
    order: int                  # 1: filled first
    candidates: list[tuple[str, float]]  # (text, probability), likeliest first
    token_index: int = 0        # where it is among the text's tokens

    @property
    def chosen(self) -> str:
        return self.candidates[0][0]

    def to_dict(self) -> dict:
        return {"blank": self.number, "order": self.order, "chosen": self.chosen,
                "candidates": [{"text": t, "prob": p} for t, p in self.candidates]}


@dataclass
class FillResult:
    text: str                   # the text as its tokens write it, every blank filled with its first candidate
    blanks: list[Blank]         # in the text's order
    method: str                 # BOTH_WAYS or SCORING
    unknown: list[str] = field(default_factory=list)  # context tokens the vocabulary lacks (read as <unk>)

    def to_dict(self) -> dict:
        return {"text": self.text, "method": self.method, "unknown": self.unknown,
                "blanks": [b.to_dict() for b in self.blanks]}


def split_blanks(text: str) -> list[str | None]:
    """The pieces of ``text`` between its blanks, None for each blank: ``_`` is a blank, ``\\_`` an
    underscore."""
    out: list[str | None] = []
    piece: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("\\_", i):
            piece.append("_")
            i += 2
            continue
        if text[i] == "_":
            out += ["".join(piece), None]
            piece = []
        else:
            piece.append(text[i])
        i += 1
    return out + ["".join(piece)]


def tokens_with_blanks(text: str, tokenizer) -> list[str | None]:
    """The tokens of ``text``, None for each blank; ConfigError for text without a blank, only blanks, or
    a blank a word model has no token for (inside a word)."""
    pieces = split_blanks(text)
    if None not in pieces:
        raise ConfigError("the text has no blank: mark each blank with _ (\\_ is a literal underscore)")
    if not "".join(p for p in pieces if p is not None).strip():
        raise ConfigError("the text is only blanks: give the words around them")
    marked = tokenizer.preprocess("".join(_MARK if p is None else p for p in pieces))
    if tokenizer.level == "word":
        tokens = tokenizer.split(marked)
        inside = next((t for t in tokens if _MARK in t and t != _MARK), None)
        if inside is not None:
            word = inside.replace(_MARK, "_")
            raise ConfigError(f"a blank inside the word '{word}': a word model fills whole words (put spaces "
                              f"around _)")
        return [None if t == _MARK else t for t in tokens]
    out: list[str | None] = []
    segments = marked.split(_MARK)
    for i, seg in enumerate(segments):
        if tokenizer.level == "bpe" and i < len(segments) - 1 and seg.endswith(" "):
            seg = seg[:-1]  # byte-level BPE tokens carry the space before a word: the blank takes it
        out += tokenizer.split(seg) if seg else []
        if i < len(segments) - 1:
            out.append(None)
    return out


def fill_blanks(model, vocab, tokenizer, text: str, top: int = 5) -> FillResult:
    """Fill every blank of ``text`` (see the module's docstring) with ``model`` (a LanguageModel, its
    ``vocab`` and ``tokenizer``); each blank lists its ``top`` candidates. ConfigError for a model that
    cannot fill, a text it cannot read, or a ``top`` outside 1..100."""
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= MAX_TOP:
        raise ConfigError(f"--top must be a whole number from 1 to {MAX_TOP} (got {top})")
    problem = model.family.cannot_fill(model.config)
    if problem:
        raise ConfigError(f"a {model.family.describe(model.config)} model cannot fill blanks: {problem}")
    tokens = tokens_with_blanks(text, tokenizer)
    window = model.context_window
    if window is not None and len(tokens) > window:
        raise ConfigError(f"the text is {len(tokens):,} tokens, longer than the model's context of {window:,}: "
                          f"shorten it")
    unknown = [tokenizer.display(t) for t in tokens if t is not None and t not in vocab]
    ids: list[int | None] = [None if t is None else vocab[t] for t in tokens]
    both = model.family.fills_both_ways
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            blanks = _fill_in_order(model, ids, both, top, vocab, tokenizer)
    finally:
        model.train(was_training)
    filled = [vocab.idx_to_token[i] if t is None else t for t, i in zip(tokens, ids)]  # blanks: first candidates
    method = (JOINTLY if model.family.fills_jointly else BOTH_WAYS) if both else SCORING
    return FillResult(tokenizer.join(filled), blanks, method, unknown)


def _fill_in_order(model, ids: list, both: bool, top: int, vocab, tokenizer) -> list[Blank]:
    """Fill the blanks of ``ids`` (None each) in place, the most confident first; the blanks in text order."""
    open_ = [i for i, t in enumerate(ids) if t is None]
    numbers = {pos: n + 1 for n, pos in enumerate(open_)}
    blanks = []
    while open_:
        if model.family.fills_jointly:
            probs = _joint(model, ids, open_)
        else:
            probs = {pos: _distribution(model, ids, pos, open_, both) for pos in open_}
        pos = max(open_, key=lambda p: (float(probs[p].max()), -p))
        best = torch.argsort(probs[pos], descending=True, stable=True)[:top].tolist()
        ids[pos] = best[0]
        open_.remove(pos)
        cands = [(tokenizer.display(vocab.idx_to_token[j]), float(probs[pos][j])) for j in best]
        blanks.append(Blank(numbers[pos], len(blanks) + 1, cands, pos))
    return sorted(blanks, key=lambda b: b.number)


def _distribution(model, ids: list, pos: int, open_: list[int], both: bool) -> torch.Tensor:
    """The model's probabilities (vocab,) for the token at ``pos``, from what lies between the open blanks
    before and after it."""
    lo = max((p + 1 for p in open_ if p < pos), default=0)
    hi = min((p for p in open_ if p > pos), default=len(ids))
    left, right = ids[lo:pos], ids[pos + 1:hi]
    device = model_device(model)
    if both:
        return both_ways_probs(model, torch.tensor([left + [BLANK_ID] + right], device=device), len(left))[0].cpu()
    return scored_probs(model, left, right, device).cpu()


def both_ways_probs(model, rows: torch.Tensor, at: int) -> torch.Tensor:
    """(batch, vocab): the probabilities of the token at column ``at`` of each row of ids (batch, time),
    read from both sides of it by the model's ``blank_logits`` (the blank itself set to BLANK_ID and
    marked as the open blank: BERT reads ``<mask>`` there)."""
    rows = rows.clone()
    rows[:, at] = BLANK_ID
    blanks = torch.zeros_like(rows, dtype=torch.bool)
    blanks[:, at] = True
    return torch.softmax(model.blank_logits(rows, blanks)[:, at].float(), -1)


def _joint(model, ids: list, open_: list[int]) -> dict[int, torch.Tensor]:
    """Every open blank's probabilities (vocab,) at once: the whole text read with every open blank hidden
    (``blank_logits(ids, blanks)``: BERT's mask-predict)."""
    device = model_device(model)
    seq = torch.tensor([[BLANK_ID if t is None else t for t in ids]], device=device)
    blanks = torch.zeros_like(seq, dtype=torch.bool)
    blanks[0, open_] = True
    probs = torch.softmax(model.blank_logits(seq, blanks)[0].float(), -1).cpu()
    return {pos: probs[pos] for pos in open_}


def model_device(model) -> torch.device:
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return torch.device("cpu")


def scored_probs(model, left: list[int], right: list[int], device) -> torch.Tensor:
    """P(w | left) P(right | left, w) over the forward model's top SCORED candidates, renormalised (the
    plain next-token distribution when nothing follows the blank)."""
    def row(ids: list[int]) -> torch.Tensor:
        return torch.tensor([ids], dtype=torch.long, device=device).view(1, len(ids))

    return scored_rows(model, row(left), row(right))[0]


def scored_rows(model, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """:func:`scored_probs` of several blanks at once: ``left`` (blanks, l) and ``right`` (blanks, r) the
    token ids around each blank; (blanks, vocab) probabilities. The candidate texts of all the blanks are
    scored together, CHUNK at a time; a model that carries a state reads each left side once and every
    candidate of it continues from that state."""
    v, (b, n_left), device = model.config.vocab_size, left.shape, left.device
    state = None
    if n_left:
        logits, state = model(left)
        prior = torch.log_softmax(logits[:, -1].float(), -1)
        if not right.shape[1]:
            return prior.exp()
        # the first SCORED by probability, ties by token id (topk breaks ties as the CPU's kernel goes: the
        # same counted model filled "you" on one machine and "tired" on another)
        cands = torch.argsort(prior, dim=-1, descending=True, stable=True)[:, :min(SCORED, v)]
    else:  # nothing before the blank: every token, equally likely until the right side is read
        prior = torch.full((b, v), -math.log(v), device=device)
        if not right.shape[1]:
            return prior.exp()
        cands = torch.arange(v, device=device).expand(b, v)
    k = cands.shape[1]
    seqs = torch.cat([cands.reshape(-1, 1), right.repeat_interleave(k, 0)], 1)  # each candidate, then the right
    start = 0
    if not (model.stateful and n_left):  # read the left side again before each candidate
        seqs, start, state = torch.cat([left.repeat_interleave(k, 0), seqs], 1), n_left, None
    rows = torch.arange(b * k, device=device).split(CHUNK)
    right_logp = torch.cat([_right_logprob(model, start, seqs[r], _state_rows(state, r // k)) for r in rows])
    out = torch.zeros(b, v, device=device)
    return out.scatter_(1, cands, torch.softmax(right_logp.view(b, k) + prior.gather(1, cands), -1))


def _state_rows(state, rows: torch.Tensor):
    """The carried state of the blanks ``rows`` ((layers, batch, hidden) tensors: batch is dimension 1)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(1, rows)
    return type(state)(s.index_select(1, rows) for s in state)


def _right_logprob(model, start: int, seqs: torch.Tensor, state=None) -> torch.Tensor:
    """log P(right | left, w) of each row of ``seqs``: its first ``start`` tokens the left side (or none:
    ``state`` has read it), then the candidate w, then the right side."""
    logits, _ = model(seqs[:, :-1], state)
    logp = torch.log_softmax(logits[:, start:].float(), -1)
    return logp.gather(-1, seqs[:, start + 1:, None]).squeeze(-1).sum(-1)


def fill(store, name: str, text: str, top: int = 5, device: str = "cpu") -> FillResult:
    """Fill the blanks of ``text`` with the saved model ``name`` (see :func:`fill_blanks`). A model that
    cannot fill is told apart, before its weights are read, from a damaged one (StoreError)."""
    from .generator import load_model

    ck = store.read(name)
    problem = ck.model.family.cannot_fill(ck.model)
    if problem:
        raise ConfigError(f"model '{name}' cannot fill blanks: {problem}")
    model, vocab, tokenizer = load_model(store, name, ck, device)
    return fill_blanks(model, vocab, tokenizer, text, top)

