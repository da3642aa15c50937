"""RNN, GRU and LSTM language models, ``fused`` (torch.nn.RNN/GRU/LSTM, cuDNN on GPU) or ``scratch``
(the gate equations written out, as in the d2l.ai from-scratch chapters).

Both implementations hold the same parameters under the same names (``weight_ih_l0``, …, gates stacked
in PyTorch's order), so a state dict moves between them unchanged. The scratch version computes the
input projection of all gates for the whole sequence in one matmul, then one matmul per time step for
the recurrent part (all gates at once: the "OptimizedLSTM" idea)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import LanguageModel
from ..config import ModelConfig
from .shapes import GATES


def _rnn_cell(xp, h, w_hh, b_hh):
    return torch.tanh(xp + F.linear(h, w_hh, b_hh))


def _gru_cell(xp, h, w_hh, b_hh):
    hp = F.linear(h, w_hh, b_hh)
    xr, xz, xn = xp.chunk(3, -1)
    hr, hz, hn = hp.chunk(3, -1)
    r = torch.sigmoid(xr + hr)
    z = torch.sigmoid(xz + hz)
    n = torch.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def _lstm_pointwise(gates, c):
    i, f, g, o = gates.chunk(4, -1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def _lstm_cell(xp, h, c, w_hh, pointwise=_lstm_pointwise):
    return pointwise(torch.addmm(xp, h, w_hh.t()), c)  # b_hh is folded into xp


_FUSED_POINTWISE = {}


def fused_lstm_pointwise():
    """The LSTM gate arithmetic compiled into one kernel (``torch.compile``), for the scratch cell."""
    if "lstm" not in _FUSED_POINTWISE:
        _FUSED_POINTWISE["lstm"] = torch.compile(_lstm_pointwise, dynamic=False)
    return _FUSED_POINTWISE["lstm"]


class ScratchRNN(nn.Module):
    """A drop-in for nn.RNN/GRU/LSTM(batch_first=True) written with plain tensor ops."""

    def __init__(self, mode: str, input_size: int, hidden: int, num_layers: int, dropout: float,
                 bidirectional: bool):
        super().__init__()
        self.mode, self.hidden, self.num_layers, self.dropout = mode, hidden, num_layers, dropout
        self.dirs = 2 if bidirectional else 1
        self.fuse_cells = False  # compile the LSTM gate arithmetic (set by compile_parts under --compile)
        g = GATES[mode] * hidden
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden * self.dirs
            for sfx in ("", "_reverse")[: self.dirs]:
                self.register_parameter(f"weight_ih_l{layer}{sfx}", nn.Parameter(torch.empty(g, in_size)))
                self.register_parameter(f"weight_hh_l{layer}{sfx}", nn.Parameter(torch.empty(g, hidden)))
                self.register_parameter(f"bias_ih_l{layer}{sfx}", nn.Parameter(torch.empty(g)))
                self.register_parameter(f"bias_hh_l{layer}{sfx}", nn.Parameter(torch.empty(g)))
        k = hidden ** -0.5
        for p in self.parameters():
            nn.init.uniform_(p, -k, k)  # PyTorch's own initialisation for recurrent layers

    def _direction(self, x, layer: int, sfx: str, h, c):
        w_ih, w_hh = getattr(self, f"weight_ih_l{layer}{sfx}"), getattr(self, f"weight_hh_l{layer}{sfx}")
        b_ih, b_hh = getattr(self, f"bias_ih_l{layer}{sfx}"), getattr(self, f"bias_hh_l{layer}{sfx}")
        if sfx:
            x = x.flip(1)
        steps = x.shape[1]
        outs = []
        if self.mode == "lstm":
            xp = F.linear(x, w_ih, b_ih + b_hh)  # every gate, every time step, one matmul
            pointwise = fused_lstm_pointwise() if self.fuse_cells else _lstm_pointwise
            for t in range(steps):
                h, c = _lstm_cell(xp[:, t], h, c, w_hh, pointwise)
                outs.append(h)
        else:
            xp = F.linear(x, w_ih, b_ih)
            cell = _rnn_cell if self.mode == "rnn" else _gru_cell
            for t in range(steps):
                h = cell(xp[:, t], h, w_hh, b_hh)
                outs.append(h)
        y = torch.stack(outs, 1)
        return (y.flip(1) if sfx else y), h, c

    def forward(self, x, state):
        if self.mode == "lstm":
            h0, c0 = state
        else:
            h0, c0 = state, None
        hs, cs = [], []
        for layer in range(self.num_layers):
            ys = []
            for d, sfx in enumerate(("", "_reverse")[: self.dirs]):
                i = layer * self.dirs + d
                y, h, c = self._direction(x, layer, sfx, h0[i], c0[i] if c0 is not None else None)
                ys.append(y)
                hs.append(h)
                cs.append(c)
            x = ys[0] if self.dirs == 1 else torch.cat(ys, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        h = torch.stack(hs)
        return x, ((h, torch.stack(cs)) if self.mode == "lstm" else h)


class RecurrentLM(LanguageModel):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = c = config
        v = c.vocab_size
        if c.input == "onehot":
            self.embedding = None
            in_size = v
        else:
            in_size = c.embed or c.hidden
            self.embedding = nn.Embedding(v, in_size)
        args = (in_size, c.hidden, c.num_layers)
        drop = c.dropout if c.num_layers > 1 else 0.0
        if c.impl == "fused":
            cls = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[c.arch]
            self.rnn = cls(*args, dropout=drop, bidirectional=c.bidirectional, batch_first=True)
        else:
            self.rnn = ScratchRNN(c.arch, *args, dropout=drop, bidirectional=c.bidirectional)
        self.drop = nn.Dropout(c.dropout)
        self.head = nn.Linear(c.hidden * (2 if c.bidirectional else 1), v)
        if c.arch == "lstm" and c.forget_bias:
            with torch.no_grad():
                for name, p in self.rnn.named_parameters():
                    if name.startswith("bias_"):
                        p[c.hidden: 2 * c.hidden] = c.forget_bias / 2  # ih + hh = forget_bias

    def compile_parts(self) -> bool:
        """The scratch cells: compiling their whole time loop would take minutes, so only the LSTM gate
        arithmetic is fused (the fused modules are cuDNN's: the whole step compiles)."""
        if self.config.impl != "scratch":
            return False
        self.rnn.fuse_cells = True
        return True

    def init_state(self, batch_size: int, device="cpu"):
        c = self.config
        dtype = self.head.weight.dtype
        shape = (c.num_layers * (2 if c.bidirectional else 1), batch_size, c.hidden)
        h = torch.zeros(shape, device=device, dtype=dtype)
        return (h, torch.zeros_like(h)) if c.arch == "lstm" else h

    def step(self, token, state):
        """One token: the cell equations on the layer weights, which on the CPU costs a fraction of a
        ``torch.lstm`` call at batch 1 (the same parameters serve the fused and the scratch modules)."""
        c = self.config
        if c.bidirectional or (self.training and c.dropout):
            return super().step(token, state)
        if self.embedding is None:
            x = F.one_hot(token.long(), c.vocab_size).to(self.head.weight.dtype)
        else:
            x = self.embedding(token)
        rnn = self.rnn
        if c.arch == "lstm":
            hs, cs = state
            new_h, new_c = [], []
            for layer in range(c.num_layers):
                xp = F.linear(x, getattr(rnn, f"weight_ih_l{layer}"),
                              getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}"))
                h, cc = _lstm_cell(xp, hs[layer], cs[layer], getattr(rnn, f"weight_hh_l{layer}"))
                new_h.append(h)
                new_c.append(cc)
                x = h
            new_state = (torch.stack(new_h), torch.stack(new_c))
        else:
            cell = _rnn_cell if c.arch == "rnn" else _gru_cell
            new_h = []
            for layer in range(c.num_layers):
                xp = F.linear(x, getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"bias_ih_l{layer}"))
                x = cell(xp, state[layer], getattr(rnn, f"weight_hh_l{layer}"), getattr(rnn, f"bias_hh_l{layer}"))
                new_h.append(x)
            new_state = torch.stack(new_h)
        return self.head(x), new_state

    @property
    def unit_values(self) -> tuple[str, ...]:
        if self.config.bidirectional:
            return ()
        return UNIT_VALUES[self.config.arch]

    @torch.no_grad()
    def trace(self, ids: torch.Tensor, tick=None) -> list[dict[str, torch.Tensor]]:
        """The cell equations step by step on the layer weights (fused and scratch models hold the same
        ones), keeping the gates the fused kernels never show: per layer, each value (time, hidden)."""
        c = self.config
        if not self.unit_values:
            return super().trace(ids)
        ids = ids.reshape(-1).long()
        x = F.one_hot(ids, c.vocab_size).to(self.head.weight.dtype) if self.embedding is None else self.embedding(ids)
        return trace_cells(self.rnn, c.arch, x, c.num_layers, c.hidden, tick)

    def forward(self, x, state=None):
        if state is None:
            state = self.init_state(x.shape[0], x.device)
        if self.embedding is None:
            inp = F.one_hot(x.long(), self.config.vocab_size).to(self.head.weight.dtype)
        else:
            inp = self.drop(self.embedding(x))
        y, state = self.rnn(inp, state)
        return self.head(self.drop(y)), state


