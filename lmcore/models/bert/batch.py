"""BERT's training examples, made from the token windows every model is trained on (d2l's BERT chapter):

- **next-sentence pairs** (:func:`sentence_pairs`): each window is split at the sentence end nearest its
  middle (a token ending in ".", "!", "?" or a newline; a window without one is split in the middle):
  A is the text up to the split, B the text after it, so A and B are consecutive. Half of the rows (drawn
  at random) take instead, as B, as many tokens from another row of the batch, from a sentence start
  when it has one (label 0: not next). Each row reads ``<cls> A <sep> B <sep>``, segment 0 up to the
  first ``<sep>``, 1 after it: every row is its window's length + 3 tokens, so nothing is padded;
- **masked tokens** (:func:`mask_tokens`): 15% of each row's text tokens (rounded, at least one) are
  chosen; of those 80% become ``<mask>``, 10% a random text token, 10% stay; the chosen ones are the
  targets (the others are -100, ignored by the loss).

Randomness comes from the ``generator`` given (training: torch's default one, seeded by the run)."""
from __future__ import annotations

from dataclasses import dataclass

import torch

CHOSEN, AS_MASK, AS_RANDOM = 0.15, 0.8, 0.1
IGNORE = -100
ENDINGS = (".", "!", "?", "\n")


@dataclass
class Specials:
    """The ids of BERT's three special tokens, the last three of its vocabulary (``<cls> <sep> <mask>``)."""

    cls: int
    sep: int
    mask: int

    @classmethod
    def of(cls, vocab_size: int) -> "Specials":
        return cls(vocab_size - 3, vocab_size - 2, vocab_size - 1)

    @property
    def text_tokens(self) -> int:
        """How many ids are text tokens (all before the special ones)."""
        return self.cls


@dataclass
class Batch:
    tokens: torch.Tensor     # (batch, time) ids: <cls> A <sep> B <sep>, some masked
    segments: torch.Tensor   # (batch, time) 0 for <cls> A <sep>, 1 for B <sep>
    targets: torch.Tensor    # (batch, time) the original token where one was chosen, else IGNORE
    is_next: torch.Tensor    # (batch,) 1 when B follows A in the text, 0 when B is another row's


def sentence_ends(tokens: list[str]) -> list[int]:
    """The ids of the tokens that end a sentence (their text ends in ".", "!", "?" or a newline)."""
    return [i for i, t in enumerate(tokens) if t.rstrip(" ").endswith(ENDINGS) or t.endswith("\n")]


def _split(row: torch.Tensor, ends: torch.Tensor | None) -> int:
    """Where A ends in ``row``: after the sentence end nearest the middle (never first or last), or the middle."""
    n = len(row)
    if ends is not None and n > 2:
        at = torch.nonzero(ends[row[:-1]], as_tuple=True)[0] + 1   # positions after a sentence end
        if len(at):
            return int(at[torch.argmin((at - n // 2).abs())])
    return max(1, n // 2)


def _random_b(x: torch.Tensor, i: int, p: int, ends: torch.Tensor | None, g) -> torch.Tensor:
    """As many tokens as row ``i`` has after ``p``, from another row (the same row, elsewhere than ``p``,
    when the batch has one), from a sentence start when that row has one that leaves room."""
    b, n = x.shape
    length = n - p
    j = (i + 1 + int(torch.randint(max(b - 1, 1), (1,), generator=g))) % b if b > 1 else i
    room = n - length
    starts = [0]
    if ends is not None:
        starts += [int(p) + 1 for p in torch.nonzero(ends[x[j, :room]], as_tuple=True)[0]]
    starts = [s for s in starts if j != i or s != p]
    start = starts[int(torch.randint(len(starts), (1,), generator=g))]
    return x[j, start: start + length]


def sentence_pairs(x: torch.Tensor, specials: Specials, ends: torch.Tensor | None = None,
                   generator: torch.Generator | None = None):
    """(tokens, segments, is_next) from windows ``x`` (batch, time): see the module's docstring. ``ends``:
    a boolean per vocabulary id, True for a sentence end (None: every window split in the middle)."""
    b, n = x.shape
    cpu = x.detach().cpu().long()
    cpu_ends = ends.cpu() if ends is not None else None
    swapped = torch.rand(b, generator=generator) < 0.5
    rows, segs = [], []
    cls, sep = torch.tensor([specials.cls]), torch.tensor([specials.sep])
    for i in range(b):
        p = _split(cpu[i], cpu_ends)
        a, nxt = cpu[i, :p], cpu[i, p:]
        if swapped[i]:
            nxt = _random_b(cpu, i, p, cpu_ends, generator)
        rows.append(torch.cat([cls, a, sep, nxt, sep]))
        segs.append(torch.cat([torch.zeros(p + 2, dtype=torch.long), torch.ones(n - p + 1, dtype=torch.long)]))
    dev = x.device
    return torch.stack(rows).to(dev), torch.stack(segs).to(dev), (~swapped).long().to(dev)


def mask_tokens(tokens: torch.Tensor, specials: Specials, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked tokens, targets) of ``tokens`` (batch, time): see the module's docstring. Special tokens are
    never chosen."""
    g, dev = generator, tokens.device
    tok = tokens.detach().cpu()
    text = tok < specials.text_tokens
    k = (text.sum(1).float() * CHOSEN).round().clamp(min=1).long()      # per row
    keys = torch.rand(tok.shape, generator=g).masked_fill(~text, 2.0)  # special tokens last
    rank = keys.argsort(1).argsort(1)
    chosen = (rank < k[:, None]) & text
    how = torch.rand(tok.shape, generator=g)
    random_ids = torch.randint(specials.text_tokens, tok.shape, generator=g)
    out = torch.where(chosen & (how < AS_MASK), torch.full_like(tok, specials.mask), tok)
    out = torch.where(chosen & (how >= AS_MASK) & (how < AS_MASK + AS_RANDOM), random_ids, out)
    targets = torch.where(chosen, tok, torch.full_like(tok, IGNORE))
    return out.to(dev), targets.to(dev)


def make_batch(x: torch.Tensor, specials: Specials, ends: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> Batch:
    """The MLM and NSP batch of windows ``x`` (batch, time)."""
    tokens, segments, is_next = sentence_pairs(x, specials, ends, generator)
    masked, targets = mask_tokens(tokens, specials, generator)
    return Batch(masked, segments, targets, is_next)
