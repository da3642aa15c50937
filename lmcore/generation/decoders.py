"""Token-at-a-time decoding for generation: a decoder reads the prompt in one batched forward
(``prefill``), then turns each chosen token into the next logits (``step``), keeping its own state.

One token at a time, the cost is the number of operations more than their size, so a family may bring
a decoder with fewer (its ``decoder``: e.g. lmcore/models/recurrent/decoder.py, the cell equations in
numpy on the CPU; lmcore/models/transformer/decoder.py, preallocated key/value buffers).
``ModelDecoder`` goes through the model's own ``forward``/``step``, for every other model and device.
Every decoder returns the logits as a float32 numpy vector and matches the model's own forward pass
(tests compare them token by token, past the transformer's context)."""
from __future__ import annotations

import copy

import numpy as np
import torch

from .sampling import as_vector


class ModelDecoder:
    """Decoding through the model's own ``forward`` and ``step``."""

    def __init__(self, model, device: torch.device):
        self.model, self.device = model, device  # model: a LanguageModel
        self.state = None  # subclasses set up their state with _new_state() once their shapes are known

    def _new_state(self) -> None:
        """Everything one stream changes; the weights (and their layout) are shared by ``fresh`` copies."""
        self.state = None

    STATE: tuple[str, ...] = ("state",)  # what one stream changes (copied by ``clone``)

    def clone(self) -> ModelDecoder:
        """A decoder in the same state that goes on independently (a beam of beam search)."""
        other = copy.copy(self)
        with torch.inference_mode():
            for name in self.STATE:
                setattr(other, name, copy.deepcopy(getattr(self, name)))
        return other

    def fresh(self) -> ModelDecoder:
        """A decoder for another stream that shares this one's prepared weights."""
        other = copy.copy(self)
        other._new_state()
        return other

    @torch.inference_mode()
    def prefill(self, ids: list[int]) -> np.ndarray:
        logits, self.state = self.model(torch.tensor([ids], device=self.device), self.model.init_state(1, self.device))
        return as_vector(logits[0, -1])

    @torch.inference_mode()
    def step(self, token: int) -> np.ndarray:
        logits, self.state = self.model.step(torch.tensor([token], device=self.device), self.state)
        return as_vector(logits[0])


def decoder_for(model, device: torch.device | str) -> ModelDecoder:
    """The fastest decoder for a model on a device (a fresh one per generated stream: it copies or lays
    out weights as they are now): the family's own, else the model's forward and step."""
    device = torch.device(device)
    return model.family.decoder(model, device) or ModelDecoder(model, device)
