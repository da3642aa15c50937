"""lmcore: the headless core of lmplay (corpora, tokenizers, batching, models, training, generation,
the checkpoint store). It never imports the UI."""
from __future__ import annotations

__version__ = "0.1.0"

from .corpus import Corpus, fetch as fetch_corpus, load as load_corpus, registry as corpus_registry  # noqa: E402
from .data import BatchStream, random_batches, sequential_batches, split  # noqa: E402
from .errors import Cancelled, ConfigError, CorpusError, DownloadError, LmError, StoreError  # noqa: E402
from .events import DoneEvent, EvalEvent, Event, FailedEvent, StartEvent, StepEvent  # noqa: E402
from .generate import Generator, PromptInfo, Stream, TokenOut, load_model  # noqa: E402
from .models import ModelConfig, build_model, preset_config  # noqa: E402
from .device import describe as describe_device, pick_device  # noqa: E402
from .paths import assets_dir, home as data_home  # noqa: E402
from .sampling import PRESETS as SAMPLING_PRESETS, SamplingSettings, from_preset as sampling_preset  # noqa: E402
from .sampling import summary as sampling_summary  # noqa: E402
from .settings import Settings  # noqa: E402
from .store import ModelEntry, Store, leaderboard, validate_name  # noqa: E402
from .text import Tokenizer, build_vocab, encode  # noqa: E402
from .checkpoint import Checkpoint, CheckpointError, CorpusRef, EvalPoint  # noqa: E402
from .evaluation import SAMPLE_TEMPERATURE, evaluate  # noqa: E402
from .scoring import TextScore, TokenScore, score_text, validation_text  # noqa: E402
from .safe_text import strict_json, visible, visible_line  # noqa: E402
from .train import Trainer, train  # noqa: E402
from .train_config import TrainConfig  # noqa: E402
from .vocab import Vocab  # noqa: E402

__all__ = [
    "Checkpoint", "CheckpointError", "TextScore", "TokenScore", "score_text", "validation_text", "SAMPLE_TEMPERATURE", "validate_name", "CorpusRef", "EvalPoint", "strict_json", "visible", "visible_line",
    "BatchStream", "Cancelled", "ConfigError", "Corpus", "CorpusError", "DownloadError", "DoneEvent", "EvalEvent", "Event", "FailedEvent",
    "Generator", "LmError", "leaderboard", "SAMPLING_PRESETS", "sampling_preset", "sampling_summary", "Settings", "assets_dir", "data_home", "describe_device", "pick_device", "ModelConfig", "ModelEntry", "PromptInfo", "SamplingSettings", "StartEvent",
    "StepEvent", "Store", "StoreError", "Stream", "TokenOut", "Tokenizer", "TrainConfig", "Trainer", "Vocab",
    "build_model", "build_vocab", "corpus_registry", "encode", "evaluate", "fetch_corpus", "load_corpus",
    "load_model", "preset_config", "random_batches", "sequential_batches", "split", "train",
]
