"""Preparing a run: everything checked and loaded before the first step, so that a bad option, a
missing GPU or a text too short for one batch fails here, with one line, before anything is saved.

``prepare_new`` starts a model; ``prepare_continue`` reads a saved one and continues it. The caller (the
Trainer) holds the model's lock while either runs."""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..data import corpus as corpora
from ..data import token_cache
from ..data.pairs import SPLIT_SEED, PairsSplit, pairs_lines
from ..store.checkpoint import Checkpoint, CorpusRef
from ..data.batching import BatchStream
from .evaluation import EVAL_CAP, unigram_loss
from ..device import pick_device
from ..errors import ConfigError, StoreError
from ..models import ModelConfig, preset_config
from ..models.family import AUTO
from ..store.model_store import Store
from ..data.text import Tokenizer
from ..data.token_cache import TokenData
from ..data.pair_batches import PairData, PairStream, pair_data
from .config import TrainConfig
from ..data.vocab import Vocab


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
    tokens: TokenData | None = None     # the ids the splits are views of (token_cache.TokenFile)
    auto_note: str = ""                 # preset auto: what it chose and why, in one line
    pairs: PairData | None = None       # a pairs model's training and validation pairs (reads_pairs)
    lm_pairs: PairsSplit | None = None  # a decoder-only model on a pairs corpus: its pairs (replies scored)

    @property
    def unigram(self) -> float:
        """The add-one unigram's validation loss: the floor any model must beat."""
        return self.tokens.unigram if self.tokens else unigram_loss(self.train_ids, self.val_ids, len(self.vocab))

    @property
    def step0(self) -> int:
        return int(self.resume_state["step"]) if self.resume_state else 0


Progress = Callable[[str, int, int | None], None]  # (what, done, total): downloading, tokenizing…


def _tokens(store: Store, src: corpora.TextSource, sha1: str, tok: Tokenizer, vocab: Vocab | None,
            val_fraction: float, progress: Progress | None, stop) -> TokenData:
    """The corpus as ids, from the token cache (tokenized there first when needed)."""
    return token_cache.tokens_for(store.home, src, sha1, tok, vocab, val_fraction, progress, stop)


def _finish(run: PreparedRun, source: corpora.TextSource) -> PreparedRun:
    """Checks that need the data: the model fits the vocabulary, one batch fits the text."""
    mc = run.model_cfg
    if mc.family.special_tokens:  # after the text's tokens: the ids of the text stay as the cache has them
        try:
            run.vocab = run.vocab.with_tokens(mc.family.special_tokens)
        except ValueError as exc:
            raise ConfigError(f"{exc}: a {mc.arch} model cannot be trained on this text") from None
    mc.vocab_size = len(run.vocab)
    mc.validate()
    cfg, window = run.cfg, mc.family.window(mc)
    if window is not None and cfg.seq_len > window:
        raise ConfigError(f"the sequence length ({cfg.seq_len}) is larger than the {mc.arch}'s context "
                          f"({window}): use --context {cfg.seq_len} or --seq-len {window}")
    if mc.family.reads_pairs:
        return _pairs(run, source)
    if mc.family.trainable:
        run.stream = BatchStream(run.train_ids, cfg.batch_size, cfg.seq_len, cfg.sampling, cfg.seed,
                                 trim=run.tokens.file.trim if run.tokens else None)
    return run


def _eval_tokens(cfg: TrainConfig, data: TokenData) -> int:
    """The validation tokens each evaluation of a run reads."""
    return min(len(data.val_ids), cfg.eval_tokens or EVAL_CAP)


def _pairs(run: PreparedRun, source: corpora.TextSource) -> PreparedRun:
    """A pairs model's data: the corpus's pairs split (the fixed shuffle), encoded, in batches bucketed by
    length; a note (one line, beside the auto preset's) for lines skipped and sources cut."""
    from ..models.encdec import special_ids

    mc, cfg = run.model_cfg, run.cfg  # any text: its lines without a tab are skipped (a note), none is an error
    data = pair_data(source.read(), run.tokenizer, run.vocab, int(mc.max_len), cfg.val_fraction,
                     f"corpus '{source.name}'")
    bos, eos = special_ids(run.vocab, run.tokenizer)
    run.pairs, run.train_ids, run.val_ids = data, data.train.ids, data.valid.ids
    run.corpus = replace(run.corpus, pairs_seed=data.seed, train_tokens=len(data.train.ids),
                         val_tokens=len(data.valid.ids))
    run.auto_note = "; ".join(n for n in (run.auto_note, data.note) if n)
    # a batch's tokens are its pairs' (source, target and eos): tokens/s counts them through seq_len
    spans = data.train.spans
    run.cfg = cfg = replace(cfg, seq_len=max(1, round(float((spans[:, 1] + spans[:, 3] + 1).float().mean()))))
    run.stream = PairStream(data.train.ids, data.train.spans, cfg.batch_size, bos, eos, cfg.seed)
    return run


