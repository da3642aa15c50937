"""lmcore: the headless core of lmplay (corpora, tokenizers, batching, models, training, generation,
the checkpoint store). It never imports the UI."""
from __future__ import annotations

import importlib
import sys
import types

# Each public name and the submodule that defines it (``alias=name`` where it is renamed). They are
# imported on first use (PEP 562), so ``import lmcore`` is cheap: the command line lists models without
# loading torch. ``lmcore.X``, ``from lmcore import X`` and ``dir(lmcore)`` work as if imported here.
_EXPORTS = {
    "corpus": ("Corpus", "fetch_corpus=fetch", "load_corpus=load", "corpus_registry=registry"),
    "data": ("BatchStream", "random_batches", "sequential_batches", "split"),
    "errors": ("Cancelled", "ConfigError", "CorpusError", "DownloadError", "LmError", "StoreError"),
    "events": ("DoneEvent", "EvalEvent", "Event", "FailedEvent", "StartEvent", "StepEvent"),
    "generate": ("Generator", "PromptInfo", "Stream", "TokenOut", "load_model"),
    "models": ("ModelConfig", "build_model", "preset_config"),
    "device": ("describe_device=describe", "pick_device"),
    "paths": ("assets_dir", "data_home=home"),
    "sampling_settings": ("SAMPLE_TEMPERATURE", "SAMPLING_PRESETS=PRESETS", "SamplingSettings",
                          "sampling_preset=from_preset", "sampling_summary=summary"),
    "settings": ("Settings",),
    "store": ("ModelEntry", "Store", "leaderboard", "validate_name"),
    "text": ("Tokenizer", "build_vocab", "encode"),
    "checkpoint": ("Checkpoint", "CheckpointError", "CorpusRef", "EvalPoint"),
    "evaluation": ("evaluate",),
    "scoring": ("TextScore", "TokenScore", "score_text", "validation_text"),
    "safe_text": ("strict_json", "visible", "visible_line"),
    "train": ("Trainer", "train"),
    "train_config": ("TrainConfig",),
    "vocab": ("Vocab",),
}
_WHERE = {}  # public name: (submodule, its name there)
for _module, _names in _EXPORTS.items():
    for _alias, _, _name in (n.partition("=") for n in _names):
        _WHERE[_alias] = (_module, _name or _alias)
del _module, _names, _alias, _name


def _version() -> str:
    """The installed distribution's version; a checkout that is not installed reads pyproject.toml."""
    from importlib import metadata

    try:
        return metadata.version("lmplay")
    except metadata.PackageNotFoundError:
        import re
        from pathlib import Path

        try:
            text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text("utf-8")
        except OSError:
            return "0+unknown"
        m = re.search(r'(?m)^version\s*=\s*"([^"]+)"', text)
        return m.group(1) if m else "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        value = _version()
    elif name in _WHERE:
        module, attr = _WHERE[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
    else:  # a submodule not imported yet (lmcore.corpus.registry() after a bare `import lmcore`)
        try:
            return importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE, "__version__"})


class _Package(types.ModuleType):
    """``lmcore.train`` is the function, also once the submodule of that name is imported (the import
    system then sets the submodule as the package's attribute: that is ignored)."""

    @property
    def train(self):
        value = self.__dict__.get("train")
        return value if callable(value) else importlib.import_module(".train", __name__).train

    @train.setter
    def train(self, value) -> None:
        if not isinstance(value, types.ModuleType):  # e.g. a test's stand-in
            self.__dict__["train"] = value


sys.modules[__name__].__class__ = _Package


__all__ = [
    "Checkpoint", "CheckpointError", "TextScore", "TokenScore", "score_text", "validation_text", "SAMPLE_TEMPERATURE", "validate_name", "CorpusRef", "EvalPoint", "strict_json", "visible", "visible_line",
    "BatchStream", "Cancelled", "ConfigError", "Corpus", "CorpusError", "DownloadError", "DoneEvent", "EvalEvent", "Event", "FailedEvent",
    "Generator", "LmError", "leaderboard", "SAMPLING_PRESETS", "sampling_preset", "sampling_summary", "Settings", "assets_dir", "data_home", "describe_device", "pick_device", "ModelConfig", "ModelEntry", "PromptInfo", "SamplingSettings", "StartEvent",
    "StepEvent", "Store", "StoreError", "Stream", "TokenOut", "Tokenizer", "TrainConfig", "Trainer", "Vocab",
    "build_model", "build_vocab", "corpus_registry", "encode", "evaluate", "fetch_corpus", "load_corpus",
    "load_model", "preset_config", "random_batches", "sequential_batches", "split", "train",
]
