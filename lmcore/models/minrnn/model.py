"""minGRU and minLSTM ("Were RNNs All We Needed?", Feng et al., 2024): the gates read only the input,
never the previous state, so the recurrence is linear in h,

    h_t = a_t * h_{t-1} + b_t
    minGRU:  z = sigmoid(k),          a = 1 - z,        b = z * g(h~)
    minLSTM: f, i = sigmoid(·), then  a = f / (f + i),  b = i / (f + i) * g(h~)

and a whole sequence is one parallel scan (cumulative sums in log space, for stability) while training;
generation runs the same recurrence one token at a time. g keeps the candidate h~ positive (x + 0.5 for
x >= 0, sigmoid(x) below) so that its logarithm exists.

A layer is x + minRNN(LayerNorm(x)), then x + MLP(LayerNorm(x)): the recurrence is linear, the MLP gives
the stack its non-linearity."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import LanguageModel
from ..config import ModelConfig


def g(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


def scan(log_a: torch.Tensor, log_b: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + b_t for every t at once (batch, time, units), from log a, log b and h0:
    h_t = exp(A_t) h0 + exp(A_t + logcumsumexp(log b - A)_t) with A_t = sum of log a up to t."""
    a_star = torch.cumsum(log_a, 1)
    return torch.exp(a_star) * h0[:, None] + torch.exp(a_star + torch.logcumsumexp(log_b - a_star, 1))


class MinRNN(nn.Module):
    """One minGRU or minLSTM cell with its projection back to the residual width."""

    def __init__(self, mode: str, width: int, hidden: int):
        super().__init__()
        self.mode = mode
        self.proj = nn.Linear(width, (2 if mode == "mingru" else 3) * hidden)
        self.out = nn.Linear(hidden, width)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log a and log b of the recurrence, from the input alone."""
        if self.mode == "mingru":
            k, cand = self.proj(x).chunk(2, -1)
            return -F.softplus(k), -F.softplus(-k) + log_g(cand)  # log(1 - z), log z + log g(h~)
        f, i, cand = self.proj(x).chunk(3, -1)
        diff = F.softplus(-f) - F.softplus(-i)  # log i - log f
        return -F.softplus(diff), -F.softplus(-diff) + log_g(cand)  # log f', log i' + log g(h~)

    def forward(self, x: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = scan(*self.coefficients(x), h0)
        return self.out(h), h[:, -1]

    def step(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_a, log_b = self.coefficients(x)
        h = torch.exp(log_a) * h + torch.exp(log_b)
        return self.out(h), h


class MinBlock(nn.Module):
    def __init__(self, c: ModelConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.hidden)
        self.rnn = MinRNN(c.arch, c.hidden, c.hidden)
        self.ln_2 = nn.LayerNorm(c.hidden)
        self.mlp = nn.Sequential(nn.Linear(c.hidden, 2 * c.hidden), nn.GELU(), nn.Linear(2 * c.hidden, c.hidden))
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x, h0, step: bool = False):
        y, h = (self.rnn.step if step else self.rnn)(self.ln_1(x), h0)
        x = x + self.drop(y)
        return x + self.drop(self.mlp(self.ln_2(x))), h


class MinRNNLM(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.hidden)
        self.blocks = nn.ModuleList(MinBlock(c) for _ in range(c.num_layers))
        self.ln_f = nn.LayerNorm(c.hidden)
        self.head = nn.Linear(c.hidden, c.vocab_size)

    def init_state(self, batch_size: int, device="cpu"):
        return torch.zeros(self.config.num_layers, batch_size, self.config.hidden, device=device,
                           dtype=self.head.weight.dtype)

    def forward(self, x, state=None):
        """The parallel scan over the whole sequence (training, prompts)."""
        if state is None:
            state = self.init_state(x.shape[0], x.device)
        h = self.embedding(x)
        last = []
        for block, h0 in zip(self.blocks, state):
            h, hl = block(h, h0)
            last.append(hl)
        return self.head(self.ln_f(h)), torch.stack(last)

    def step(self, token, state):
        """One token: the recurrence, O(1) per token whatever came before."""
        h = self.embedding(token)
        new = []
        for block, h0 in zip(self.blocks, state):
            h, hl = block(h, h0, step=True)
            new.append(hl)
        return self.head(self.ln_f(h)), torch.stack(new)
