"""What the app's screens and widgets use of lmcore, in one object the app owns (``app.core``): the store,
the settings, the live training runs and the generators, and the news that changes what they show.

News travels as Textual messages (``messages.News``): the run registry posts a run's to the app, which
handles what is the app's (notifications, a failed start) and ``announce``s it; every screen or widget
that ``follow``s the news gets a copy and handles what concerns it (the panel of model X, X's events; the
picker, every run's progress). ``quitting`` is a signal: what runs in a screen (a generation, a scoring)
stops at once when the app quits, before the app waits for the workers."""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from textual.dom import DOMNode
from textual.signal import Signal

import lmcore

from .keys import key_label
from lmcore import LmError, SamplingSettings, Settings, Store

from .messages import News
from .runs import RunRegistry


@dataclass
class Loaded:
    """A saved model that does not generate, loaded to read a text (fill its blanks, trace its units)."""
    model: object
    vocab: object
    tokenizer: object
    device: str


class Core:
    def __init__(self, app, home, trainer_factory: Callable[..., lmcore.Trainer] | None = None,
                 generator_factory: Callable[..., lmcore.Generator] | None = None) -> None:
        self.store = Store(home)
        self.settings = Settings(self.store.home)
        self.runs = RunRegistry(app, lambda name, on_event, stop: (trainer_factory or lmcore.Trainer)(
            self.store, name, on_event, stop),  # lmcore.Trainer imports torch: on the first run, not here
            threads=self.cpu_threads)
        self.quitting: Signal[None] = Signal(app, "quitting")
        self._news: Signal[News] = Signal(app, "news")
        self._notify = app.notify
        self._generator_factory = generator_factory or (lambda store, name: lmcore.Generator.from_store(store, name))
        self._generators: dict[str, tuple[str, lmcore.Generator]] = {}
        self._loaded: dict[str, tuple[str, Loaded]] = {}  # models that do not generate, loaded to read
        self._settings_warned = False
        self._threads_warned = False

    # ------------------------------------------------------------ news
    def follow(self, node: DOMNode) -> None:
        """``node`` (mounted) receives a copy of every announced message until it is removed."""
        self._news.subscribe(node, lambda message: node.post_message(message.copy()), immediate=True)

    def announce(self, message: News) -> None:
        """Tell every follower; nothing once the app is shutting down (its screens are being removed)."""
        self._news.publish(message)

    # ------------------------------------------------------------ settings
    def remember(self, key: str, value) -> None:
        """Save a setting; a folder that cannot be written gives one notification, not a crash."""
        try:
            self.settings.set(key, value)
        except LmError as exc:
            if not self._settings_warned:
                self._settings_warned = True
                self._notify(f"{exc}. Settings are kept for this session only.", title="Settings",
                             severity="warning", timeout=10)

    def generation_defaults(self) -> SamplingSettings:
        """The remembered generation settings, or the defaults where they are not valid."""
        saved = self.settings.get("generation", {})
        known = SamplingSettings().to_dict()
        values = {("max_tokens" if k == "length" else k): v for k, v in saved.items()}
        try:
            return SamplingSettings(**{k: v for k, v in values.items() if k in known}).validate()
        except (LmError, TypeError) as exc:
            self._notify(f"Remembered generation settings are not valid ({exc}): the defaults apply.",
                         title="Settings", severity="warning")
            return SamplingSettings()

    def save_generation_settings(self, s: SamplingSettings) -> None:
        keep = {k: v for k, v in s.to_dict().items() if k not in ("stop", "max_tokens")}
        keep["length"] = s.max_tokens
        self.remember("generation", keep)

    def cpu_threads(self) -> int | None:
        """The remembered CPU threads of every run the app starts: None (auto: the cores other programs
        leave free) or a whole number from 1 to the machine's cores. Any other stored value is auto, with
        one notification."""
        value = self.settings.get("cpu_threads")
        if value is None or value == "auto":
            return None
        if type(value) is int and 1 <= value <= cpu_cores():
            return value
        if not self._threads_warned:
            self._threads_warned = True
            self._notify(f"The remembered CPU threads ({str(value)[:20]!r}) are not auto or a whole number from 1 "
                         f"to {cpu_cores()}: auto applies.", title="Settings", severity="warning")
        return None

    def set_cpu_threads(self, threads: int | None) -> None:
        """Remember the CPU threads of the runs started from now on (None: auto)."""
        self._threads_warned = False
        self.remember("cpu_threads", "auto" if threads is None else threads)

    # ------------------------------------------------------------ the store
    def model_exists(self, name: str) -> bool:
        """Whether a usable checkpoint of ``name`` is saved."""
        return self.model_checkpoint(name) is not None

    def model_checkpoint(self, name: str) -> lmcore.Checkpoint | None:
        try:
            return self.store.read(name)
        except LmError:
            return None

    def budgets(self, names: list[str]) -> tuple[dict[str, lmcore.Budget], str | None]:
        """Each readable model's training budget (time, tokens seen, parameters), and the line warning
        that they differ by more than 2x (None when they do not)."""
        out = {}
        for name in names:
            if (ck := self.model_checkpoint(name)) is not None:
                out[name] = lmcore.model_budget(ck, name)
        return out, lmcore.budgets_differ(list(out.values()))

    def list_models(self) -> list[lmcore.ModelEntry]:
        """The store's models; a data folder that cannot be read gives a notification and none."""
        try:
            return self.store.list()
        except LmError as exc:
            self._notify(str(exc), title="Data folder", severity="error", timeout=10)
            return []

    def taken_names(self) -> set[str]:
        """The names a new or renamed model cannot have: the saved ones and the runs not saved yet."""
        return {e.name for e in self.list_models()} | set(self.runs.runs)

    def baselines(self, ck: lmcore.Checkpoint) -> dict[str, float]:
        """Reference perplexities for a model's chart: the unigram floor and the best counted model (the
        n-gram) of the store trained on the same text with the same tokens (what a neural model must beat)."""
        refs = {}
        if ck.unigram_val_loss is not None:
            refs["unigram"] = math.exp(min(ck.unigram_val_loss, 50))
        counted = [e.checkpoint for e in self.list_models() if e.ok and not e.checkpoint.model.family.trainable
                   and e.checkpoint.corpus.sha1 == ck.corpus.sha1 and e.checkpoint.tokenizer == ck.tokenizer
                   and e.checkpoint.best_val_ppl and e.name != ck.name]
        if counted:
            best = min(counted, key=lambda c: c.best_val_loss)
            order = getattr(best.model, "order", None)
            refs[f"{order}-gram" if order else best.model.family.describe(best.model)] = best.best_val_ppl
        return refs

    # ------------------------------------------------------------ a new model's choices
    def default_spec(self) -> lmcore.RunSpec:
        """The new-model dialog's first choices: the remembered architecture, size and corpus."""
        d = self.settings.get("default_model", {})
        defaults = self.settings.defaults["default_model"]
        if d.get("arch") not in lmcore.models.ARCHS or d.get("preset") not in (*lmcore.models.PRESET_NAMES, "auto"):
            d = dict(d, arch=defaults["arch"], preset=defaults["preset"])
        corpus = d.get("corpus", "timemachine")
        entry = lmcore.corpus_entry(corpus)
        if entry is None or lmcore.corpus_status(entry, self.store.home) == "needs download":
            if not self._mirror_has(corpus):
                corpus = d.get("fallback_corpus", "pythondocs")
        arch = d["arch"]
        try:
            return lmcore.RunSpec.new(self._free_name(f"{arch}-{corpus}"), corpus, arch=arch, preset=d.get("preset"))
        except LmError:  # a remembered corpus that cannot name a model (a path): the built-in choices
            corpus = defaults["fallback_corpus"]
            return lmcore.RunSpec.new(self._free_name(f"{defaults['arch']}-{corpus}"), corpus, arch=defaults["arch"],
                                      preset=defaults["preset"])

    def _free_name(self, base: str) -> str:
        """``base``, or ``base-2``, ``base-3``…: the first name no model and no run has."""
        taken = self.taken_names()
        name, i = base, 2
        while name in taken:
            name, i = f"{base}-{i}", i + 1
        return name

    @staticmethod
    def _mirror_has(corpus: str) -> bool:
        m = os.environ.get(lmcore.CORPUS_MIRROR_ENV, "")
        return bool(m) and not re.match(r"^https?://", m) and (Path(m).expanduser() / f"{corpus}.txt").is_file()

    def corpus_choices(self) -> list[tuple[str, str]]:
        return [(f"{e.name} ({lmcore.corpus_status(e, self.store.home)})", e.name) for e in lmcore.corpus_registry()]

    def why_no_checkpoint(self, name: str, new: bool) -> str:
        """What to tell a user who wants to use a model shown on screen that has no usable checkpoint:
        ``new``, one not trained yet; else it is damaged, or was deleted or renamed elsewhere."""
        try:
            self.store.read(name)
        except LmError as exc:
            if self.store.exists(name):
                return f"{exc}. Back to the models (ctrl+b): delete it (d) or train a new one (n)."
        if self.runs.is_running(name):
            return "This model has no saved checkpoint yet: it saves one at its first evaluation (Train tab)."
        if new:
            return "This model has no saved checkpoint yet: train it first (Train tab)."
        return (f"'{name}' is no longer saved: it was deleted or renamed outside this screen (e.g. lmcore "
                f"models rm). Back to the models: ctrl+b.")

    # ------------------------------------------------------------ generation
    def get_generator(self, name: str) -> lmcore.Generator:
        """A generator for the model's best checkpoint, reloaded when the checkpoint changed."""
        ck = self.store.read(name)
        stamp = f"{ck.updated}:{ck.files.weights}"
        cached = self._generators.get(name)
        if cached and cached[0] == stamp:
            return cached[1]
        if not ck.model.family.can_generate(ck.model) and self.why_cannot_fill(name) is None:
            problem = ck.model.family.cannot_generate(ck.model)
            raise lmcore.ConfigError(f"{problem}. Here: the Fill tab ({key_label('f10')}) fills its blanks.")
        gen = self._generator_factory(self.store, name)
        self._generators[name] = (stamp, gen)
        return gen

    def get_reader(self, name: str):
        """What reads a text with the model's best checkpoint: its generator when it generates, else its
        weights loaded once per checkpoint (``model``, ``vocab``, ``tokenizer``, ``device``; a birnn)."""
        ck = self.store.read(name)
        if ck.model.family.can_generate(ck.model):
            return self.get_generator(name)
        stamp = f"{ck.updated}:{ck.files.weights}"
        cached = self._loaded.get(name)
        if cached and cached[0] == stamp:
            return cached[1]
        model, vocab, tokenizer = lmcore.load_model(self.store, name, ck)
        reader = Loaded(model, vocab, tokenizer, "cpu")
        self._loaded[name] = (stamp, reader)
        return reader

    def why_cannot_fill(self, name: str, new: bool = False) -> str | None:
        """Why the model cannot fill blanks now (no usable checkpoint: :meth:`why_no_checkpoint`; its
        family cannot), or None."""
        ck = self.model_checkpoint(name)
        if ck is None:
            return self.why_no_checkpoint(name, new)
        problem = ck.model.family.cannot_fill(ck.model)
        return f"This model cannot fill blanks: {problem}" if problem else None

    def fill(self, name: str, text: str, top: int = 5) -> lmcore.FillResult:
        """Fill the blanks of ``text`` (``_`` each) with the model's best checkpoint (LmError: one line)."""
        problem = self.why_cannot_fill(name)
        if problem:
            raise lmcore.ConfigError(problem)
        reader = self.get_reader(name)
        return lmcore.fill_blanks(reader.model, reader.vocab, reader.tokenizer, text, top)

    def forget(self, name: str) -> None:
        """The model was deleted or renamed: its generator goes."""
        self._generators.pop(name, None)
        self._loaded.pop(name, None)


def cpu_cores() -> int:
    """The most CPU threads a run can be given here: the machine's cores."""
    return os.cpu_count() or 1