UNIT_VALUES = {"rnn": ("h",), "gru": ("h", "r", "z"), "lstm": ("c", "h", "i", "f", "o")}


@torch.no_grad()
def trace_cells(rnn, cell: str, x: torch.Tensor, num_layers: int, hidden: int, tick=None, done: int = 0,
                total: int | None = None) -> list[dict[str, torch.Tensor]]:
    """The values of every unit of ``rnn`` (torch.nn.RNN/GRU/LSTM weights, or the scratch ones under the
    same names) while it reads ``x`` (time, input), step by step with the ``cell``'s equations: per layer,
    each of UNIT_VALUES[cell] (time, hidden). ``tick(done + steps so far, total)`` now and then."""
    steps = len(x)
    total = total or num_layers * steps
    out = []
    for layer in range(num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{layer}"), getattr(rnn, f"bias_hh_l{layer}")
        xp = F.linear(x, w_ih, b_ih)
        h = torch.zeros(hidden, dtype=x.dtype, device=x.device)
        state = torch.zeros_like(h)
        rows: dict[str, list] = {k: [] for k in UNIT_VALUES[cell]}
        for t in range(steps):
            if tick is not None and t % 256 == 0:
                tick(done + layer * steps + t, total)  # progress; may raise to stop
            hp = F.linear(h, w_hh, b_hh)
            if cell == "lstm":
                i, f, g, o = (xp[t] + hp).chunk(4)
                i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
                state = f * state + i * torch.tanh(g)
                h = o * torch.tanh(state)
                values = {"c": state, "h": h, "i": i, "f": f, "o": o}
            elif cell == "gru":
                xr, xz, xn = xp[t].chunk(3)
                hr, hz, hn = hp.chunk(3)
                r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
                h = (1 - z) * torch.tanh(xn + r * hn) + z * h
                values = {"h": h, "r": r, "z": z}
            else:
                h = torch.tanh(xp[t] + hp)
                values = {"h": h}
            for k, v in values.items():
                rows[k].append(v)
        out.append({k: torch.stack(v) for k, v in rows.items()})
        x = out[-1]["h"]
    return out
