"""Preparing a run: everything checked and loaded before the first step, so that a bad option, a
missing GPU or a text too short for one batch fails here, with one line, before anything is saved.

``prepare_new`` starts a model; ``prepare_continue`` reads a saved one and continues it. The caller (the
Trainer) holds the model's lock while either runs."""
from __future__ import annotations

import collections
from dataclasses import dataclass, replace
from typing import Callable

import torch

from . import corpus as corpora
from .checkpoint import Checkpoint, CorpusRef
from .data import BatchStream, split
from .device import pick_device
from .errors import ConfigError, StoreError
from .models import ModelConfig, model_class
from .store import Store
from .text import Tokenizer, _chunks, build_vocab, encode, id_dtype
from .train_config import TrainConfig
from .vocab import Vocab


@dataclass
class PreparedRun:
    """What one run trains: the model's description, the resolved recipe and the encoded text."""

    name: str
    preset: str
    model_cfg: ModelConfig
    cfg: TrainConfig
    tokenizer: Tokenizer
    vocab: Vocab
    corpus: CorpusRef
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    device: torch.device
    saved: Checkpoint | None = None     # the checkpoint this run continues
    resume_state: dict | None = None    # its optimizer, RNG, data position and latest weights
    run_start_step: int = 0
    run_start_elapsed: float = 0.0
    stream: BatchStream | None = None   # None for models trained by counting

    @property
    def step0(self) -> int:
        return int(self.resume_state["step"]) if self.resume_state else 0


Progress = Callable[[int, int | None], None]


def _encode(run_corpus: corpora.Corpus, tok: Tokenizer, vocab: Vocab | None, val_fraction: float):
    """The text as ids, split into training and validation; the characters of the validation text.

    The text is first encoded with a vocabulary of all its tokens (so the validation text's length in
    characters is exact), then mapped onto ``vocab`` (a saved model's) or, for a new word-level model,
    onto the tokens of the training split only: a word seen only in validation is ``<unk>`` there, as it
    would be in any new text, instead of a row of untrained embedding."""
    text = tok.preprocess(run_corpus.text)
    run_corpus.text = ""  # only the compact ids are needed from here on (a huge corpus stays small)
    full = build_vocab(text, tok)
    ids = encode(text, tok, full)
    del text
    train_ids, val_ids = split(ids, val_fraction)
    if len(val_ids) < 2:
        raise ConfigError(f"corpus '{run_corpus.name}' is too small to hold out a validation set "
                          f"({len(ids):,} tokens): use a larger text")
    val_chars = len(val_ids) if tok.level == "char" else len(tok.join(full.decode(val_ids.tolist())))
    if vocab is None:
        vocab = full if tok.level == "char" else _training_vocab(full, train_ids)
    if vocab is not full:
        train_ids, val_ids = _remap(train_ids, full, vocab), _remap(val_ids, full, vocab)
    return vocab, train_ids, val_ids, val_chars


def fit_tokenizer(tok: Tokenizer, run_corpus: corpora.Corpus, val_fraction: float) -> Tokenizer:
    """The tokenizer trained on the training part of the corpus, for tokens learnt from the text (bpe):
    the first (1 - val_fraction) of the preprocessed text's characters, so the validation text never
    shapes the tokens. Any other tokenizer is returned as is."""
    if not tok.needs_fitting:
        return tok
    text = tok.preprocess(run_corpus.text)
    return tok.fitted(_chunks(text[: len(text) - int(len(text) * val_fraction)], tok.level))


def _training_vocab(full: Vocab, train_ids: torch.Tensor) -> Vocab:
    """The tokens that occur in the training split, most frequent there first."""
    counts = torch.bincount(train_ids.long(), minlength=len(full)).tolist()
    return Vocab(collections.Counter({t: n for t, n in zip(full.idx_to_token, counts) if n and t != full.idx_to_token[0]}))


def _remap(ids: torch.Tensor, full: Vocab, vocab: Vocab, chunk: int = 1 << 22) -> torch.Tensor:
    """Ids of ``full`` as ids of ``vocab`` (0, ``<unk>``, for tokens it lacks), chunk by chunk."""
    lut = torch.tensor([vocab.token_to_idx.get(t, 0) for t in full.idx_to_token], dtype=torch.int64)
    out = torch.empty(len(ids), dtype=id_dtype(len(vocab)))
    for start in range(0, len(ids), chunk):
        out[start: start + chunk] = lut[ids[start: start + chunk].long()]
    return out


