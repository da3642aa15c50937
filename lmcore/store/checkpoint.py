"""The checkpoint format: what a model's ``meta.json`` holds, written (``to_json``) and read (``from_json``)
here and nowhere else.

A checkpoint describes the model (ModelConfig), its training recipe (TrainConfig), the tokenizer, the
vocabulary, the corpus it was trained on (registry name or absolute path, and its sha1), the run so far
(step, elapsed time, the current run's start, evaluation history, the training-loss curve), the best
validation loss and the data files beside it. Reading validates every type and range and checks the
model's shapes against the weights file's header before anything is allocated; anything wrong raises
:class:`CheckpointError` with the reason, and the store lists that one model as damaged."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from .. import __version__
from ..errors import LmError
from ..models import PRESET_NAMES, ModelConfig, expected_shapes, tensor_shapes
from ..models.config import MAX_VOCAB
from ..data.text import Tokenizer
from ..training.config import TrainConfig
from .typed import check_value, from_mapping
from ..data.vocab import UNK, Vocab

FORMAT = 2
READABLE = (1, 2)
MAX_CURVE = 4000  # training-loss points kept for the chart (thinned by halves beyond this)
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")


class CheckpointError(ValueError):
    """meta.json (or a file it names) does not describe a usable model; the message says why."""


def ppl(loss: float | None) -> float | None:
    """Perplexity exp(loss); None for no loss, infinity instead of an overflow."""
    if loss is None:
        return None
    return math.exp(loss) if loss < 700 else float("inf")


@dataclass
class CorpusRef:
    """Which text a model was trained on: a registry corpus by name, or a file/folder by absolute path."""

    name: str
    sha1: str
    source: str                  # "builtin", "cache" (a registry corpus) or an absolute path
    train_tokens: int = 0
    val_tokens: int = 0
    val_chars: int = 0           # characters of the validation text (bits per character; 0: not known)
    encoding: str | None = None  # the text encoding a file was read with (None: UTF-8), read with again
    pairs_seed: int | None = None  # a pairs corpus: the seed of the fixed shuffle that split it

    def argument(self) -> str:
        """What to pass to ``corpus.load`` to get the same text again."""
        return self.name if self.source in ("builtin", "cache") else self.source


@dataclass
class EvalPoint:
    step: int
    val_loss: float
    elapsed: float = 0.0
    train_loss: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    bits_per_char: float | None = None  # the same loss per character of validation text, in bits
    fill_top1: float | None = None      # fill accuracy on the validation text's fixed blanks (fractions;
    fill_top5: float | None = None      # None: not measured): lmcore.generation.fill_accuracy
    # pairs models (encoder–decoders): the greedy replies to the validation sources, as fractions in [0, 1]
    bleu: float | None = None           # the chapter's BLEU per sentence, averaged
    corpus_bleu: float | None = None    # sacrebleu's corpus BLEU
    exact: float | None = None          # replies equal to their reference
    # a model's own numbers (LanguageModel.val_metrics), None for the others: BERT's masked-token loss (its
    # val_loss), pseudo-perplexity (on the first validation tokens) and next-sentence accuracy in [0, 1]
    mlm_loss: float | None = None
    pseudo_ppl: float | None = None
    nsp_accuracy: float | None = None

    @property
    def val_ppl(self) -> float:
        return ppl(self.val_loss)

    def to_dict(self) -> dict:
        """As meta.json holds it: a model's own numbers only when it has them."""
        return {k: v for k, v in asdict(self).items() if v is not None or k not in OWN_METRICS}


# EvalPoint's fields a model's val_metrics fills, and how they read
OWN_METRICS = {"mlm_loss": "masked-token loss", "pseudo_ppl": "pseudo-perplexity (first validation tokens)",
               "nsp_accuracy": "next-sentence accuracy"}


@dataclass
class Files:
    weights: str
    resume: str | None = None


