"""The owner of a training run: lock → prepare → train → save, reporting through events.

``Trainer.prepare`` takes the model's lock first and keeps it until ``run`` ends (or ``close``); only then
does it look at the store, so a second process is refused before it reads or touches anything. A new
model appears in the store with its first checkpoint, never before; a failed start leaves nothing.
Every failure inside ``run`` becomes a ``failed`` event with one line; the last checkpoint stays.

A run has a budget of steps and/or minutes. Continuing a model with ``steps``/``minutes`` starts a new
run of that many *more* steps/minutes (the learning-rate schedule warms up again and decays over the
new run); continuing without them goes on with the interrupted run exactly (same schedule, data order,
RNG)."""
from __future__ import annotations

import contextlib
import copy
import math
import threading
from contextlib import ExitStack
from dataclasses import replace
from typing import Callable

import torch

from . import distributed
from .clock import RunClock
from ..data.batching import BatchStream
from .distributed import Ranks
from ..device import flushing_denormals
from ..errors import Cancelled, ConfigError, LmError, SaveError, one_line
from ..events import DoneEvent, Event, FailedEvent, StartEvent
from ..models import build_model
from .prepare import PreparedRun, Progress, prepare_continue, prepare_new
from .spec import RunSpec
from ..store.model_store import Store
from .threads import ThreadGovernor
from .config import TrainConfig
from .control import Controls
from .counting import fit_by_counting
from .job import Job
from .loop import train_by_gradients
from .saving import Saver, checkpoint_for, load_weights


