"""A model family: one folder under ``lmcore/models/`` (or a package installed beside lmplay) that says, in
one place, everything the rest of lmplay asks about its models. Nothing here imports torch.

A family's ``__init__.py`` holds ``FAMILY = Family(...)`` (or an instance of a subclass that overrides a
method or two); the registry (:mod:`.registry`) finds it. It declares:

- ``name`` and ``archs`` (arch -> one-line description; ``labels``: arch -> short label for menus;
  ``position``: where the family comes in lists; ``default``: the arch a new model has when none is
  chosen, for the one family that says so);
- ``options``: a dataclass of the family's model options, each field a default and ``metadata`` made by
  :func:`option` (help text, a (lo, hi) range, choices or a check); a ModelConfig holds one instance;
- ``presets``: arch -> preset name (``PRESET_NAMES``) -> {"model": {option: value}, "train": {...}};
- ``sizes``: arch -> the sizes ``--preset auto`` chooses from, smallest first, each as a preset is
  written ({"model": {...}, "train": {...}}, over the ``small`` preset); none: auto takes the ``small`` preset;
  ``dropout_by_repetition``: ((up to R, dropout), ...), the dropout ``--preset auto`` gives the family's models by
  how often a run can read its text by heart (auto_preset.repetition), or arch -> such a table (an arch not in it:
  the rule's own); none: the rule's own table (:meth:`Family.dropout_table`);
- capabilities: ``windowed`` (a context window of ``context`` tokens) or ``stateful`` (carries a state
  across batches), ``reads_pairs`` (an encoder–decoder trained on ``source<TAB>target`` pairs:
  lmcore/models/encdec.py), ``trainable`` (gradients; False: counted), ``fixed_shapes`` (the saved tensors'
  shapes follow from the config), ``fills_both_ways`` (predicts a blank from both sides of it: the model's
  ``blank_logits``; the others fill by scoring candidates left to right, if they can generate),
  ``fills_jointly`` (its ``blank_logits(ids, blanks)`` reads the whole text with every open blank
  hidden, BERT's mask-predict, instead of only the text between the open blanks),
  ``next_token_loss`` (its validation loss is a next-token cross-entropy, so bits per character and
  the leaderboard compare it with the others'; False: BERT's masked-token loss),
  ``special_tokens`` (tokens its vocabulary holds after the text's, in this order: BERT's ``<cls>``,
  ``<sep>``, ``<mask>``), ``views`` (of VIEWS: "units", the recurrent units' values step by step;
  "attention", the attention maps; "gradients", gradients through time), ``exports`` (export formats),
  ``lessons`` (a view's comparison of fresh models: view -> ((label, arch, options), ...));
  per config: :meth:`Family.cannot_generate`, :meth:`Family.cannot_fill`, :meth:`Family.reads_ahead`,
  :meth:`Family.shows`, :meth:`Family.window`;
- where its code is (imported on first use, as it needs torch): ``model`` (the LanguageModel class),
  ``decode`` (a function ``(model, device) -> decoder or None``: a faster decoder than the model's own
  forward/step), ``tensors`` (a torch-free function ``config -> {name: shape}``);
- how a model reads in a table: :meth:`Family.describe` ("lstm/scratch") and :meth:`Family.size`.

A reference to code is a class or function, or a string ``"module:name"``; a module starting with "."
is relative to the family's package (``package``, which the registry fills in for a family found by
its folder), so a family folder copied under a new name works unchanged."""
from __future__ import annotations

import dataclasses
import importlib
import math
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError

PRESET_NAMES = ("tiny", "small", "base")
AUTO = "auto"  # the preset chosen per run from the corpus and the budget (lmcore/training/auto_preset.py)
VIEWS = ("units", "attention", "gradients")