def _corpus_ref(src: corpora.TextSource, sha1: str, data: TokenData, pairs_seed: int | None = None) -> CorpusRef:
    return CorpusRef(name=src.name, sha1=sha1, source=src.source, train_tokens=len(data.train_ids),
                     val_tokens=len(data.val_ids), val_chars=data.val_chars,
                     encoding=None if src.codec == "utf-8" else src.codec, pairs_seed=pairs_seed)


def _decoder_pairs(src: corpora.TextSource, sha1: str, family, seed: int | None, tok: Tokenizer
                   ) -> tuple[corpora.TextSource, str, PairsSplit | None, str]:
    """A decoder-only model on a pairs corpus (``seed``: its split's, None when it is not one) reads each
    pair as one ``source<TAB>target<NEWLINE>`` line, the validation pairs last: that text, its key in the
    token cache, the split, and the note on skipped lines. Other models and corpora: as they are."""
    if seed is None or family.reads_pairs:
        return src, sha1, None, ""
    if tok.prep == "d2l":
        raise ConfigError(f"corpus '{src.name}' is a pairs corpus: the d2l clean-up would drop the tab and the "
                          f"line breaks that hold its pairs apart; use --prep raw")
    if tok.level == "word":
        raise ConfigError(f"corpus '{src.name}' is a pairs corpus: word tokens drop the tab between a pair's "
                          f"source and target; use --tokens char or bpe (an encoder-decoder reads each side's words)")
    lines, read, split = corpora.pairs_lines_source(src, sha1, seed)
    return lines, f"{sha1}+pairs-lines-{split.seed}", split, read.note or ""


def _pairs_tail(data: TokenData, split: PairsSplit | None) -> TokenData:
    """A decoder-only model on pairs holds out exactly the lines of its validation pairs (the token
    cache's split is a fraction of the tokens, which may cut a pair in two)."""
    if split is None:
        return data
    valid = pairs_lines(split.valid)
    n_val = len(data.tokenizer.tokenize(valid))
    if not 0 < n_val < data.file.count:
        raise ConfigError("the validation pairs do not fit in the corpus's tokens: use a larger pairs corpus")
    return replace(data, val_tokens=n_val, val_chars=len(valid))


def _downloading(progress: Progress | None):
    return (lambda done, total: progress("downloading", done, total)) if progress else None


def _sha1(store: Store, src: corpora.TextSource) -> str:
    return src.sha1(token_cache.cache_dir(store.home).parent / "sha1")


def prepare_new(store: Store, name: str, model_cfg: ModelConfig, preset: str, given: TrainConfig,
                corpus: str, tokenizer: Tokenizer, encoding: str | None = None,
                progress: Progress | None = None, stop: threading.Event | None = None,
                given_options: dict | None = None) -> PreparedRun:
    """A new model; preset "auto" chooses its size and recipe once the corpus is read (``given_options``:
    the model options the user gave, kept)."""
    if store.exists(name):
        raise StoreError(f"a model named '{name}' exists already: continue it with --resume, "
                          f"pick another name, or delete it (lmcore models rm {name})")
    model_cfg.validate()
    cfg = given.resolved(model_cfg.arch, preset, model_cfg.family.stateful)
    device = pick_device(cfg.device)
    src = corpora.open_source(corpus, store.home, encoding=encoding, progress=_downloading(progress))
    sha1 = _sha1(store, src)
    src, key, split, pairs_note = _decoder_pairs(src, sha1, model_cfg.family, SPLIT_SEED if src.pairs else None,
                                                 tokenizer)
    data = _pairs_tail(_tokens(store, src, key, tokenizer, None, cfg.val_fraction, progress, stop), split)
    note = ""
    if preset == AUTO:
        model_cfg, cfg, note = _auto(store, model_cfg, given, cfg, data, device, src.name, given_options or {},
                                     stop, progress)
    ref = _corpus_ref(src, sha1, data, split.seed if split else None)
    return _finish(PreparedRun(name, preset, model_cfg, cfg, data.tokenizer, data.vocab, ref, data.train_ids,
                               data.val_ids, device, tokens=data, lm_pairs=split,
                               auto_note="; ".join(n for n in (note, pairs_note) if n)), src)