class Trainer:
    """Owns one model's run. ``prepare`` (new or ``resume``) takes the lock, ``run`` trains and releases
    it. ``stop`` (an Event) ends the run cleanly after the current step, saving; ``pause`` holds it.
    ``threads`` fixes the CPU threads (default: the free cores); a spec's ``threads`` wins over it."""

    def __init__(self, store: Store, name: str, on_event: Callable[[Event], None] | None = None,
                 stop: threading.Event | None = None, threads: int | None = None):
        self.store, self.name = store, name
        self.threads = ThreadGovernor(threads)  # on the CPU: the free cores (its first look spans preparing)
        self.on_event = on_event or (lambda e: None)
        self.stop = stop or threading.Event()
        self.paused = threading.Event()
        self.prepared: PreparedRun | None = None
        self._locks = ExitStack()
        self.saver = Saver(store, name)  # writes the checkpoints; knows the last step trained and saved
        self.ranks = Ranks()  # under torchrun: this process's rank among those training the model together

    def pause(self) -> None:
        """Hold training after the current step (the clock stops too) until :meth:`resume_training`."""
        self.paused.set()

    def resume_training(self) -> None:
        self.paused.clear()

    # ------------------------------------------------------------ set-up (under the lock)
    def prepare(self, spec: RunSpec, progress: Progress | None = None) -> "Trainer":
        """Take the lock and prepare the run ``spec`` describes (a new model, or more of a saved one).
        Under torchrun (several processes, the process group started:
        :func:`lmcore.training.distributed.setup`) rank 0 does this and sends the run to the others, which
        never touch the store."""
        if spec.name != self.name:
            raise ConfigError(f"this trainer trains '{self.name}', not '{spec.name}'")
        if spec.threads is not None:  # the spec's count wins over the trainer's
            self.threads = ThreadGovernor(spec.threads)
        self.ranks = ranks = distributed.current()
        if not ranks.active:
            return self._prepare_here(spec, progress)
        if not ranks.main:
            return self._receive_prepared()
        try:
            self._prepare_here(spec, progress)
            self._for_ranks()
        except BaseException as exc:
            self.close()
            with contextlib.suppress(LmError):  # the others stop too, with rank 0's reason
                distributed.share_prepared(("cancelled" if isinstance(exc, Cancelled) else "error",
                                            str(exc) if isinstance(exc, LmError) else "process 0 failed to start"))
            raise
        r = self.prepared
        light = copy.copy(r)  # what the others need; the training ids go as raw bytes, the rest stays here
        light.train_ids = light.val_ids = r.train_ids[:0]
        light.stream = None
        if hasattr(light, "tokens"):
            light.tokens = None
        distributed.share_prepared(("prepared", light, r.train_ids.dtype, r.train_ids.numel()))
        distributed.share_tensor(r.train_ids)
        return self

    def _receive_prepared(self) -> "Trainer":
        kind, *rest = distributed.receive_prepared()
        if kind != "prepared":
            raise (Cancelled if kind == "cancelled" else distributed.PeerFailed)(rest[0])
        prepared, dtype, numel = rest
        prepared.train_ids = distributed.receive_tensor(dtype, numel)
        self.prepared = prepared
        self._for_ranks()
        return self

    def _for_ranks(self) -> None:
        """This process's part of a run shared by several: its device, its rows of every batch."""
        r, ranks = self.prepared, self.ranks
        if not r.model_cfg.family.trainable:
            raise ConfigError(f"an {r.model_cfg.arch} model is counted in one pass by one process: train it "
                              f"without torchrun")
        if r.model_cfg.family.reads_pairs:
            raise ConfigError(f"a {r.model_cfg.arch} model trains on pairs in one process: train it without torchrun")
        r.device = distributed.device_for(r.device, ranks)
        c = r.cfg
        r.stream = (replace(r.stream, rank=ranks.rank, world=ranks.world) if r.stream is not None else
                    BatchStream(r.train_ids, c.batch_size, c.seq_len, c.sampling, c.seed, rank=ranks.rank,
                                world=ranks.world))

    def _emit(self, ev: Event) -> None:
        if self.ranks.main:  # under torchrun only rank 0 reports
            self.on_event(ev)

    def _prepare_here(self, spec: RunSpec, progress: Progress | None) -> "Trainer":
        self.close()
        self._locks.enter_context(self.store.lock(self.name))
        try:
            self.store.discard_partial(self.name)  # a first save killed midway
            if spec.resume:
                self.prepared = prepare_continue(self.store, self.name, spec.train, spec.corpus, spec.encoding,
                                                 progress, self.stop)
            else:  # a copy: preparing sets its vocabulary size, the spec stays as given
                self.prepared = prepare_new(self.store, self.name, replace(spec.model), spec.preset, spec.train,
                                            spec.corpus, spec.tokenizer, spec.encoding, progress, self.stop,
                                            dict(spec.given))
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Release the model's lock (``run`` does this when it ends)."""
        self._locks.close()
        self._locks = ExitStack()

    # what callers (the bench, the app) read of the prepared run
    model_cfg = property(lambda self: self.prepared.model_cfg)
    cfg = property(lambda self: self.prepared.cfg)
    vocab = property(lambda self: self.prepared.vocab)
    tokenizer = property(lambda self: self.prepared.tokenizer)
    train_ids = property(lambda self: self.prepared.train_ids)
    val_ids = property(lambda self: self.prepared.val_ids)

    # ------------------------------------------------------------ the run
    def run(self) -> DoneEvent | FailedEvent:
        if self.prepared is None:
            raise LmError("prepare the trainer before running it")
        try:
            with flushing_denormals():  # in the thread that trains (the app trains in a worker thread)
                if self.prepared.device.type == "cpu":
                    self.threads.start()
                return self._run()
        except torch.cuda.OutOfMemoryError:
            msg = "the GPU ran out of memory: use a smaller --batch, --seq-len or preset"
        except SaveError as exc:  # a save failed (full disk, unwritable folder): the previous one stays
            msg = f"{exc}: training stopped. Free some space, then continue with --resume"
        except LmError as exc:
            msg = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported as one line; the last checkpoint stays
            msg = f"training failed: {one_line(exc)}"
        finally:
            self.threads.close()
            self.close()
        ev = FailedEvent(msg + self.saver.kept(self.prepared), self.saver.step)
        self._emit(ev)
        return ev

    @property
    def saved_step(self) -> int | None:
        """The step of the last checkpoint this run saved."""
        return self.saver.saved_step

    def _run(self) -> DoneEvent | FailedEvent:
        r, emit = self.prepared, self._emit
        cfg, device = r.cfg, r.device
        torch.manual_seed(cfg.seed)
        model = build_model(r.model_cfg)
        model.read_vocab(r.vocab.idx_to_token)
        rs = r.resume_state
        if rs:
            load_weights(model, rs, self.name)
        model.to(device)
        ck = checkpoint_for(r, model.num_params(), r.unigram if self.ranks.main else math.nan, self.ranks)
        step0 = r.step0
        self.saver.step = step0
        clock = RunClock(float(rs.get("elapsed", ck.elapsed)) if rs else 0.0, r.run_start_elapsed)
        use_amp = cfg.amp and device.type == "cuda"
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
        controls = Controls(self.stop, self.paused, self.ranks, clock, cfg, r.run_start_step)
        target = controls.target
        emit(StartEvent(self.name, r.model_cfg.arch, r.model_cfg.get("impl", "fused"), ck.params, ck.device, step0,
                        target, cfg.minutes, len(r.train_ids), len(r.val_ids), len(r.vocab), ck.unigram_val_loss,
                        self.threads.note if device.type == "cpu" else "",
                        r.model_cfg.family.describe(r.model_cfg), r.auto_note))
        job = Job(r, model, ck, clock, autocast, self.saver, controls, self.threads, self.ranks, emit)
        if not model.trainable:
            return fit_by_counting(job, stopped_before_start())
        return train_by_gradients(job)


