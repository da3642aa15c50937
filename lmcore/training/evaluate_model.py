"""``lmcore.evaluate``: a saved model measured on a text, read-only under the model's lock (so never while
it trains): loss, perplexity and bits per character, as training measures its validation split; with
``fill``, the fill accuracy on the same fixed blanks training measures (lmcore.generation.fill_accuracy);
and the metrics of the model's task (``tasks``: :func:`task_metrics`). A model that answers pairs (an
encoder-decoder, or a decoder-only model trained on a pairs corpus, when the text is pairs) also gets its
loss per target token, BLEU and exact match, by source length too (``pairs``: lmcore/training/pairs_report.py);
an encoder-decoder's loss and perplexity are per target token.

The text: the model's own validation split (default: the numbers training reported for it), the
validation split of another corpus (``corpus``: the held-out tail training would keep of it), or a whole
file (``file``)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ConfigError
from ..generation.fill_accuracy import LEFT, MAX_BLANKS, RIGHT, FillAccuracy
from ..store.checkpoint import Checkpoint, ppl
from ..device import flushing_denormals
from .evaluation import EVAL_CAP
from .pairs_report import (PairsReport, PairsSource, decoder_only_report, encoder_decoder_report,
                           pairs_source)
from .threads import ThreadGovernor


@dataclass
class Evaluation:
    name: str
    text: str                  # what was read, in words ("the validation split of timemachine")
    tokens: int                # tokens read
    loss: float                # nats per token
    bpc: float | None          # bits per character (None: the characters are not known)
    fill: FillAccuracy | None = None
    tasks: dict = field(default_factory=dict)  # the model's task metrics: name -> number (task_metrics)
    pairs: PairsReport | None = None  # a pairs model's: loss per target token, BLEU, exact match, by length
    per_target: bool = False   # the loss is per target token (an encoder-decoder's)

    @property
    def ppl(self) -> float:
        return ppl(self.loss)

    def to_dict(self) -> dict:
        """JSON-ready (strict: an infinite perplexity is None)."""
        d = {"name": self.name, "text": self.text, "tokens": self.tokens, "loss": self.loss,
             "ppl": self.ppl if math.isfinite(self.ppl) else None, "bpc": self.bpc}
        if self.fill is not None:
            d.update(self.fill.to_dict())
        if self.pairs is not None:
            d.update(self.pairs.to_dict())
        return {**d, **self.tasks}


@dataclass
class _Text:
    ids: torch.Tensor
    chars: int                 # characters of the text (0: not known)
    what: str


def evaluate(name: str, *, corpus: str | None = None, file: str | None = None, fill: bool = False,
             blanks: int = MAX_BLANKS, store=None, home=None, device: str = "cpu",
             threads: int | None = None) -> Evaluation:
    """Measure saved model ``name`` (see the module's docstring); ``blanks``: the blanks of the fill
    accuracy (0: every 7th token of the whole text); ``threads``: the CPU threads (default: the free cores,
    as training takes them). StoreError for an unknown, damaged or training model; ConfigError for a model
    that cannot fill (with ``fill``) or a text it cannot be measured on."""
    from ..generation.fill_accuracy import blank_positions, fill_accuracy
    from ..generation.generator import load_model
    from ..store.model_store import Store
    from .evaluation import evaluate as loss_on

    if corpus is not None and file is not None:
        raise ConfigError("give a corpus or a file to evaluate on, not both")
    blank_positions(0, blanks)  # a bad count is refused before anything is read
    store = store or Store(home)
    cores = ThreadGovernor(threads)  # its first look spans the reading
    with store.lock(name):
        ck = store.read(name)
        problem = ck.model.family.cannot_fill(ck.model) if fill else None
        if problem:
            raise ConfigError(f"model '{name}' cannot fill blanks: {problem}")
        if ck.model.family.reads_pairs:
            return _encoder_decoder(store, ck, name, corpus, file, device, cores)
        source = pairs_source(store, ck, name, corpus, file) if _on_pairs(ck, corpus, file) else None
        text = _pairs_text(ck, source) if source else _text(store, ck, name, corpus, file)
        model, _, _ = load_model(store, name, ck, device)
        ids = text.ids.to(device)
        if torch.device(device).type == "cpu":
            cores.start()
        try:
            with flushing_denormals():
                loss = loss_on(model, ids, ck.train.seq_len, max_tokens=ck.train.eval_tokens or EVAL_CAP)
                if not math.isfinite(loss):
                    raise ConfigError(f"model '{name}': its loss on {text.what} is not a number (damaged weights?)")
                acc = fill_accuracy(model, ids, blanks) if fill else None
                report = decoder_only_report(model, ck, source) if source else None
        finally:
            cores.close()
        if fill and acc is None:
            raise ConfigError(f"{text.what} is too short for one blank ({len(ids):,} tokens; a blank needs {LEFT} "
                              f"before it and {RIGHT} after): fill accuracy needs more text")
        tokens = min(len(ids), (ck.train.eval_tokens or EVAL_CAP) + 1)
        return Evaluation(name, text.what, tokens, loss, _bpc(loss, ck, text), acc, task_metrics(ck, model, text),
                          report)


def _on_pairs(ck: Checkpoint, corpus: str | None, file: str | None) -> bool:
    """Whether a decoder-only model is measured as a pairs model: it was trained on a pairs corpus and the
    text is one (its own corpus, another pairs corpus, or a file that reads as pairs)."""
    from ..data import corpus as corpora
    from ..generation.generator import trained_on_pairs

    if not trained_on_pairs(ck):
        return False
    if file is not None:
        path = Path(file).expanduser()
        return path.is_file() and corpora.open_source(str(path.resolve())).pairs
    if corpus is None:
        return True
    e = corpora.entry(corpus)  # a registry corpus is not fetched to be told apart
    return bool(e.pairs) if e is not None else corpora.open_source(corpus).pairs


def _pairs_text(ck: Checkpoint, source: PairsSource) -> _Text:
    """The lines a decoder-only model reads for ``source``'s pairs (``source<TAB>target<NEWLINE>``)."""
    from ..data.pairs import pairs_lines

    lines = pairs_lines(source.pairs)
    ids = torch.tensor(ck.vocab.encode(ck.tokenizer.tokenize(lines)), dtype=torch.long)
    return _Text(ids, len(lines), source.what)


def _encoder_decoder(store, ck: Checkpoint, name: str, corpus: str | None, file: str | None, device: str,
                     cores: ThreadGovernor) -> Evaluation:
    """An encoder-decoder measured on pairs: its loss per target token and its replies' scores."""
    from ..generation.generator import load_model

    source = pairs_source(store, ck, name, corpus, file)
    model, _, _ = load_model(store, name, ck, device)
    if torch.device(device).type == "cpu":
        cores.start()
    try:
        with flushing_denormals():
            report = encoder_decoder_report(model, ck, source.pairs)
    finally:
        cores.close()
    if not math.isfinite(report.target_loss):
        raise ConfigError(f"model '{name}': its loss on {source.what} is not a number (damaged weights?)")
    return Evaluation(name, source.what, report.target_tokens, report.target_loss, None, pairs=report,
                      per_target=True)


def task_metrics(ck: Checkpoint, model, text: _Text) -> dict:
    """The metrics of the model's task beyond loss and filling, by name (JSON numbers), added to the
    evaluation's line and object: the place for a task's own measures (the translation of a pairs
    corpus: BLEU, exact match). A plain language model has none."""
    return {}


def _bpc(loss: float, ck: Checkpoint, text: _Text) -> float | None:
    if not ck.model.family.next_token_loss:  # BERT's masked-token loss is no next-token cross-entropy
        return None
    if ck.tokenizer.level == "char":
        return loss / math.log(2)
    if text.chars > 0:
        return loss / math.log(2) * len(text.ids) / text.chars
    return None


def _text(store, ck: Checkpoint, name: str, corpus: str | None, file: str | None) -> _Text:
    """The ids the model is measured on (its tokenizer and vocabulary: another text's new words read as
    <unk>)."""
    from ..data import corpus as corpora
    from ..data import token_cache

    if file is not None:
        path = Path(file).expanduser()
        if not path.is_file():
            raise ConfigError(f"no file {file!r} to evaluate on (--file takes the path of a text file)")
        src = corpora.open_source(str(path.resolve()), store.home)
    else:
        src = corpora.open_source(corpus or ck.corpus.argument(), store.home,
                                  encoding=None if corpus else ck.corpus.encoding)
    sha1 = src.sha1(token_cache.cache_dir(store.home).parent / "sha1")
    if corpus is None and file is None and sha1 != ck.corpus.sha1:
        raise ConfigError(f"corpus '{ck.corpus.name}' is not the text model '{name}' was trained on any more "
                          f"(sha1 differs): evaluate on it with --corpus or --file")
    data = token_cache.tokens_for(store.home, src, sha1, ck.tokenizer, ck.vocab, ck.train.val_fraction)
    if file is not None:
        ids = data.file.ids[: data.file.count]
        return _Text(ids, len(src.read()), f"the file {path.name}")
    what = "its validation split" if corpus is None else "the validation split"
    return _Text(data.val_ids, data.val_chars, f"{what} of {src.name}")