def _auto(store: Store, mc: ModelConfig, given: TrainConfig, cfg: TrainConfig, data: TokenData,
          device: torch.device, corpus_name: str, options: dict, stop: threading.Event | None = None,
          progress: Progress | None = None) -> tuple[ModelConfig, TrainConfig, str]:
    """Preset auto: the size and recipe for this corpus and budget (auto_preset.py), what was given kept;
    ``stop`` cancels the calibration (Cancelled), ``progress`` hears of each size measured."""
    from . import auto_preset

    fam, vocab = mc.family, len(data.vocab)
    if fam.reads_pairs:  # the sizes are chosen for text (tokens, calibrated rates): pairs models take small
        return (preset_config(mc.arch, auto_preset.BASE_PRESET, **options), cfg,
                f"preset auto: {fam.describe(mc)} reads pairs and takes the {auto_preset.BASE_PRESET} preset")
    steps, minutes, budget, cap, why = cfg.steps, cfg.minutes, {}, None, ""
    if fam.trainable and given.steps is None and given.minutes is None:  # none given: a few minutes
        steps, minutes, cap = None, auto_preset.DEFAULT_MINUTES, auto_preset.DEFAULT_MAX_EPOCHS
        budget = {"steps": None, "minutes": minutes}
        why = f"no budget given, so {minutes:g} min or {cap:g} epochs, whichever ends first: "
    rate, keeps, failed = None, None, []
    if minutes is not None and fam.trainable:
        from .calibrate import keeps_for, rate_for
        measured = rate_for(store.home, mc.arch, vocab, device, options, stop, progress)
        kept = keeps_for(store.home, mc.arch, vocab, device, options, stop, progress)

        def rate(params: int, size: dict) -> float:  # a size that cannot be measured (out of memory) is skipped
            try:
                return measured(params, size)
            except (RuntimeError, ValueError) as exc:
                failed.append(exc)
                return 0.0

        def keeps(params: int, size: dict, half: dict) -> float:  # ... and a batch that cannot is not halved
            try:
                return kept(params, size, half)
            except (RuntimeError, ValueError):
                return 0.0
    choice = auto_preset.choose(mc.arch, vocab, len(data.train_ids), steps=steps, minutes=minutes,
                                rate=rate, corpus=corpus_name, given=options, max_epochs=cap, why=why,
                                accelerator=device.type != "cpu", keeps=keeps, val_tokens=_eval_tokens(cfg, data))
    if failed and not choice.tokens:  # not even the size chosen: the smallest, and the line says why
        why += f"this device's speed could not be measured ({type(failed[-1]).__name__}), so the smallest size: "
        choice = auto_preset.choose(mc.arch, vocab, len(data.train_ids), steps=steps, minutes=minutes,
                                    rate=None, corpus=corpus_name, given=options, max_epochs=cap, why=why)
    model_cfg = preset_config(mc.arch, auto_preset.BASE_PRESET, **{**choice.model, **options})
    train = TrainConfig(**{**budget, **choice.train, **given.given()}).resolved(mc.arch, AUTO, fam.stateful)
    kept = {k: v for k, v in given.given().items() if k in choice.train and choice.train[k] != v}
    line = choice.line + ("; given, kept over the rule: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" if isinstance(v, float)
                                                               else f"{k.replace('_', ' ')} {v}" for k, v in kept.items())
                          if kept else "")
    return model_cfg, train, line


def prepare_continue(store: Store, name: str, given: TrainConfig, corpus: str | None = None,
                     encoding: str | None = None, progress: Progress | None = None,
                     stop: threading.Event | None = None) -> PreparedRun:
    """Continue model ``name``. With ``given.steps`` / ``given.minutes``, a new run of that many more steps
    or minutes starts at the saved step; without, the saved run goes on where it stopped (refused when
    it had finished: there is nothing left of it)."""
    saved = store.read(name)
    fam = saved.model.family
    if not fam.trainable:
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
    cfg = cfg.validate(fam.stateful)
    device = pick_device(cfg.device)
    resume_state = store.load_resume(name, saved)
    if resume_state is None:
        raise ConfigError(f"model '{name}' has no resume state saved: it cannot be continued")
    src = corpus or saved.corpus.argument()
    text = corpora.open_source(src, store.home, encoding=encoding or saved.corpus.encoding,  # as trained
                               progress=_downloading(progress))
    sha1 = _sha1(store, text)
    if sha1 != saved.corpus.sha1:
        raise ConfigError(f"corpus '{src}' is not the text model '{name}' was trained on (sha1 differs): "
                          f"continue with the same text (--corpus PATH if it moved), or train a new model")
    text, key, split, _ = _decoder_pairs(text, sha1, fam, saved.corpus.pairs_seed, saved.tokenizer)
    data = _pairs_tail(_tokens(store, text, key, saved.tokenizer, saved.vocab, cfg.val_fraction, progress, stop),
                       split)
    run = PreparedRun(name, saved.preset, replace(saved.model), cfg, saved.tokenizer, saved.vocab,
                      _corpus_ref(text, sha1, data, split.seed if split else None), data.train_ids, data.val_ids, device,
                      saved, resume_state, run_start_step, run_start_elapsed, tokens=data, lm_pairs=split)
    return _finish(run, text)
