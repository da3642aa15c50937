"""``lmcore train``'s model options: --arch, --preset and every option a model family declares (--hidden,
--heads, --order …), generated from the families' options (lmcore/models/<family>/__init__.py): a new
family or a new option needs no edit here. Also what a parse of them says about the model to build."""
from __future__ import annotations

import argparse
from typing import NamedTuple

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


class ModelOption(NamedTuple):
    name: str       # the option's field name: preset_config's keyword, and the parsed arguments' attribute
    flag: str       # as typed: --layers
    kind: type      # int, float, str or bool
    help: str       # every family's help for it, different ones joined with " / "
    choices: tuple | None
    default_true: bool  # a switch that is on unless turned off (--no-FLAG)


def model_options() -> list[ModelOption]:
    """Every family's options, once each (families by position, options as declared); an option that
    several families declare has the choices of all of them and each different help."""
    from ..models import families

    found: dict[str, dict] = {}
    for fam in families():
        for f in fam.option_fields():
            meta = f.metadata
            kind = f.type if isinstance(f.type, type) else _TYPES.get(str(f.type), str)
            o = found.setdefault(f.name, {"flag": "--" + (meta.get("flag") or f.name).replace("_", "-"),
                                          "kind": kind, "help": [], "choices": [], "default_true": False})
            if meta.get("help") and meta["help"] not in o["help"]:
                o["help"].append(meta["help"])
            o["choices"] += [c for c in meta.get("choices") or () if c not in o["choices"]]
            o["default_true"] |= kind is bool and f.default is True
    return [ModelOption(name, o["flag"], o["kind"], " / ".join(o["help"]), tuple(o["choices"]) or None,
                        o["default_true"]) for name, o in found.items()]


def add_model_options(t) -> None:
    """Add the options that choose and shape a new model to the ``train`` parser ``t`` (none given: the
    preset's value, or the option's default)."""
    from ..models import PRESET_NAMES, archs
    from ..training.auto_preset import DEFAULT_MINUTES

    t.add_argument("--arch", choices=archs())
    t.add_argument("--preset", choices=PRESET_NAMES + ("auto",),
                   help=f"the model's size and recipe (default auto: chosen for the corpus and the budget, --minutes "
                        f"or --steps; none given: {DEFAULT_MINUTES:g} minutes)")
    for o in model_options():
        kw: dict = {"dest": o.name, "default": None, "help": o.help or None}
        if o.kind is bool:
            kw["action"] = argparse.BooleanOptionalAction if o.default_true else "store_true"
        else:
            kw.update(type=o.kind, metavar=o.flag[2:].upper().replace("-", "_"))
            if o.choices:
                kw.update(choices=o.choices, metavar=None)
        t.add_argument(o.flag, **kw)


def model_overrides(args) -> dict:
    """The model options given on the command line, as keywords for ``preset_config`` (None: not given)."""
    return {o.name: getattr(args, o.name, None) for o in model_options()}


def model_options_given(args) -> list[str]:
    """The flags of the model options given (``--arch``, ``--preset`` included), as typed."""
    given = [f"--{dest}" for dest in ("arch", "preset") if getattr(args, dest) is not None]
    return given + [o.flag for o in model_options() if getattr(args, o.name, None) is not None]

