"""Which rows ``lmcore bench`` measures, asked of the model families (torch-free).

By default every trainable architecture of the registry; ``--arch`` names others (any registered one).
A family says how it is measured in an optional ``bench`` module beside its ``__init__`` (e.g.
lmcore/models/recurrent/bench.py), each name optional:

- ``QUICK``: arch -> the rows ``--quick`` keeps: "train IMPL", "generate". An architecture without an
  entry is left out of a quick run, unless ``--arch`` names it: then it trains (its first
  implementation) and generates;
- ``TIME_TO_LOSS``: arch -> "quick" | "cpu" | "cuda" -> keywords of ``Bench.time_to_loss`` (``target``,
  ``limit_minutes``, ``reference``, ``ref_limit_minutes``, TrainConfig fields);
- ``SHARED``: arch -> bool: ``--shared`` runs it by default; True: a full run on the CPU does too;
- ``REFERENCE``: arch -> a published recipe ``--nanogpt`` trains beside preset auto for the same time
  (lmcore/bench/nanogpt.py): ``name``, ``model`` (the family's options) and ``train`` (TrainConfig fields);
- ``DECODER_ONLY``: arch -> the decoder-only architecture an encoder-decoder's ``greedy`` row is compared
  with, built at the same width (lmcore/bench/pairs.py);
- ``compiles(arch, impl)``: whether its training is torch.compile'd on a GPU (default no);
- ``reference(config, impl, vocab_size)``: the hand-written (module, description) ours is compared with
  (it imports torch); by default the same module in a plain fp32 loop.

Implementations are the choices of the family's ``impl`` option, or just "fused"."""
from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass, field

from ..models import archs as registered, family


@dataclass(frozen=True)
class Job:
    bench: str                  # train (and memory), generate (and first_char), time_to_loss, shared
    arch: str
    impl: str = "fused"
    options: dict = field(default_factory=dict, hash=False)  # time_to_loss's keywords


@functools.lru_cache(maxsize=None)
def _module(package: str):
    name = f"{package}.bench"
    return importlib.import_module(name) if package and importlib.util.find_spec(name) else None


def family_bench(arch: str):
    """The ``bench`` module of ``arch``'s family, or None (ConfigError for an unknown architecture)."""
    return _module(family(arch).package)


def _declared(arch: str, name: str):
    return getattr(family_bench(arch), name, {}).get(arch)


def impls(arch: str) -> tuple[str, ...]:
    """The implementations of ``arch`` the bench trains: its family's ``impl`` choices, or ("fused",)."""
    field_ = next((f for f in family(arch).option_fields() if f.name == "impl"), None)
    return tuple(field_.metadata.get("choices") or (field_.default,)) if field_ else ("fused",)


def _generates(arch: str) -> bool:
    from ..models import preset_config

    return family(arch).can_generate(preset_config(arch, "small", vocab_size=2))


def default_archs() -> list[str]:
    """What a run without --arch measures: every language model trained by gradients (encoder–decoders,
    which read pairs, are not measured on the bench's text)."""
    return [a for a in registered() if family(a).trainable and not family(a).reads_pairs]


def shared_archs() -> list[str]:
    """What ``--shared`` without --arch measures."""
    return [a for a in registered() if _declared(a, "SHARED") is not None]


def reference_recipe() -> tuple[str, dict] | None:
    """The first architecture whose family declares a published ``REFERENCE`` recipe, and the recipe."""
    return next(((a, _declared(a, "REFERENCE")) for a in registered() if _declared(a, "REFERENCE")), None)


def decoder_only(arch: str) -> str:
    """The decoder-only architecture ``arch``'s greedy replies are measured against (its family's
    ``DECODER_ONLY``); ConfigError when it declares none."""
    from ..errors import ConfigError

    other = _declared(arch, "DECODER_ONLY")
    if other is None:
        raise ConfigError(f"the bench has no decoder-only model to compare {arch}'s greedy replies with "
                          f"(its family's bench.py declares none)")
    return other


def compiles(arch: str, impl: str) -> bool:
    fn = getattr(family_bench(arch), "compiles", None)
    return bool(fn and fn(arch, impl))


def _quick_rows(arch: str, named: bool) -> tuple[str, ...]:
    rows = _declared(arch, "QUICK")
    if rows is None and named:
        return (f"train {impls(arch)[0]}", "generate")
    return tuple(rows or ())


def plan(archs: list[str], quick: bool, device: str, named: bool = False) -> list[Job]:
    """The rows of a run over ``archs`` on ``device`` ("cpu", "cuda", ...), in order; ``named``: the
    architectures were named with --arch. ConfigError for an unknown architecture."""
    jobs = []
    for arch in archs:
        rows = _quick_rows(arch, named) if quick else None
        if family(arch).trainable:
            jobs += [Job("train", arch, impl) for impl in impls(arch) if rows is None or f"train {impl}" in rows]
    jobs += [Job("generate", arch) for arch in archs if _generates(arch)
             and (not quick or "generate" in _quick_rows(arch, named))]
    kind = "quick" if quick else "cuda" if device == "cuda" else "cpu"
    for arch in archs:
        jobs += [Job("time_to_loss", arch, options=dict(kw)) for kw in (_declared(arch, "TIME_TO_LOSS") or {}).get(kind, ())]
    if device == "cpu" and not quick:
        jobs += [Job("shared", arch) for arch in archs if _declared(arch, "SHARED")]
    return jobs