def _finish(run: PreparedRun) -> PreparedRun:
    """Checks that need the data: the model fits the vocabulary, one batch fits the text."""
    cls = model_class(run.model_cfg.arch)
    run.model_cfg.vocab_size = len(run.vocab)
    run.model_cfg.validate()
    cfg = run.cfg
    if run.model_cfg.arch == "transformer" and cfg.seq_len > run.model_cfg.context:
        raise ConfigError(f"the sequence length ({cfg.seq_len}) is larger than the transformer's context "
                          f"({run.model_cfg.context}): use --context {cfg.seq_len} or --seq-len "
                          f"{run.model_cfg.context}")
    if cls.trainable:
        run.stream = BatchStream(run.train_ids, cfg.batch_size, cfg.seq_len, cfg.sampling, cfg.seed)
    return run


def _corpus_ref(c: corpora.Corpus, train_ids, val_ids, val_chars: int) -> CorpusRef:
    return CorpusRef(name=c.name, sha1=c.sha1, source=c.source, train_tokens=len(train_ids),
                     val_tokens=len(val_ids), val_chars=val_chars)


def prepare_new(store: Store, name: str, model_cfg: ModelConfig, preset: str, given: TrainConfig,
                corpus: str, tokenizer: Tokenizer, encoding: str | None = None,
                progress: Progress | None = None) -> PreparedRun:
    if store.exists(name):
        raise StoreError(f"a model named '{name}' exists already: continue it with --resume, "
                          f"pick another name, or delete it (lmcore models rm {name})")
    model_cfg.validate()
    cfg = given.resolved(model_cfg.arch, preset, model_class(model_cfg.arch).stateful)
    device = pick_device(cfg.device)
    c = corpora.load(corpus, store.home, encoding=encoding, progress=progress)
    tokenizer = fit_tokenizer(tokenizer, c, cfg.val_fraction)
    vocab, train_ids, val_ids, val_chars = _encode(c, tokenizer, None, cfg.val_fraction)
    ref = _corpus_ref(c, train_ids, val_ids, val_chars)
    return _finish(PreparedRun(name, preset, model_cfg, cfg, tokenizer, vocab, ref, train_ids, val_ids, device))


def prepare_continue(store: Store, name: str, given: TrainConfig, corpus: str | None = None,
                     encoding: str | None = None, progress: Progress | None = None) -> PreparedRun:
    """Continue model ``name``. With ``given.steps`` / ``given.minutes``, a new run of that many more steps
    or minutes starts at the saved step; without, the saved run goes on where it stopped (refused when
    it had finished: there is nothing left of it)."""
    saved = store.read(name)
    cls = model_class(saved.model.arch)
    if not cls.trainable:
        raise ConfigError(f"model '{name}' is an {saved.model.arch} model, trained by counting in one pass: "
                          f"there is nothing to continue. Train a new model to change it")
    budget = {k: v for k, v in (("steps", given.steps), ("minutes", given.minutes)) if v is not None}
    if budget:  # a new run: N more steps / M more minutes from here
        run_start_step, run_start_elapsed = saved.step, saved.elapsed
        cfg = saved.train.overlaid(replace(given, steps=None, minutes=None))
        cfg.steps, cfg.minutes = budget.get("steps"), budget.get("minutes")
    else:
        if saved.budget_reached():
            t = saved.train
            what = (f"{t.steps:,} steps" if t.steps is not None else "") + \
                   (" / " if t.steps is not None and t.minutes is not None else "") + \
                   (f"{t.minutes:g} minutes" if t.minutes is not None else "")
            raise ConfigError(f"model '{name}' has finished its run ({what}, now at step {saved.step:,}): "
                              f"say how much more to train with --steps N or --minutes M")
        run_start_step, run_start_elapsed = saved.run_start_step, saved.run_start_elapsed
        cfg = saved.train.overlaid(given)
    cfg = cfg.validate(cls.stateful)
    device = pick_device(cfg.device)
    resume_state = store.load_resume(name, saved)
    if resume_state is None:
        raise ConfigError(f"model '{name}' has no resume state saved: it cannot be continued")
    src = corpus or saved.corpus.argument()
    c = corpora.load(src, store.home, encoding=encoding, progress=progress)
    if c.sha1 != saved.corpus.sha1:
        raise ConfigError(f"corpus '{src}' is not the text model '{name}' was trained on (sha1 differs): "
                          f"continue with the same text (--corpus PATH if it moved), or train a new model")
    _, train_ids, val_ids, val_chars = _encode(c, saved.tokenizer, saved.vocab, cfg.val_fraction)
    run = PreparedRun(name, saved.preset, replace(saved.model), cfg, saved.tokenizer, saved.vocab,
                      _corpus_ref(c, train_ids, val_ids, val_chars), train_ids, val_ids, device,
                      saved, resume_state,
                      run_start_step, run_start_elapsed)
    return _finish(run)
