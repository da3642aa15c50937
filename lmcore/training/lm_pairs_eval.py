"""A decoder-only model trained on a pairs corpus, scored as a pairs model is: each validation source is
continued greedily after its tab up to the newline, and the replies are compared with the targets (exact
match, the chapter's BLEU and sacrebleu's corpus BLEU: the same figures as the encoder-decoders')."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.pairs import END, pair_line, pair_prompt
from ..data.text import Tokenizer
from ..data.vocab import Vocab
from . import bleu as scores

REPLY_CAP = 1000    # validation pairs answered at each evaluation (as for the encoder-decoders)
MAX_REPLY = 256     # tokens a reply may take at most
BATCH = 64


@dataclass
class LmPairScores:
    bleu: float
    corpus_bleu: float
    exact: float
    sources: list[str]
    replies: list[str]

    def fields(self) -> dict:
        """The figures as a checkpoint's evaluation point and an EvalEvent hold them."""
        return {"bleu": round(self.bleu, 6), "corpus_bleu": round(self.corpus_bleu, 6), "exact": round(self.exact, 6)}


def reply_limit(train: list[tuple[str, str]]) -> int:
    """Tokens a reply may take: twice the longest training target's characters and two more (an untrained
    model that never writes the newline stops there), at most MAX_REPLY."""
    return min(MAX_REPLY, 2 * max((len(t) for _, t in train), default=0) + 2)


def _ends(vocab: Vocab, tok: Tokenizer) -> torch.Tensor:
    """For each token of the vocabulary: whether its text holds the newline that ends a reply."""
    return torch.tensor([END in tok.join([t]) for t in vocab.idx_to_token], dtype=torch.bool)


@torch.no_grad()
def greedy_replies(model, sources: list[str], vocab: Vocab, tok: Tokenizer, max_new: int = MAX_REPLY,
                   autocast=contextlib.nullcontext) -> list[str]:
    """Each source's reply: ``source<TAB>`` continued with the most likely token until a newline (left out)
    or ``max_new`` tokens. Prompts of the same length in tokens go through the model together (no padding);
    characters not in the vocabulary are ``<unk>``, as in generation."""
    device = next(model.parameters()).device
    ends = _ends(vocab, tok).to(device)
    window = model.context_window
    prompts = [vocab.encode(tok.tokenize(pair_prompt(s))) for s in sources]
    if window:
        max_new = max(1, min(max_new, window // 2))
        prompts = [p[-(window - max_new):] for p in prompts]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    out: list[list[int]] = [[] for _ in sources]
    for rows in groups.values():
        for start in range(0, len(rows), BATCH):
            part = rows[start: start + BATCH]
            x = torch.tensor([prompts[i] for i in part], device=device)
            with autocast():
                logits, state = model(x, model.init_state(len(part), device))
            nxt, done = logits[:, -1].float().argmax(-1), torch.zeros(len(part), dtype=torch.bool, device=device)
            for _ in range(max_new):
                done_now = done | ends[nxt]
                for k in (~done_now).nonzero().flatten().tolist():
                    out[part[k]].append(int(nxt[k]))
                done = done_now
                if bool(done.all()):
                    break
                with autocast():
                    logits, state = model.step(nxt, state)
                nxt = logits.float().argmax(-1)
    return [tok.join(vocab.decode(ids)).split(END, 1)[0].strip() for ids in out]


def evaluate_lm_pairs(model, valid: list[tuple[str, str]], vocab: Vocab, tok: Tokenizer,
                      autocast=contextlib.nullcontext, cap: int = REPLY_CAP, max_new: int = MAX_REPLY) -> LmPairScores:
    """The scores of a decoder-only model on (the first ``cap`` of) its validation pairs."""
    pairs = valid[:cap]
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    was = model.training
    model.eval()
    try:
        replies = greedy_replies(model, sources, vocab, tok, max_new, autocast)
    finally:
        model.train(was)
    return LmPairScores(scores.mean_bleu(replies, refs), scores.corpus_bleu(replies, refs),
                        scores.exact(replies, refs), sources, replies)


def _target_rows(pairs: list[tuple[str, str]], vocab: Vocab, tok: Tokenizer, window: int | None
                 ) -> list[tuple[list[int], int]]:
    """Each pair's line as ids and the index of its first target token: the first token past the tokens
    the line shares with the source's prompt (a token holding the tab and the target's start counts as the
    target's). A line longer than the model's window keeps its end."""
    rows = []
    for s, t in pairs:
        prompt, line = tok.tokenize(pair_prompt(s)), tok.tokenize(pair_line(s, t))
        k = 0
        while k < min(len(prompt), len(line) - 1) and prompt[k] == line[k]:
            k += 1
        ids = vocab.encode(line)
        if window and len(ids) > window + 1:
            k, ids = max(1, k - (len(ids) - window - 1)), ids[-(window + 1):]
        rows.append((ids, max(k, 1)))
    return rows


@torch.no_grad()
def target_loss(model, pairs: list[tuple[str, str]], vocab: Vocab, tok: Tokenizer,
                autocast=contextlib.nullcontext) -> tuple[float, int]:
    """A decoder-only model's loss per target token on ``pairs`` (nats), and the tokens counted: each pair's
    line read from the model's first state, the loss on its target's tokens and the newline after it."""
    device = next(model.parameters()).device
    groups: dict[int, list[tuple[list[int], int]]] = {}
    for ids, k in _target_rows(pairs, vocab, tok, model.context_window):
        groups.setdefault(len(ids), []).append((ids, k))
    total, count = 0.0, 0
    was = model.training
    model.eval()
    try:
        for rows in groups.values():
            for start in range(0, len(rows), BATCH):
                part = rows[start: start + BATCH]
                ids = torch.tensor([r for r, _ in part], device=device)
                y = ids[:, 1:].clone()
                for i, (_, k) in enumerate(part):
                    y[i, : k - 1] = -100
                with autocast():
                    logits, _ = model(ids[:, :-1], model.init_state(len(part), device))
                total += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-100,
                                         reduction="sum").item()
                count += int((y != -100).sum())
    finally:
        model.train(was)
    return (total / count if count else float("nan")), count
