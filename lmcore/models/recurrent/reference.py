"""What a user writes by hand, the references ``lmcore bench`` measures this family against: an
``nn.RNN``/``nn.GRU``/``nn.LSTM`` between an embedding and a linear head (for ``fused``), and the chapters'
from-scratch cell, one matmul per gate and a Python loop over time (for ``scratch``)."""
from __future__ import annotations

import torch
from torch import nn


class PlainRNNLM(nn.Module):
    """What a user writes by hand: embedding, nn.LSTM/GRU/RNN, linear head."""

    def __init__(self, arch, vocab, embed, hidden, layers):
        super().__init__()
        self.emb = nn.Embedding(vocab, embed)
        self.rnn = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[arch](embed, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):
        return self.head(self.rnn(self.emb(x))[0])


class NaiveScratchLM(nn.Module):
    """The chapters' from-scratch cell: separate weights and matmuls per gate, a Python loop over time."""

    def __init__(self, arch, vocab, embed, hidden, layers):
        super().__init__()
        self.arch, self.hidden, self.layers = arch, hidden, layers
        gates = {"rnn": 1, "gru": 3, "lstm": 4}[arch]
        self.emb = nn.Embedding(vocab, embed)
        self.W_x = nn.ParameterList(nn.Parameter(torch.randn(embed if l == 0 else hidden, hidden) * 0.01)
                                    for l in range(layers) for _ in range(gates))
        self.W_h = nn.ParameterList(nn.Parameter(torch.randn(hidden, hidden) * 0.01) for _ in range(layers * gates))
        self.b = nn.ParameterList(nn.Parameter(torch.zeros(hidden)) for _ in range(layers * gates))
        self.gates = gates
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x):
        inp = self.emb(x)
        b, t, _ = inp.shape
        for layer in range(self.layers):
            g = [(self.W_x[layer * self.gates + i], self.W_h[layer * self.gates + i], self.b[layer * self.gates + i])
                 for i in range(self.gates)]
            h = torch.zeros(b, self.hidden, device=x.device)
            c = torch.zeros_like(h)
            outs = []
            for s in range(t):
                xt = inp[:, s]
                if self.arch == "lstm":
                    i_, f_, o_, c_ = [xt @ wx + h @ wh + bb for wx, wh, bb in g]
                    c = torch.sigmoid(f_) * c + torch.sigmoid(i_) * torch.tanh(c_)
                    h = torch.sigmoid(o_) * torch.tanh(c)
                elif self.arch == "gru":
                    (wxr, whr, br), (wxz, whz, bz), (wxh, whh, bh) = g
                    r = torch.sigmoid(xt @ wxr + h @ whr + br)
                    z = torch.sigmoid(xt @ wxz + h @ whz + bz)
                    h = z * h + (1 - z) * torch.tanh(xt @ wxh + (r * h) @ whh + bh)
                else:
                    wx, wh, bb = g[0]
                    h = torch.tanh(xt @ wx + h @ wh + bb)
                outs.append(h)
            inp = torch.stack(outs, 1)
        return self.head(inp)
