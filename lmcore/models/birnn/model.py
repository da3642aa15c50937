"""Two recurrent networks over the same embedding: ``ltr`` reads left to right and predicts the next
token, ``rtl`` reads right to left and predicts the previous one; a blank at t is predicted from ltr's
state after t-1 and rtl's state after t+1, side by side (``blank_head``). The directions never mix, so
no prediction reads the token it predicts.

Training takes the mean of the three cross-entropies, the blank head's at every ``blank_every``-th position
(BLANK_EVERY where that head costs more than the two networks: a word model); ``forward`` is the left-to-right network alone (its
state carried from batch to batch as any recurrent model's), so validation reports an honest next-token
loss, comparable with the forward models'."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import LanguageModel
from ..config import ModelConfig
from ..recurrent.model import UNIT_VALUES, trace_cells
from .shapes import GATES

CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}
RESCORED = 16  # the blank head's candidates each direction scores again at a blank
# the weight of the blank head's opinion beside the two directions' readings: it reads one step less (not
# through the candidate). On every 3-minute timemachine model measured (all 2,553 character blanks, five
# models; 587 word blanks, two), a quarter gave +0.4 to +0.6 points of top-1 over equal weights with
# characters, the same with words (quiet 2-core CPU, 2026-12-04)
HEAD_WEIGHT = 0.25
# where the blank head's 2h × vocab product costs more than the two recurrent networks (a word model), it learns
# at every BLANK_EVERY-th position of a batch (from a random first), elsewhere at every one. timemachine, small,
# 3 minutes (2-core AMD EPYC, 2026-12-04, fill on all the validation blanks): words at every position 343 steps,
# 2,820 tokens/s, validation 5.676, top-1 25.4%; every 4th 412 steps, 3,396 tokens/s, 5.538, 32.9%; every 8th
# 420 steps, 5.507, 32.0% (the forward LSTM by scoring: 27.9%); characters, where the head is cheap, every
# position 88.1% (1.479), every 4th 86.9% (1.505)
BLANK_EVERY = 4


def _ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())


class BiRNNLM(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        v, h, n_in = c.vocab_size, c.hidden, c.embed or c.hidden
        self.embedding = nn.Embedding(v, n_in)
        drop = c.dropout if c.num_layers > 1 else 0.0
        self.ltr = CELLS[c.cell](n_in, h, c.num_layers, dropout=drop, batch_first=True)
        self.rtl = CELLS[c.cell](n_in, h, c.num_layers, dropout=drop, batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.next_head = nn.Linear(h, v)
        self.previous_head = nn.Linear(h, v)
        self.blank_head = nn.Linear(2 * h, v)
        recurrent = 2 * sum(GATES[c.cell] * h * ((n_in if i == 0 else h) + h) for i in range(c.num_layers))
        self.blank_every = BLANK_EVERY if 2 * h * v > recurrent else 1

    def init_state(self, batch_size: int, device="cpu"):
        """The left-to-right network's state (the right-to-left one starts afresh at each text's end)."""
        c = self.config
        h = torch.zeros(c.num_layers, batch_size, c.hidden, device=device, dtype=self.next_head.weight.dtype)
        return (h, torch.zeros_like(h)) if c.cell == "lstm" else h

    def _top(self, state) -> torch.Tensor:
        """The last layer's h of a left-to-right state: (batch, hidden)."""
        return (state[0] if self.config.cell == "lstm" else state)[-1]

    def _right_to_left(self, e: torch.Tensor) -> torch.Tensor:
        """rtl's output at each position, after reading from the end back to that position."""
        return self.rtl(e.flip(1))[0].flip(1)

    def forward(self, x, state=None, targets=None):
        """The left-to-right network: next-token logits (batch, time, vocab) and its new state. With
        ``targets`` (x shifted by one, as training gives them) the training loss instead of the logits:
        the mean of the next-token, previous-token and blank losses."""
        if state is None:
            state = self.init_state(x.shape[0], x.device)
        if targets is None:
            y, state = self.ltr(self.drop(self.embedding(x)), state)
            return self.next_head(self.drop(y)), state
        seq = torch.cat([x, targets[:, -1:]], 1)             # s_0 .. s_T
        e = self.drop(self.embedding(seq))
        hf, new_state = self.ltr(e[:, :-1], state)            # hf[t]: after s_0 .. s_t
        hb = self._right_to_left(e[:, 1:])                    # hb[t]: after s_T .. s_(t+1)
        left = torch.cat([self._top(state)[:, None].to(hf.dtype), hf], 1)   # after s_(t-1), t = 0 .. T
        right = torch.cat([hb, torch.zeros_like(hb[:, :1])], 1)              # after s_(t+1)
        every = self.blank_every
        at = slice(int(torch.randint(every, ())) if every > 1 else 0, None, every)
        loss = (_ce(self.next_head(self.drop(hf)), targets) + _ce(self.previous_head(self.drop(hb)), x)
                + _ce(self.blank_head(self.drop(torch.cat([left[:, at], right[:, at]], -1))), seq[:, at])) / 3
        return loss, new_state

    def train_loss(self, x, y, state=None, run=None):
        return (run or self)(x, state, targets=y)

    def blank_logits(self, ids: torch.Tensor, blanks: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time) -> (batch, time, vocab): at each position the token there predicted from the
        tokens before it (left to right, from a fresh state) and after it (right to left, from the end),
        never from the token itself. At the ``blanks`` (a mask), the blank head's first RESCORED candidates
        are scored again by each direction as a language model reading the other side through the
        candidate (the forward one: P(w | left) P(right | left, w); the backward one the mirror of it), and
        the three opinions multiplied (the head's to the power HEAD_WEIGHT): the logits there are that
        product, over those candidates only."""
        e = self.embedding(ids)
        hf = self.ltr(e, self.init_state(ids.shape[0], ids.device))[0]
        hb = self._right_to_left(e)
        left = torch.cat([torch.zeros_like(hf[:, :1]), hf[:, :-1]], 1)
        right = torch.cat([hb[:, 1:], torch.zeros_like(hb[:, :1])], 1)
        logits = self.blank_head(torch.cat([left, right], -1))
        if blanks is None or not blanks.any():
            return logits
        out = logits.clone()
        rows, cols = blanks.nonzero(as_tuple=True)
        for p in cols.unique().tolist():
            r = rows[cols == p]
            out[r, p] = self._rescored(ids[r, :p], ids[r, p + 1:], logits[r, p]).to(out.dtype)
        return out

    def _rescored(self, left: torch.Tensor, right: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """(b, vocab) logits of blanks between ``left`` (b, l) and ``right`` (b, r) ids: the blank head's
        ``logits``' first candidates, each with the log-probability the forward and the backward language
        models give it and HEAD_WEIGHT times the blank head's (each normalised over the candidates); the
        others far below."""
        head = torch.log_softmax(logits.float(), -1)
        cands = head.topk(min(RESCORED, head.shape[-1]), -1).indices
        score = HEAD_WEIGHT * torch.log_softmax(head.gather(1, cands), -1)
        for rnn, out_head, before, after in ((self.ltr, self.next_head, left, right),
                                            (self.rtl, self.previous_head, right.flip(1), left.flip(1))):
            score = score + torch.log_softmax(self._reading(rnn, out_head, before, after, cands), -1)
        return torch.full_like(head, -1e4).scatter_(1, cands, score)

    def _reading(self, rnn, head, before: torch.Tensor, after: torch.Tensor, cands: torch.Tensor) -> torch.Tensor:
        """(b, k): log P(w | before) + log P(after | before, w) for each candidate w, under one direction's
        network (``rnn`` reading ``before`` then w then ``after``, ``head`` its next-token output)."""
        b, k = cands.shape
        state = self.init_state(b, cands.device)
        logp = torch.zeros(b, k, device=cands.device)
        if before.shape[1]:
            h, state = rnn(self.embedding(before), state)
            logp = torch.log_softmax(head(h[:, -1]).float(), -1).gather(1, cands)
        if not after.shape[1]:
            return logp
        seq = torch.cat([cands.reshape(-1, 1), after.repeat_interleave(k, 0)], 1)
        state = tuple(s.repeat_interleave(k, 1) for s in state) if isinstance(state, tuple) \
            else state.repeat_interleave(k, 1)
        h, _ = rnn(self.embedding(seq[:, :-1]), state)
        tail = torch.log_softmax(head(h).float(), -1).gather(-1, seq[:, 1:, None]).squeeze(-1).sum(-1)
        return logp + tail.view(b, k)

    @property
    def unit_values(self) -> tuple[str, ...]:
        return UNIT_VALUES[self.config.cell]

    @property
    def unit_layers(self) -> tuple[str, ...]:
        n = self.config.num_layers
        return (*(f"forward {i}" for i in range(n)), *(f"backward {i}" for i in range(n)))

    @torch.no_grad()
    def trace(self, ids: torch.Tensor, tick=None) -> list[dict[str, torch.Tensor]]:
        """Both directions' units, each layer of ``ltr`` then each of ``rtl`` (``unit_layers``): at token
        t, ltr's values after reading up to t, rtl's after reading from the end back to t."""
        c = self.config
        x = self.embedding(ids.reshape(-1).long())
        total = 2 * c.num_layers * len(x)
        forward = trace_cells(self.ltr, c.cell, x, c.num_layers, c.hidden, tick, 0, total)
        backward = trace_cells(self.rtl, c.cell, x.flip(0), c.num_layers, c.hidden, tick, total // 2, total)
        return forward + [{k: v.flip(0) for k, v in layer.items()} for layer in backward]
