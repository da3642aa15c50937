"""Gradients through time (why the LSTM): for an input of T tokens, the norm of the gradient of the
loss at the last step with respect to the recurrent model's output h_t at every step t. A plain RNN's
gradient shrinks by a factor at every step back; the LSTM's cell carries it further, more so with a
forget-gate bias of 1."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models import build_model, families, family, listed, preset_config, showing

VOCAB = 64      # a fresh model's vocabulary
DEFAULT_T = 100


@dataclass
class GradientFlow:
    label: str
    norms: np.ndarray  # norms[t] = |d loss_T / d h_t|, t = 0 … T-1 (the last one is the direct path)

    def to_dict(self) -> dict:
        return {"model": self.label, "norms": [float(x) for x in self.norms]}


def _check(model) -> None:
    if not model.family.shows(model.config, "gradients"):
        raise ConfigError(f"gradients through time are shown for {listed(showing('gradients'))} models, "
                          f"not for {model.config.arch}")


def gradient_flow(model, ids: torch.Tensor, label: str = "") -> GradientFlow:
    """|d loss at the last step / d h_t| for every step t of ``ids`` (T inputs and the target after
    them), h_t being the hidden state of every layer after step t, read through the model's own ``step``
    (the cell equations on its weights)."""
    _check(model)
    was_training = model.training
    model.eval()  # no dropout: the same path every time
    try:
        with torch.enable_grad():
            x = ids.reshape(-1).long()
            state = model.init_state(1, x.device)
            hs = []
            for t in range(len(x) - 1):
                logits, state = model.step(x[t: t + 1], state)
                h = state[0] if isinstance(state, tuple) else state
                h.retain_grad()
                hs.append(h)
            loss = F.cross_entropy(model.head(hs[-1][-1]), x[-1:])  # the step's logits, from the state kept
            loss.backward()
            norms = np.array([h.grad.norm().item() if h.grad is not None else 0.0 for h in hs])
        model.zero_grad(set_to_none=True)
    finally:
        model.train(was_training)
    return GradientFlow(label or model.config.arch, norms)


def fresh_model(arch: str, forget_bias: float | None = None, preset: str = "small", vocab_size: int = VOCAB,
                seed: int = 0):
    """An untrained model of ``arch`` (one whose family shows gradients through time), seeded."""
    if arch not in showing("gradients"):
        raise ConfigError(f"gradients through time are shown for {', '.join(showing('gradients'))} "
                          f"(got '{arch}')")
    if forget_bias is not None and not family(arch).uses(arch, "forget_bias"):
        users = [a for a in showing("gradients") if family(a).uses(a, "forget_bias")]
        raise ConfigError(f"--forget-bias applies to {listed(users)} models")
    random_ids(2, 2, seed)  # the seed is checked once, here
    torch.manual_seed(seed)
    cfg = preset_config(arch, preset, vocab_size=vocab_size, forget_bias=forget_bias)
    return build_model(cfg)


def random_ids(vocab_size: int, length: int = DEFAULT_T, seed: int = 0) -> torch.Tensor:
    from ..generation.sampling import MAX_SEED

    if not 2 <= length <= 10_000:
        raise ConfigError(f"the sequence length must be between 2 and 10,000 (got {length})")
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be a whole number between 0 and {MAX_SEED} (got {seed})")
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (length + 1,), generator=g)  # T inputs and the target after them


def gradient_flows(length: int = DEFAULT_T, seed: int = 0) -> list[GradientFlow]:
    """The chapter's comparison on fresh models, as the families declare it (their ``lessons``): RNN, GRU,
    LSTM with forget-gate bias 0 and 1."""
    ids = random_ids(VOCAB, length, seed)
    out = []
    for fam in families():
        for label, arch, options in fam.lessons.get("gradients", ()):
            out.append(gradient_flow(fresh_model(arch, options.get("forget_bias"), seed=seed), ids, label))
    return out