def train(name: str, *, arch: str | None = None, preset: str | None = None, corpus: str | None = None,
          prep: str | None = None, tokens: str | None = None, store: Store | None = None, home=None,
          on_event: Callable[[Event], None] | None = None, stop: threading.Event | None = None,
          resume: bool = False, encoding: str | None = None, model_overrides: dict | None = None,
          vocab_size: int | None = None, threads: int | None = None, **train_options) -> DoneEvent | FailedEvent:
    """Train model ``name`` (a new one reads ``corpus``, default pythondocs), or with ``resume`` continue
    it: ``steps`` / ``minutes`` then mean that many more. ``arch``, ``preset``, ``tokens`` and ``prep``
    default as RunSpec.new says (an lstm, auto, characters, raw text); ``model_overrides`` change the
    preset's model hyper-parameters (e.g. ``{"hidden": 128}``); ``vocab_size`` is the size of a
    ``tokens="bpe"`` vocabulary; other keywords are TrainConfig fields. ``threads`` fixes the CPU threads
    (default: the free cores). The run is the RunSpec these make, prepared as Trainer.prepare does."""
    cfg = TrainConfig(**train_options)
    if resume:
        spec = RunSpec.continued(name, corpus=corpus, encoding=encoding, train=cfg, threads=threads)
    else:
        spec = RunSpec.new(name, corpus or "pythondocs", arch=arch, preset=preset, options=model_overrides,
                           tokens=tokens, prep=prep, vocab_size=vocab_size, encoding=encoding, train=cfg,
                           threads=threads)
    trainer = Trainer(store or Store(home), name, on_event, stop)
    try:
        trainer.prepare(spec)
    except Cancelled:
        return stopped_before_start(on_event)
    return trainer.run()


def stopped_before_start(on_event: Callable[[Event], None] | None = None) -> DoneEvent:
    """The outcome of a run stopped while it was being prepared (tokenizing a corpus): nothing saved."""
    done = DoneEvent("stopped", 0, math.inf, math.inf, 0.0, 0.0, steps_trained=0, saved=False)
    if on_event:
        on_event(done)
    return done
