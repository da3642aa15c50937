"""lmcore: the headless core of lmplay, by stage: data (corpora, tokenizers, batching), models (one folder
per family), training, generation, store (checkpoints), inspect, export, bench, and the ``lmcore`` command
line (cli). It never imports the UI."""
from __future__ import annotations

import importlib

# Each public name and the submodule that defines it (``alias=name`` where it is renamed). They are
# imported on first use (PEP 562), so ``import lmcore`` is cheap: the command line lists models without
# loading torch. ``lmcore.X``, ``from lmcore import X`` and ``dir(lmcore)`` work as if imported here.
_EXPORTS = {
    "data.corpus": ("Corpus", "CorpusEntry", "fetch_corpus=fetch", "load_corpus=load", "corpus_registry=registry",
                    "corpus_entry=entry", "corpus_status=status", "CORPUS_MIRROR_ENV=MIRROR_ENV"),
    "data.batching": ("BatchStream", "split"),
    "errors": ("Cancelled", "ConfigError", "CorpusError", "DownloadError", "LmError", "StoreError"),
    "events": ("DoneEvent", "EvalEvent", "Event", "FailedEvent", "StartEvent", "StepEvent"),
    "generation.generator": ("Generator", "PromptInfo", "Stream", "TokenOut", "load_model"),
    "models": ("ModelConfig", "build_model", "preset_config"),
    "device": ("describe_device=describe", "pick_device"),
    "paths": ("assets_dir", "data_home=home"),
    "generation.sampling_settings": ("SAMPLE_TEMPERATURE", "SAMPLING_PRESETS=PRESETS", "SamplingSettings",
                          "sampling_preset=from_preset", "sampling_summary=summary"),
    "settings": ("Settings",),
    "store.model_store": ("ModelEntry", "Store", "leaderboard", "validate_name"),
    "data.text": ("Tokenizer", "build_vocab", "encode"),
    "store.budget": ("Budget", "model_budget", "budgets_differ", "minutes_label=minutes", "count_label=human"),
    "store.checkpoint": ("Checkpoint", "CheckpointError", "CorpusRef", "EvalPoint"),
    "training.evaluation": ("evaluate_loss=evaluate",),
    "training.evaluate_model": ("Evaluation", "evaluate"),
    "generation.fill_accuracy": ("FillAccuracy", "fill_accuracy"),
    "generation.translate": ("Reply",),
    "generation.seq2seq_decode": ("reply",),
    "generation.reply_stream": ("ReplyStream",),
    "generation.side_by_side": ("answers_sources", "answer_stream", "side_by_side_problem"),
    "training.bleu": ("bleu", "corpus_bleu"),
    "generation.fill": ("FillResult", "fill", "fill_blanks"),
    "generation.scoring": ("TextScore", "TokenScore", "score_text", "validation_text", "rank_bucket",
                           "RANK_BUCKETS=BUCKETS"),
    "safe_text": ("strict_json", "visible", "visible_line", "visible_token"),
    "training.trainer": ("Trainer", "train"),
    "training.config": ("TrainConfig",),
    "training.spec": ("RunSpec",),
    "data.vocab": ("Vocab",),
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
    else:  # a subpackage not imported yet (lmcore.inspect after a bare `import lmcore`)
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




__all__ = sorted(_WHERE)  # the public names: every one above
