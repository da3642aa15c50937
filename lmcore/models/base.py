"""What every model offers: token ids and a state in, next-token logits and the new state out."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .config import ModelConfig
from .family import Family


class LanguageModel(nn.Module):
    """A model of one family (``self.family``, which says what it can do; ``config.arch`` which of its
    architectures)."""

    config: ModelConfig

    @property
    def family(self) -> Family:
        return self.config.family

    @property
    def stateful(self) -> bool:
        """Whether training carries a state across sequential batches (recurrent models)."""
        return self.family.stateful

    @property
    def trainable(self) -> bool:
        """Whether the model is trained by gradient descent (the n-gram is trained by counting)."""
        return self.family.trainable

    @property
    def context_window(self) -> int | None:
        """The most tokens the model reads (the transformer's context), or None: it carries a state."""
        return self.family.window(self.config)

    @property
    def unit_values(self) -> tuple[str, ...]:
        """What ``trace`` shows of each recurrent unit (e.g. LSTM: c, h, i, f, o); () for models without
        recurrent units."""
        return ()

    @property
    def shows_attention(self) -> bool:
        """Whether ``attention_maps`` can show where the model looks (its family shows "attention")."""
        return self.family.shows(self.config, "attention")

    def trace(self, ids: torch.Tensor, tick=None) -> list[dict[str, torch.Tensor]]:
        """Per layer, each of ``unit_values`` at every step of one sequence ``ids`` (time,): (time, units).
        ``tick(done, total)`` is called now and then (it may raise to stop)."""
        raise ConfigError(f"a {self.config.arch} model has no recurrent units to show")

    @property
    def unit_layers(self) -> tuple[str, ...] | None:
        """What each of ``trace``'s layers is, as the neuron view writes it ("forward 0", "backward 0"),
        or None: layers numbered from 0."""
        return None

    def attention_maps(self, ids: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, the attention weights (heads, time, time) over one sequence ``ids`` and the values
        (heads, time, head size) they average."""
        raise ConfigError(f"a {self.config.arch} model has no attention to show")

    def compile_parts(self) -> bool:
        """Under --compile: compile the model's own parts and say True, or say False and the whole training
        step is compiled."""
        return False

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """x: (batch, time) token ids. Returns logits (batch, time, vocab) and the new state."""
        raise NotImplementedError

    def train_loss(self, x: torch.Tensor, y: torch.Tensor, state: Any = None, run=None) -> tuple[torch.Tensor, Any]:
        """The training objective on one batch (x, and y: x shifted by one token): the mean loss and the new
        state. ``run`` is what calls the model (itself, or the wrapper that averages gradients under
        torchrun: every forward pass must go through it). Default: the next-token cross-entropy of
        ``forward``'s logits; a family trained otherwise overrides it."""
        logits, new_state = (run or self)(x, state)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten()), new_state

    def read_vocab(self, tokens: list[str]) -> None:
        """What the model learns of its vocabulary's tokens (``idx_to_token``) before training, beyond its
        size (BERT: where sentences end); by default nothing."""

    def eval_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        """The summed validation loss of windows ``x`` (``y``: x shifted by one token) and how many
        predictions it sums: by default the next-token cross-entropy of ``forward``; a family trained
        otherwise overrides it (BERT: the masked tokens' loss)."""
        logits, _ = self(x)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item(), y.numel()

    def val_metrics(self, ids: torch.Tensor, seq_len: int, loss: float, autocast=None) -> dict[str, float | None]:
        """Numbers an evaluation stores beside the validation ``loss`` (fields of the checkpoint's
        EvalPoint: BERT's "mlm_loss", "pseudo_ppl", "nsp_accuracy"), from the validation ids; none by
        default."""
        return {}

    def blank_logits(self, ids: torch.Tensor, blanks: torch.Tensor | None = None) -> torch.Tensor:
        """(batch, time) token ids -> (batch, time, vocab): at each position the token there predicted from
        both sides of it, never from itself; only a family that ``fills_both_ways`` has it (the others fill
        a blank by scoring candidates left to right: lmcore.generation.fill). ``blanks`` (batch, time),
        boolean: the open blanks, which a family that ``fills_jointly`` hides (BERT: ``<mask>``); the
        others read only the text between open blanks and ignore it."""
        raise ConfigError(f"a {self.config.arch} model does not read both sides of a blank")

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> Any:
        """A fresh state for ``batch_size`` independent sequences."""
        return None

    def step(self, token: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One token per sequence, shape (batch,): logits (batch, vocab) and the new state."""
        logits, state = self(token[:, None], state)
        return logits[:, -1], state

    def detach_state(self, state: Any) -> Any:
        """Cut the graph between consecutive batches (truncated backpropagation through time)."""
        if state is None:
            return None
        if isinstance(state, torch.Tensor):
            return state.detach()
        return type(state)(s.detach() for s in state)

    def check_can_generate(self) -> None:
        problem = self.family.cannot_generate(self.config)
        if problem:
            raise ConfigError(problem)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def load_weights(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(state, strict=True)