def option(default: Any, help: str, *, range: tuple[float, float] | None = None,
           choices: tuple | None = None, check: Callable[[Any], str | None] | None = None, flag: str | None = None,
           archs: tuple[str, ...] | None = None, form: str | None = None, labels: Mapping | None = None):
    """A field of a family's options dataclass: its default, help text (the CLI's and the dialog's) and
    what values it takes: ``range`` (lo, hi), both included; ``choices``; ``check(value)`` returning an
    error message or None. ``flag``: the command-line name when it is not the field's (``--layers``).
    ``archs``: the family's architectures it means something to (default: all; ``Family.uses``).
    ``form``: the new-model dialog shows the option, under this label; ``labels``: choice -> its words
    in the dialog's list (a string, or a function that returns one when the dialog opens)."""
    meta = {"help": help, "range": range, "choices": tuple(choices) if choices else None, "check": check,
            "flag": flag, "archs": tuple(archs) if archs else None, "form": form, "labels": dict(labels or {})}
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a family that has none."""


def load(ref, package: str = ""):
    """The object ``ref`` names: itself unless a string ``"module:name"`` (module relative to ``package``
    when it starts with ".")."""
    if not isinstance(ref, str):
        return ref
    module, _, name = ref.partition(":")
    obj = importlib.import_module(module, package or None)
    return getattr(obj, name) if name else obj


class Family:
    """What one family of architectures declares (see the module's docstring). Every attribute can be
    given as a keyword argument; a subclass overrides the methods (``check``, ``describe``, ...)."""

    name: str = ""
    archs: Mapping[str, str] = {}
    labels: Mapping[str, str] = {}
    options: type = NoOptions
    presets: Mapping[str, Mapping[str, Mapping[str, dict]]] = {}
    sizes: Mapping[str, tuple] = {}
    package: str = ""
    position: int = 100          # where the family comes in lists and menus (lower first)
    default: str = ""            # the arch a new model has when none is chosen (registry.default_arch)
    model: Any = None
    decode: Any = None
    tensors: Any = None
    windowed: bool = False
    stateful: bool = False
    trainable: bool = True
    fixed_shapes: bool = True
    fills_both_ways: bool = False
    fills_jointly: bool = False
    next_token_loss: bool = True
    special_tokens: tuple[str, ...] = ()
    views: frozenset = frozenset()
    lessons: Mapping[str, tuple] = {}
    exports: frozenset = frozenset({"onnx"})
    reads_pairs: bool = False    # an encoder–decoder: trains on pairs corpora (lmcore/models/encdec.py)
    dropout_by_repetition: tuple | Mapping = ()  # ((up to R, dropout), ...) or arch -> one, for --preset auto

    def __init__(self, **attributes):
        for key, value in attributes.items():
            if key not in _DECLARED:
                raise TypeError(f"Family has no attribute {key!r}: use one of {', '.join(_DECLARED)}")
            setattr(self, key, value)
        self.archs, self.labels = dict(self.archs), dict(self.labels)
        self.views, self.exports = frozenset(self.views), frozenset(self.exports)

    def __repr__(self) -> str:
        return f"<Family {self.name}: {', '.join(self.archs)}>"

    # ------------------------------------------------------------ names and options
    def label(self, arch: str) -> str:
        """A short name for menus ("LSTM"); the arch itself unless ``labels`` says otherwise."""
        return self.labels.get(arch, arch)

    def dropout_table(self, arch: str) -> tuple:
        """The ((up to R, dropout), ...) table ``--preset auto`` reads for ``arch``: the arch's own where
        ``dropout_by_repetition`` maps archs to tables, else the family's; () where it declares none."""
        table = self.dropout_by_repetition
        return tuple(table.get(arch, ())) if isinstance(table, Mapping) else tuple(table)

    def option_fields(self) -> tuple[dataclasses.Field, ...]:
        """The options' fields in declared order: name, default, type and ``metadata`` (help, range,
        choices, check, flag)."""
        return dataclasses.fields(self.options)

    def option_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.option_fields())

    def uses(self, arch: str, name: str) -> bool:
        """Whether option ``name`` means something to ``arch`` (the LSTM's forget-gate bias does not to a
        GRU's): a form shows it, a command line accepts it for that architecture."""
        found = [f for f in self.option_fields() if f.name == name]
        return bool(found) and (found[0].metadata.get("archs") is None or arch in found[0].metadata["archs"])

    def preset(self, arch: str, preset: str) -> Mapping[str, dict]:
        """{"model": {...}, "train": {...}} of one preset; ConfigError for an unknown preset."""
        table = self.presets.get(arch, {})
        if preset not in table:
            raise ConfigError(f"unknown preset '{preset}': use one of {', '.join(table or PRESET_NAMES)}")
        return table[preset]

    def candidates(self, arch: str) -> tuple[Mapping[str, dict], ...]:
        """The sizes ``--preset auto`` chooses from for ``arch``, smallest first: the declared ``sizes``,
        else the ``small`` preset alone."""
        return tuple(self.sizes.get(arch) or (self.preset(arch, "small"),))

    # ------------------------------------------------------------ validation
    def validate(self, config) -> None:
        """Each option against its type and metadata, then the family's cross-field :meth:`check`;
        ConfigError says what is wrong."""
        for f in self.option_fields():
            value = getattr(config.options, f.name)
            _check_type(f, value)
            _check_meta(f, value)
        self.check(config)

    def check(self, config) -> None:
        """Cross-field rules (a subclass's hook): raise ConfigError."""

    # ------------------------------------------------------------ capabilities per config
    def window(self, config) -> int | None:
        """How many tokens the model reads at most (its context window), or None when it carries a state
        instead."""
        return int(config.context) if self.windowed else None

    def cannot_generate(self, config) -> str | None:
        """Why a model with ``config`` cannot generate text, or None when it can."""
        return None

    def can_generate(self, config) -> bool:
        return self.cannot_generate(config) is None

    def cannot_fill(self, config) -> str | None:
        """Why a model with ``config`` cannot fill blanks, or None: it reads both sides of a blank
        (``fills_both_ways``), or it generates, and fills by scoring candidates left to right."""
        if self.fills_both_ways:
            return None
        problem = self.cannot_generate(config)
        return None if problem is None else f"it neither reads both sides of a blank nor scores candidates: {problem}"

    def reads_ahead(self, config) -> str | None:
        """Why a model with ``config`` reads the token it predicts (its validation perplexity, near 1, then
        measures nothing: the lesson of the cheat), or None: its validation loss is honest."""
        return None

    def shows(self, config, view: str) -> bool:
        """Whether a model with ``config`` can show ``view`` (one of VIEWS)."""
        return view in self.views

    # ------------------------------------------------------------ how it reads in a table
    def describe(self, config) -> str:
        """The model's kind in one short line, as tables and the picker show it ("lstm/scratch")."""
        return config.arch

    def size(self, config) -> str:
        """Its size in a few words ("2 layers × 256")."""
        o = config.options
        if hasattr(o, "num_layers") and hasattr(o, "hidden"):
            return f"{o.num_layers} layer{'s' if o.num_layers != 1 else ''} × {o.hidden}"
        return ""

    # ------------------------------------------------------------ its code (imports torch)
    def model_class(self, arch: str) -> type:
        """The LanguageModel subclass for ``arch`` (imports torch)."""
        return load(self.model, self.package)

    def decoder(self, model, device):
        """The family's own decoder for ``model`` on ``device`` (``torch.device``), or None: generation
        then goes through the model's forward and step."""
        return None if self.decode is None else load(self.decode, self.package)(model, device)

    def shapes(self, config) -> dict[str, tuple[int, ...]] | None:
        """Every tensor a freshly built model with ``config`` holds (its ``state_dict``), from the config
        alone; None when the family does not say (the model is then built on the meta device)."""
        return None if self.tensors is None else load(self.tensors, self.package)(config)


