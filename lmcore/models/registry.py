"""The registry of model families: which architectures exist and what each can do. Torch-free.

API (``from lmcore.models import registry`` or the same names from ``lmcore.models``):

- ``families() -> tuple[Family, ...]``: every family, by ``position`` (then built-ins by folder name, then
  installed packages);
- ``family(arch) -> Family``: the family of an architecture name ("lstm" -> the recurrent family);
  ConfigError naming the known architectures for an unknown one;
- ``archs() -> tuple[str, ...]``: every architecture name, in the families' order;
- ``showing(view) -> tuple[str, ...]``: the architectures whose families show a view ("units", ...);
  ``listed(names)``: "rnn, gru and lstm", for messages;
- ``default_arch() -> str``: a new model's architecture when none is chosen (a family's ``default``);
- ``refresh()``: forget what was found (a test that registers a family, a package installed meanwhile);
- ``problems() -> list[str]``: families that could not be loaded (skipped), one line each.

A :class:`~lmcore.models.family.Family` (lmcore/models/family.py) declares ``name``, ``archs`` (arch ->
one-line description), ``labels`` (arch -> menu label, ``label(arch)``), ``options`` (a dataclass: each
field's default, and ``metadata`` with "help", "range" (lo, hi), "choices", "check", "flag"; iterate
``option_fields()``), ``presets`` (arch -> "tiny"/"small"/"base" -> {"model": {...}, "train": {...}},
or ``preset(arch, name)``), and capabilities: ``windowed`` (has a context window: ``window(config)`` is
its length) or ``stateful`` (carries a state across batches), ``trainable`` (False: counted, the
n-gram), ``fixed_shapes``, ``views`` (frozenset of "units", "attention"; per config ``shows(config,
view)``), ``exports`` (formats: "onnx", "hf"), ``cannot_generate(config)`` (a reason, or None;
``can_generate(config)``); ``describe(config)`` ("lstm/scratch": the arch column of tables and the
picker) and ``size(config)`` ("2 layers × 256"); ``model_class(arch)``, ``decoder(model, device)`` and
``shapes(config)`` (these import the family's code, the first two need torch).

A model config (:class:`~lmcore.models.config.ModelConfig`) is ``arch``, ``vocab_size`` and the family's
options (``config.options``, also read as ``config.hidden`` etc.); ``config.family`` is its Family.
A built model answers the same through ``model.family``.

Where families come from:

- built in: every subpackage of ``lmcore/models`` whose ``__init__`` defines ``FAMILY`` (found by
  scanning the folder, every folder of the package's ``__path__``, not from a list: a copied folder is a
  new family);
- installed: entry points of group ``lmplay.families`` (``importlib.metadata``), each loading to a
  Family (or a module holding ``FAMILY``), e.g. in a package's pyproject.toml:
  ``[project.entry-points."lmplay.families"] bigram = "mypkg.bigram:FAMILY"``.

An architecture name belongs to the first family that declares it; a later one that declares it again
is skipped (``problems()`` says so)."""
from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
import threading
from pathlib import Path

from ..errors import ConfigError
from .family import PRESET_NAMES, Family

GROUP = "lmplay.families"
_lock = threading.Lock()
_found: tuple[tuple[Family, ...], dict[str, Family], list[str]] | None = None


def _builtin() -> list[tuple[str, object]]:
    out = []
    folders = getattr(sys.modules.get(__package__), "__path__", None) or [str(Path(__file__).parent)]
    for info in sorted(pkgutil.iter_modules(list(folders)), key=lambda i: i.name):
        if info.ispkg:
            name = f"{__package__}.{info.name}"
            out.append((name, lambda name=name: importlib.import_module(name)))
    return out


def _installed() -> list[tuple[str, object]]:
    try:
        points = importlib.metadata.entry_points(group=GROUP)
    except Exception as exc:  # noqa: BLE001 - a broken installation must not stop lmplay
        return [("entry points", _raiser(exc))]
    return [(f"{p.name} ({p.value})", _loader(p)) for p in points]


def _loader(point):
    def load():
        obj = point.load()
        if isinstance(obj, Family) and not obj.package:  # its "." references: beside the entry point
            obj.package = point.module
        return obj
    return load


def _raiser(exc: Exception):
    def fail():
        raise exc
    return fail


def _as_family(obj) -> Family | None:
    fam = getattr(obj, "FAMILY", obj)
    if isinstance(fam, Family):
        if not fam.package and hasattr(obj, "FAMILY"):
            fam.package = obj.__name__
        return fam
    return None


def _scan() -> tuple[tuple[Family, ...], dict[str, Family], list[str]]:
    families, by_arch, problems = [], {}, []
    for builtin, sources in ((True, _builtin()), (False, _installed())):
        for where, loader in sources:
            try:
                fam = _as_family(loader())
            except Exception as exc:  # noqa: BLE001 - one broken plugin is skipped, with its reason
                problems.append(f"model family {where} could not be loaded: {exc}")
                continue
            if fam is None:
                if not builtin:
                    problems.append(f"{where} is not a model family (lmplay.families entry points load to one)")
                continue
            taken = [a for a in fam.archs if a in by_arch]
            if taken:
                problems.append(f"model family {fam.name} ({where}) skipped: {', '.join(taken)} already taken")
                continue
            families.append(fam)
            by_arch.update({a: fam for a in fam.archs})
    order = sorted(range(len(families)), key=lambda i: (families[i].position, i))
    families = [families[i] for i in order]
    return tuple(families), {a: f for f in families for a in f.archs}, problems


def _get():
    global _found
    with _lock:
        if _found is None:
            _found = _scan()
        return _found


def families() -> tuple[Family, ...]:
    """Every family by ``position``; on a tie the built-in folders (by name), then installed packages."""
    return _get()[0]


def archs() -> tuple[str, ...]:
    """Every architecture name, family by family."""
    return tuple(_get()[1])


def family(arch: str) -> Family:
    """The family that declares ``arch``; ConfigError naming the known architectures otherwise."""
    found = _get()[1].get(arch) if isinstance(arch, str) else None
    if found is None:
        raise ConfigError(f"unknown architecture '{str(arch)[:40]}': use one of {', '.join(archs())}")
    return found


def showing(view: str) -> tuple[str, ...]:
    """The architectures whose families show ``view`` (one of ``family.VIEWS``)."""
    return tuple(a for f in families() if view in f.views for a in f.archs)


def listed(names) -> str:
    """Names as a sentence lists them: "rnn, gru and lstm"."""
    names = list(names)
    return " and ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])} and {names[-1]}"


def default_arch() -> str:
    """The architecture a new model has when none is chosen: the first family's (by ``position``) that
    declares a ``default``, else the first architecture."""
    return next((f.default for f in families() if f.default), None) or archs()[0]


def problems() -> list[str]:
    """One line per family that was skipped (it failed to load, or its names were taken)."""
    return list(_get()[2])


def refresh() -> None:
    """Forget the families found: the next question scans again (after installing a family, in tests)."""
    global _found
    with _lock:
        _found = None


__all__ = ["GROUP", "PRESET_NAMES", "Family", "archs", "default_arch", "families", "family", "listed", "problems",
           "refresh", "showing"]
