"""Greedy replies of encoder–decoder models (families that ``reads_pairs``): the source encoded once, then
the likeliest token at each step until the end token (eos) or the model's length limit. ``greedy``
decodes a padded batch in torch (evaluation: batched, on any device, under the run's autocast); one
source text is answered by lmcore/generation/seq2seq_decode.py (``reply``), as a :class:`Reply`."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..data.text import Tokenizer
from ..data.vocab import Vocab
from ..errors import ConfigError
from .generator import PromptInfo


@torch.no_grad()
def greedy(model, src: torch.Tensor, src_len: torch.Tensor, bos: int, eos: int, max_len: int
           ) -> tuple[list[list[int]], list[list[float]], list[bool]]:
    """Per source of the batch: the reply's ids (without eos), each one's probability (the model's own), and
    whether it ended at eos (False: cut at ``max_len`` tokens). <unk> is never chosen."""
    state = model.encode(src, src_len)
    token = torch.full((src.shape[0],), bos, dtype=torch.long, device=src.device)
    done = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    ids, probs = [], []
    for _ in range(max_len):
        logits, state = model.decode_step(token, state)
        probs_all = torch.softmax(logits.float(), -1)
        p, token = probs_all[:, 1:].max(-1)  # never <unk> (id 0), as sampling and beam search
        token = token + 1
        ids.append(token)
        probs.append(p)
        done |= token == eos
        if bool(done.all()):
            break
    ids_t, probs_t = torch.stack(ids, 1).tolist(), torch.stack(probs, 1).tolist()
    out, conf, ended = [], [], []
    for row, prow in zip(ids_t, probs_t):
        n = row.index(eos) if eos in row else len(row)
        out.append(row[:n])
        conf.append(prow[:n])
        ended.append(n < len(row))
    return out, conf, ended


def target_limit(model, max_len: int | None = None) -> int:
    """The most target tokens (``eos`` included) a reply may have: ``max_len``, at most the model's."""
    limit = int(model.config.max_len)
    if max_len is not None:
        if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
            raise ConfigError(f"the length limit must be a whole number of at least 1 (got {max_len!r})")
        limit = min(limit, max_len)
    return limit


@dataclass
class Reply:
    """A model's reply to one source: its text, its tokens' pieces of that text (they join to it) and their
    probabilities, whether it ended at the end token (False: cut at ``limit`` tokens, the length asked
    for or the model's), what happened to the source, and the log-probability of the whole over its
    ``scored`` tokens (the end token included when it ended there)."""

    text: str
    tokens: list[str]
    probs: list[float]
    ended: bool
    info: PromptInfo = field(default_factory=PromptInfo)
    limit: int = 0
    logprob: float | None = None
    scored: int = 0

    def score(self, length_penalty: float = 1.0) -> float | None:
        """logprob / scored ** length_penalty (how beam search ranks replies), None when not known."""
        return None if self.logprob is None else self.logprob / max(1, self.scored) ** length_penalty


def encode_source(vocab: Vocab, tok: Tokenizer, source: str, limit: int, unknown: str = "unk"
                  ) -> tuple[list[int], PromptInfo]:
    """The source as ids (unknown tokens mapped to <unk> or dropped, as prompts are); ConfigError for an
    empty source or one longer than the model's limit."""
    info, ids = PromptInfo(policy=unknown), []
    for t in tok.tokenize(source):
        i = vocab.token_to_idx.get(t)
        if i is None:
            info.unknown.append(tok.display(t))
            if unknown == "drop":
                continue
            i = 0
        ids.append(i)
    if not ids:
        raise ConfigError("the source is empty: give the text the model should answer (--prompt)")
    if len(ids) > limit:
        raise ConfigError(f"the source is {len(ids):,} tokens long, over the model's limit of {limit:,}: "
                          f"give a shorter one")
    info.tokens = len(ids)
    return ids, info
