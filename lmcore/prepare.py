"""Preparing a run: everything checked and loaded before the first step, so that a bad option, a
missing GPU or a text too short for one batch fails here, with one line, before anything is saved.

``prepare_new`` starts a model; ``prepare_continue`` reads a saved one and continues it. The caller (the
Trainer) holds the model's lock while either runs."""
from __future__ import annotations

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
from .text import Tokenizer, build_vocab, encode
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
    text = tok.preprocess(run_corpus.text)
    run_corpus.text = ""  # only the compact ids are needed from here on (a huge corpus stays small)
    if vocab is None:
        vocab = build_vocab(text, tok)
    ids = encode(text, tok, vocab)
    del text
    train_ids, val_ids = split(ids, val_fraction)
    if len(val_ids) < 2:
        raise ConfigError(f"corpus '{run_corpus.name}' is too small to hold out a validation set "
                          f"({len(ids):,} tokens): use a larger text")
    return vocab, train_ids, val_ids


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


def _corpus_ref(c: corpora.Corpus, train_ids, val_ids, tokenizer: Tokenizer, vocab) -> CorpusRef:
    chars = len(val_ids) if tokenizer.level == "char" else len(tokenizer.join(vocab.decode(val_ids.tolist())))
    return CorpusRef(name=c.name, sha1=c.sha1, source=c.source, train_tokens=len(train_ids),
                     val_tokens=len(val_ids), val_chars=chars)


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
    vocab, train_ids, val_ids = _encode(c, tokenizer, None, cfg.val_fraction)
    ref = _corpus_ref(c, train_ids, val_ids, tokenizer, vocab)
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
    _, train_ids, val_ids = _encode(c, saved.tokenizer, saved.vocab, cfg.val_fraction)
    run = PreparedRun(name, saved.preset, replace(saved.model), cfg, saved.tokenizer, saved.vocab,
                      _corpus_ref(c, train_ids, val_ids, saved.tokenizer, saved.vocab), train_ids, val_ids, device,
                      saved, resume_state,
                      run_start_step, run_start_elapsed)
    return _finish(run)