_DECLARED = ("name", "archs", "labels", "options", "presets", "sizes", "package", "position", "default", "model", "decode",
             "tensors", "windowed", "stateful", "trainable", "fixed_shapes", "fills_both_ways", "views", "lessons",
             "exports", "reads_pairs", "fills_jointly", "special_tokens", "next_token_loss", "dropout_by_repetition")


def _check_type(f: dataclasses.Field, value) -> None:
    tp = f.type if isinstance(f.type, type) else {"bool": bool, "int": int, "float": float, "str": str}.get(f.type)
    name = f.name.replace("_", " ")
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false (got {value!r})")
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be a whole number (got {value!r})")
    if tp is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ConfigError(f"{name} must be a number (got {value!r})")
    if tp is str and not isinstance(value, str):
        raise ConfigError(f"{name} must be text (got {value!r})")


def _check_meta(f: dataclasses.Field, value) -> None:
    meta, name = f.metadata, f.name.replace("_", " ")
    if meta.get("choices") and value not in meta["choices"]:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, meta['choices']))} (got {value!r})")
    if meta.get("range"):
        lo, hi = meta["range"]
        if not lo <= value <= hi or (isinstance(value, float) and math.isnan(value)):
            raise ConfigError(f"{name} must be between {lo} and {hi:,} (got {value})")
    if meta.get("check") and (problem := meta["check"](value)):
        raise ConfigError(problem)
