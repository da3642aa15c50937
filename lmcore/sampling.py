"""Turning next-token logits into a choice. The controls apply in this order:

1. repetition penalty (CTRL-style: a positive logit of a token seen in the last ``repetition_window``
   tokens is divided by the penalty, a negative one multiplied);
2. temperature: 0 means greedy (argmax of the penalised logits; steps 3-5 are skipped), otherwise the
   logits are divided by it;
3. top-k: keep the k most likely tokens (0: off);
4. top-p (nucleus): keep the smallest set of most likely tokens whose probability adds up to p (1: off);
5. min-p: drop tokens whose probability is below min_p times the most likely one's (0: off);
then one token is drawn from what is left (renormalised), with a seeded generator.
``<unk>`` is never chosen unless it is the only token."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from .errors import ConfigError


@dataclass
class SamplingSettings:
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repetition_window: int = 64
    max_tokens: int = 300
    seed: int | None = None
    stop: list[str] = field(default_factory=list)

    def validate(self) -> "SamplingSettings":
        if not self.temperature >= 0:
            raise ConfigError(f"temperature must be >= 0 (got {self.temperature}); 0 means greedy")
        if self.top_k < 0:
            raise ConfigError(f"top-k must be >= 0 (got {self.top_k}); 0 turns it off")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top-p must be in (0, 1] (got {self.top_p}); 1 turns it off")
        if not 0 <= self.min_p < 1:
            raise ConfigError(f"min-p must be in [0, 1) (got {self.min_p}); 0 turns it off")
        if not self.repetition_penalty > 0:
            raise ConfigError(f"repetition penalty must be > 0 (got {self.repetition_penalty}); 1 turns it off")
        if self.max_tokens < 0:
            raise ConfigError(f"length must be >= 0 (got {self.max_tokens})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


def apply_repetition_penalty(logits: torch.Tensor, recent: torch.Tensor | list[int], penalty: float) -> torch.Tensor:
    if penalty == 1.0 or len(recent) == 0:
        return logits
    idx = torch.as_tensor(recent, dtype=torch.long, device=logits.device).unique()
    vals = logits[idx]
    logits = logits.clone()
    logits[idx] = torch.where(vals > 0, vals / penalty, vals * penalty)
    return logits


def filter_probs(probs: torch.Tensor, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> torch.Tensor:
    """Zero the tokens removed by top-k, then top-p, then min-p; renormalise. probs: (V,)."""
    p = probs.clone()
    if top_k and top_k < p.numel():
        kth = torch.topk(p, top_k).values[-1]
        p[p < kth] = 0
    if top_p < 1.0:
        sorted_p, order = torch.sort(p, descending=True)
        cum = torch.cumsum(sorted_p, 0) / sorted_p.sum()
        drop = cum - sorted_p / sorted_p.sum() >= top_p  # tokens entirely past the nucleus
        sorted_p[drop] = 0
        p = torch.zeros_like(p).scatter_(0, order, sorted_p)
    if min_p > 0:
        p[p < min_p * p.max()] = 0
    return p / p.sum()


def next_token_distribution(logits: torch.Tensor, s: SamplingSettings, recent=()) -> torch.Tensor:
    """The distribution a token is drawn from (one-hot for greedy). logits: (V,) float."""
    logits = logits.float().clone()
    if logits.numel() > 1:
        logits[0] = float("-inf")  # never emit <unk>
    if s.repetition_penalty != 1.0 and s.repetition_window:
        window = recent[-s.repetition_window:] if isinstance(recent, list) else list(recent)[-s.repetition_window:]
        logits = apply_repetition_penalty(logits, window, s.repetition_penalty)
    if s.temperature == 0:
        out = torch.zeros_like(logits)
        out[int(torch.argmax(logits))] = 1.0
        return out
    probs = torch.softmax(logits / s.temperature, dim=-1)
    if not s.top_k and s.top_p >= 1.0 and not s.min_p:
        return probs  # no filter: nothing to cut or renormalise
    return filter_probs(probs, s.top_k, s.top_p, s.min_p)


def sample(logits: torch.Tensor, s: SamplingSettings, recent=(), generator: torch.Generator | None = None) -> int:
    dist = next_token_distribution(logits, s, recent)
    if s.temperature == 0:
        return int(torch.argmax(dist))
    return int(torch.multinomial(dist.cpu(), 1, generator=generator))
