"""What a user chooses for sampling: :class:`SamplingSettings` (validated), the named presets and the
one-line summary of a stream's settings. No numpy here: the command line and the app's first screen read
these; :mod:`lmcore.generation.sampling` applies them."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..errors import ConfigError

MAX_SEED = 2 ** 32 - 1
MAX_BEAM = 64


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
    beam: int = 0                 # beam search with this many beams instead of sampling (0: sample)
    length_penalty: float = 1.0   # beam search ranks by log-probability / length ** this

    def validate(self) -> "SamplingSettings":
        import math

        for k in ("temperature", "top_p", "min_p", "repetition_penalty", "length_penalty"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"{k.replace('_', '-')} must be a finite number (got {v!r})")
        for k in ("top_k", "max_tokens", "repetition_window", "beam"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ConfigError(f"{k.replace('_', '-')} must be a whole number (got {v!r})")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed <= MAX_SEED):
            raise ConfigError(f"seed must be a whole number between 0 and {MAX_SEED} (got {self.seed!r})")
        if not isinstance(self.stop, list) or not all(isinstance(x, str) for x in self.stop):
            raise ConfigError("stop must be a list of strings")
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
        if not 0 <= self.max_tokens <= 1_000_000:
            raise ConfigError(f"length must be between 0 and 1,000,000 (got {self.max_tokens})")
        if not 0 <= self.beam <= MAX_BEAM:
            raise ConfigError(f"beam width must be between 0 and {MAX_BEAM} (got {self.beam}); 0 samples instead")
        if not 0 <= self.length_penalty <= 10:
            raise ConfigError(f"length penalty must be between 0 and 10 (got {self.length_penalty}); 1 ranks "
                              "beams by their mean log-probability per token")
        if self.repetition_window < 0:
            raise ConfigError(f"repetition window must be >= 0 (got {self.repetition_window})")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def filtered(self) -> bool:
        return bool(self.top_k) or self.top_p < 1.0 or self.min_p > 0

    @property
    def penalised(self) -> bool:
        return self.repetition_penalty != 1.0 and self.repetition_window > 0


# the temperature of an evaluation's sample: what generation uses unless told otherwise
SAMPLE_TEMPERATURE = SamplingSettings().temperature

# Named starting points for the sampling controls; any control given explicitly overrides its value.
PRESETS: dict[str, dict] = {
    "precise": {"temperature": 0.5, "top_k": 0, "top_p": 0.9, "min_p": 0.0},    # likely text, little variety
    "balanced": {"temperature": 0.8, "top_k": 0, "top_p": 0.95, "min_p": 0.0},  # the default feel
    "creative": {"temperature": 1.1, "top_k": 0, "top_p": 1.0, "min_p": 0.05},  # varied; min-p drops the tail
}


def from_preset(name: str, **overrides) -> SamplingSettings:
    """Settings of a named preset, with ``overrides`` (those not None) on top."""
    if name not in PRESETS:
        raise ConfigError(f"unknown sampling preset '{name}': choose one of {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    return SamplingSettings(**values)


def summary(settings: dict) -> str:
    """What a stream runs with, in one short line ("T 0.8 · top-p 0.95 · seed 7", "beam 5 · …")."""
    beam = settings.get("beam")
    if isinstance(beam, int) and not isinstance(beam, bool) and beam > 0:
        parts = [f"beam {beam}"]
        lp = settings.get("length_penalty")
        if isinstance(lp, (int, float)) and lp != 1:
            parts.append(f"length penalty {lp:g}")
        return " · ".join(parts)
    t = settings.get("temperature")
    parts = ["greedy" if t == 0 else f"T {t:g}" if isinstance(t, (int, float)) else ""]
    if settings.get("top_k"):
        parts.append(f"top-k {settings['top_k']}")
    if isinstance(settings.get("top_p"), (int, float)) and settings["top_p"] < 1:
        parts.append(f"top-p {settings['top_p']:g}")
    if settings.get("min_p"):
        parts.append(f"min-p {settings['min_p']:g}")
    if isinstance(settings.get("repetition_penalty"), (int, float)) and settings["repetition_penalty"] != 1:
        parts.append(f"rep {settings['repetition_penalty']:g}")
    if t != 0:
        parts.append(f"seed {settings['seed']}" if settings.get("seed") is not None else "seed random")
    return " · ".join(p for p in parts if p)