@dataclass
class Checkpoint:
    name: str
    model: ModelConfig
    train: TrainConfig
    tokenizer: Tokenizer
    vocab: Vocab
    corpus: CorpusRef
    preset: str = "small"             # or "auto": chosen for the corpus and the budget, ``auto`` says how
    auto: str = ""
    step: int = 0
    elapsed: float = 0.0              # seconds of training, all runs together
    run_start_step: int = 0           # where the current run (its steps/minutes budget) began
    run_start_elapsed: float = 0.0
    params: int = 0
    device: str = ""
    history: list[EvalPoint] = field(default_factory=list)
    curve: list[list] = field(default_factory=list)   # [step, train loss, elapsed seconds]
    best_val_loss: float | None = None
    unigram_val_loss: float | None = None
    files: Files | None = None
    created: str = ""
    updated: str = ""
    lmplay_version: str = __version__

    # ------------------------------------------------------------ what the run has done
    @property
    def best_val_ppl(self) -> float | None:
        return ppl(self.best_val_loss)

    def budget_reached(self) -> bool:
        """Whether the current run used up its steps or minutes (a continue then needs a new budget)."""
        t = self.train
        if not self.model_trainable:
            return True
        if t.steps is not None and self.step >= self.run_start_step + t.steps:
            return True
        return t.minutes is not None and self.elapsed >= self.run_start_elapsed + t.minutes * 60

    @property
    def model_trainable(self) -> bool:
        return self.model.family.trainable

    @property
    def tokens_seen(self) -> int | None:
        """Tokens the training read: steps × batch size × sequence length (a continued run with another
        batch counts at the last one); a model that counts rather than trains read its training text once.
        None when the recipe does not say."""
        if not self.model_trainable:
            return self.corpus.train_tokens or None
        t = self.train
        if not t.batch_size or not t.seq_len:
            return None
        return self.step * t.batch_size * t.seq_len

    def add_curve_point(self, step: int, loss: float, elapsed: float) -> None:
        if math.isfinite(loss):
            self.curve.append([int(step), round(float(loss), 5), round(float(elapsed), 2)])
            if len(self.curve) > MAX_CURVE:
                self.curve = self.curve[::2]

    def bits_per_char(self, loss: float | None) -> float | None:
        """A loss in nats per token as bits per character of the validation text: models with different
        tokens (characters, words, subwords) are compared on this. None when it cannot be known, or when
        the loss is not a next-token loss (BERT's masked tokens: no leaderboard rank among the others)."""
        if loss is None or not math.isfinite(loss) or not self.model.family.next_token_loss:
            return None
        if self.tokenizer.level == "char":
            return loss / math.log(2)
        if self.corpus.val_chars > 0 and self.corpus.val_tokens > 0:
            return loss / math.log(2) * self.corpus.val_tokens / self.corpus.val_chars
        return None

    @property
    def best_val_bleu(self) -> float | None:
        """A pairs model's best chapter BLEU over its evaluations (None for language models)."""
        return max((h.bleu for h in self.history if h.bleu is not None), default=None)

    @property
    def best_val_exact(self) -> float | None:
        """A pairs model's best exact-match fraction over its evaluations (None for language models)."""
        return max((h.exact for h in self.history if h.exact is not None), default=None)

    @property
    def best_val_bpc(self) -> float | None:
        return self.bits_per_char(self.best_val_loss)

    @property
    def best_fill(self) -> tuple[float | None, float | None]:
        """The highest top-1 and top-5 fill accuracy over the evaluations (None: never measured)."""
        return (max((h.fill_top1 for h in self.history if h.fill_top1 is not None), default=None),
                max((h.fill_top5 for h in self.history if h.fill_top5 is not None), default=None))

    def summary(self) -> dict:
        return {
            "name": self.name, "arch": self.model.arch, "impl": self.model.get("impl", "fused"), "preset": self.preset,
            "params": self.params, "corpus": self.corpus.name, "tokens": self.tokenizer.level,
            "step": self.step, "best_val_loss": self.best_val_loss, "best_val_ppl": self.best_val_ppl,
            "best_val_bpc": self.best_val_bpc, "best_val_fill_top1": self.best_fill[0],
            "best_val_fill_top5": self.best_fill[1], "elapsed": self.elapsed, "tokens_seen": self.tokens_seen,
            "tokens_per_s": next((h.tokens_per_s for h in reversed(self.history) if h.tokens_per_s), None),
            "device": self.device, "updated": self.updated, **self.own_metrics(),
            **({"best_val_bleu": self.best_val_bleu, "best_val_exact": self.best_val_exact}
               if self.best_val_bleu is not None else {}),
        }

    def own_metrics(self) -> dict[str, float]:
        """The last evaluation's numbers of the model's own (BERT: mlm_loss, pseudo_ppl, nsp_accuracy)."""
        last = self.history[-1] if self.history else None
        return {k: getattr(last, k) for k in OWN_METRICS if last is not None and getattr(last, k) is not None}

    # ------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        return {
            "format": FORMAT, "lmplay_version": self.lmplay_version, "name": self.name, "preset": self.preset,
            "model": self.model.to_dict(), "train": self.train.to_dict(), "tokenizer": self.tokenizer.to_dict(),
            "vocab": {"idx_to_token": self.vocab.idx_to_token, "min_freq": self.vocab.min_freq,
                      "reserved_tokens": self.vocab.reserved_tokens},
            "corpus": asdict(self.corpus), "step": self.step, "elapsed": round(self.elapsed, 3),
            "run_start_step": self.run_start_step, "run_start_elapsed": round(self.run_start_elapsed, 3),
            "params": self.params, "device": self.device,
            "history": [h.to_dict() for h in self.history], "curve": self.curve,
            "best_val_loss": self.best_val_loss, "best_val_ppl": _finite(self.best_val_ppl),
            "unigram_val_loss": self.unigram_val_loss,
            "files": asdict(self.files) if self.files else None,
            "created": self.created, "updated": self.updated, **({"auto": self.auto} if self.auto else {}),
        }

    @classmethod
    def from_json(cls, d, folder_name: str | None = None) -> "Checkpoint":
        """A validated checkpoint from meta.json's content; CheckpointError says what is wrong."""
        try:
            return cls._from_json(d, folder_name)
        except CheckpointError:
            raise
        except (ValueError, LmError) as exc:
            raise CheckpointError(str(exc)) from None

    @classmethod
    def _from_json(cls, d, folder_name: str | None) -> "Checkpoint":
        if not isinstance(d, dict):
            raise CheckpointError("meta.json does not hold an object")
        fmt = check_value("format", d.get("format", 1), int)
        if fmt > FORMAT:
            raise CheckpointError(f"it was saved by a newer lmplay (format {fmt}): upgrade lmplay")
        if fmt not in READABLE:
            raise CheckpointError(f"unknown format {fmt}")
        for key in ("model", "vocab", "tokenizer", "corpus", "files"):
            if key not in d:
                raise CheckpointError(f"meta.json lacks '{key}'")
        model = ModelConfig.from_dict(d["model"])
        vocab = _vocab(d["vocab"])
        if model.vocab_size != len(vocab):
            raise CheckpointError(f"the vocabulary holds {len(vocab):,} tokens but the model expects "
                                  f"{model.vocab_size:,}")
        specials = model.family.special_tokens  # its vocabulary ends with them, in this order (BERT's)
        if specials and list(vocab.idx_to_token[-len(specials):]) != list(specials):
            raise CheckpointError(f"the vocabulary of a {model.arch} model must end with "
                                  f"{' '.join(specials)}; it does not")
        tokenizer = from_mapping(Tokenizer, d["tokenizer"], "tokenizer")  # a BPE is checked as it is read
        if tokenizer.needs_fitting:
            raise CheckpointError("tokenizer.bpe is missing: the model's BPE tokens were not saved")
        corpus_d = d["corpus"]
        if isinstance(corpus_d, dict) and fmt == 1:  # format 1 kept the argument as given
            corpus_d = {k: v for k, v in corpus_d.items() if k != "source_arg"}
        corpus = from_mapping(CorpusRef, corpus_d, "corpus")
        if not _SHA1_RE.match(corpus.sha1):
            raise CheckpointError("corpus.sha1 is not a sha1")
        files = from_mapping(Files, d["files"], "files")
        for f in (files.weights, files.resume):
            if f is not None and not _FILE_RE.match(f):
                raise CheckpointError(f"files names {f[:80]!r}, not a file of this folder")
        history = [from_mapping(EvalPoint, h, f"history[{i}]") for i, h in enumerate(_list(d, "history"))]
        for i, h in enumerate(history):
            if any(v is not None and not 0 <= v <= 1 for v in (h.fill_top1, h.fill_top5)):
                raise CheckpointError(f"history[{i}]'s fill accuracy must be a fraction in [0, 1]")
            for k in ("bleu", "corpus_bleu", "exact"):
                if getattr(h, k) is not None and not 0.0 <= getattr(h, k) <= 1.0:
                    raise CheckpointError(f"history[{i}].{k} must be between 0 and 1")
        curve = _list(d, "curve")
        for i, pt in enumerate(curve):
            if not (isinstance(pt, list) and len(pt) in (2, 3)):
                raise CheckpointError(f"curve[{i}] must be [step, loss, elapsed]")
            check_value(f"curve[{i}]", pt[0], int)
            for v in pt[1:]:
                check_value(f"curve[{i}]", v, float)
        get = lambda k, tp, default: check_value(k, d.get(k, default), tp)  # noqa: E731
        preset = get("preset", str, "small")
        if preset not in PRESET_NAMES + ("auto",):
            raise CheckpointError(f"unknown preset {preset[:20]!r}")
        # a missing field takes the preset's value, as it did when the run started
        train = TrainConfig.from_dict(d.get("train", {})).resolved(model.arch, preset, model.family.stateful)
        ck = cls(
            name=folder_name or get("name", str, ""), model=model,
            train=train, tokenizer=tokenizer, vocab=vocab,
            corpus=corpus, preset=preset, step=get("step", int, 0),
            elapsed=get("elapsed", float, (history[-1].elapsed if history else 0.0)),
            run_start_step=get("run_start_step", int, 0), run_start_elapsed=get("run_start_elapsed", float, 0.0),
            params=get("params", int, 0), device=get("device", str, ""), history=history, curve=curve,
            best_val_loss=get("best_val_loss", float | None, None),
            unigram_val_loss=get("unigram_val_loss", float | None, None), files=files,
            created=get("created", str, ""), updated=get("updated", str, ""),
            lmplay_version=get("lmplay_version", str, ""), auto=get("auto", str, ""),
        )
        for k in ("step", "params", "run_start_step", "elapsed", "run_start_elapsed"):
            if not 0 <= getattr(ck, k) <= 10 ** 13:
                raise CheckpointError(f"{k} must be between 0 and 10^13")
        if ck.run_start_step > ck.step:
            raise CheckpointError("run_start_step is after step")
        return ck

    # ------------------------------------------------------------ the weights file must fit the model
    def check_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """``shapes``: the tensors of the weights file (from its header). Raises CheckpointError unless
        they are exactly what the model holds."""
        want = expected_shapes(self.model)
        if want is None:  # the n-gram: named tensors, 1-D, the unigram counts one per token
            names = set(tensor_shapes(self.model))
            if set(shapes) != names:
                raise CheckpointError("the weights file does not hold this model's tensors")
            if shapes.get("unigram") != (self.model.vocab_size,) or any(len(s) != 1 for s in shapes.values()):
                raise CheckpointError("the weights file's counts do not fit the vocabulary")
            return
        missing, extra = set(want) - set(shapes), set(shapes) - set(want)
        if missing or extra:
            what = f"lacks {sorted(missing)[0]}" if missing else f"has an unexpected {sorted(extra)[0]}"
            raise CheckpointError(f"the weights file {what}")
        for k, s in want.items():
            if tuple(shapes[k]) != s:
                raise CheckpointError(f"tensor {k} has shape {tuple(shapes[k])}, the model needs {s}")


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _list(d: dict, key: str) -> list:
    v = d.get(key, [])
    if not isinstance(v, list):
        raise CheckpointError(f"{key} must be a list")
    return v


def _vocab(d) -> Vocab:
    if not isinstance(d, dict) or not isinstance(d.get("idx_to_token"), list):
        raise CheckpointError("vocab.idx_to_token must be a list of tokens")
    tokens = d["idx_to_token"]
    if not 1 <= len(tokens) <= MAX_VOCAB:
        raise CheckpointError(f"the vocabulary must hold 1 to {MAX_VOCAB:,} tokens")
    if not all(isinstance(t, str) and t for t in tokens):
        raise CheckpointError("every vocabulary token must be a non-empty string")
    if tokens[0] != UNK or len(set(tokens)) != len(tokens):
        raise CheckpointError("the vocabulary must start with <unk> and hold no duplicates")
    reserved = d.get("reserved_tokens", [])
    if not isinstance(reserved, list) or not all(isinstance(t, str) for t in reserved):
        raise CheckpointError("vocab.reserved_tokens must be a list of strings")
    min_freq = check_value("vocab.min_freq", d.get("min_freq", 0), int)
    return Vocab.from_dict({"idx_to_token": tokens, "min_freq": min_freq, "reserved_tokens": reserved})
