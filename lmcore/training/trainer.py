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
import os
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from typing import Callable

import torch
import torch.nn.functional as F

from . import distributed
from ..store.checkpoint import Checkpoint, EvalPoint, ppl
from .clock import RunClock
from ..data.batching import BatchStream
from .distributed import Ranks
from ..device import describe, flushing_denormals
from ..errors import Cancelled, ConfigError, LmError, SaveError, StoreError
from .evaluation import evaluate, sample_text
from ..events import DoneEvent, EvalEvent, Event, FailedEvent, StartEvent, StepEvent
from ..models import LanguageModel, ModelConfig, build_model, model_class
from .prepare import PreparedRun, Progress, prepare_continue, prepare_new
from ..store.model_store import Store, clean_state_keys
from ..data.text import Tokenizer
from .threads import ThreadGovernor
from .config import TrainConfig


#: the batch dimension of a recurrent model's state: (layers, batch, hidden), or a tuple of such tensors
STATE_BATCH_DIM = 1


def _state_to(state, device):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return tuple(s.to(device) for s in state)


EVAL_CAP = 1_000_000  # validation tokens read at each evaluation unless --eval-tokens says otherwise


def lr_at(cfg: TrainConfig, step_in_run: int, progress: float) -> float:
    """Linear warm-up over the run's first steps, then cosine decay to ``min_lr_ratio`` of the peak."""
    warm = cfg.warmup if cfg.warmup is not None else min(100, max(1, (cfg.steps or 2000) // 20))
    if step_in_run < warm:
        return cfg.lr * (step_in_run + 1) / warm
    if cfg.schedule == "constant":
        return cfg.lr
    p = min(1.0, max(0.0, progress))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def make_optimizer(model: LanguageModel, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.99), **extra)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())  # every line of it, on one
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class Trainer:
    """Owns one model's run. ``prepare`` (new or ``resume``) takes the lock, ``run`` trains and releases
    it. ``stop`` (an Event) ends the run cleanly after the current step, saving; ``pause`` holds it."""

    def __init__(self, store: Store, name: str, on_event: Callable[[Event], None] | None = None,
                 stop: threading.Event | None = None, threads: int | None = None):
        self.store, self.name = store, name
        self.threads = ThreadGovernor(threads)  # on the CPU: the free cores (its first look spans preparing)
        self.on_event = on_event or (lambda e: None)
        self.stop = stop or threading.Event()
        self.paused = threading.Event()
        self.run_: PreparedRun | None = None
        self._locks = ExitStack()
        self._step = 0
        self.saved_step: int | None = None  # the step of the last checkpoint this run saved
        self.ranks = Ranks()  # under torchrun: this process's rank among those training the model together

    def pause(self) -> None:
        """Hold training after the current step (the clock stops too) until :meth:`resume_training`."""
        self.paused.set()

    def resume_training(self) -> None:
        self.paused.clear()

    # ------------------------------------------------------------ set-up (under the lock)
    def prepare(self, *, model: ModelConfig | None = None, preset: str = "small",
                train: TrainConfig | None = None, corpus: str | None = None,
                tokenizer: Tokenizer | None = None, resume: bool = False, encoding: str | None = None,
                progress: Progress | None = None) -> "Trainer":
        """Take the lock and prepare the run. Under torchrun (several processes, the process group
        started: :func:`lmcore.training.distributed.setup`) rank 0 does this and sends the run to the others, which
        never touch the store."""
        self.ranks = ranks = distributed.current()
        kw = dict(model=model, preset=preset, train=train, corpus=corpus, tokenizer=tokenizer, resume=resume,
                  encoding=encoding, progress=progress)
        if not ranks.active:
            return self._prepare_here(**kw)
        if not ranks.main:
            return self._receive_run()
        try:
            self._prepare_here(**kw)
            self._for_ranks()
        except BaseException as exc:
            self.close()
            with contextlib.suppress(LmError):  # the others stop too, with rank 0's reason
                distributed.share_prepared(("cancelled" if isinstance(exc, Cancelled) else "error",
                                            str(exc) if isinstance(exc, LmError) else "process 0 failed to start"))
            raise
        r = self.run_
        light = copy.copy(r)  # what the others need; the training ids go as raw bytes, the rest stays here
        light.train_ids = light.val_ids = r.train_ids[:0]
        light.stream = None
        if hasattr(light, "tokens"):
            light.tokens = None
        distributed.share_prepared(("run", light, r.train_ids.dtype, r.train_ids.numel()))
        distributed.share_tensor(r.train_ids)
        return self

    def _receive_run(self) -> "Trainer":
        kind, *rest = distributed.receive_prepared()
        if kind != "run":
            raise (Cancelled if kind == "cancelled" else distributed.PeerFailed)(rest[0])
        run, dtype, numel = rest
        run.train_ids = distributed.receive_tensor(dtype, numel)
        self.run_ = run
        self._for_ranks()
        return self

    def _for_ranks(self) -> None:
        """This process's part of a run shared by several: its device, its rows of every batch."""
        r, ranks = self.run_, self.ranks
        if not model_class(r.model_cfg.arch).trainable:
            raise ConfigError(f"an {r.model_cfg.arch} model is counted in one pass by one process: train it "
                              f"without torchrun")
        r.device = distributed.device_for(r.device, ranks)
        c = r.cfg
        r.stream = (replace(r.stream, rank=ranks.rank, world=ranks.world) if r.stream is not None else
                    BatchStream(r.train_ids, c.batch_size, c.seq_len, c.sampling, c.seed, rank=ranks.rank,
                                world=ranks.world))

    def _emit(self, ev: Event) -> None:
        if self.ranks.main:  # under torchrun only rank 0 reports
            self.on_event(ev)

    def _prepare_here(self, *, model: ModelConfig | None = None, preset: str = "small",
                      train: TrainConfig | None = None, corpus: str | None = None,
                      tokenizer: Tokenizer | None = None, resume: bool = False, encoding: str | None = None,
                      progress: Progress | None = None) -> "Trainer":
        self.store.path(self.name)  # validates the name
        self.close()
        self._locks.enter_context(self.store.lock(self.name))
        try:
            self.store.discard_partial(self.name)  # a first save killed midway
            given = train or TrainConfig()
            if resume:
                self.run_ = prepare_continue(self.store, self.name, given, corpus, encoding, progress, self.stop)
            else:
                if model is None or corpus is None:
                    raise ConfigError("a new model needs an architecture and a corpus")
                self.run_ = prepare_new(self.store, self.name, model, preset, given, corpus,
                                        tokenizer or Tokenizer(), encoding, progress, self.stop)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        """Release the model's lock (``run`` does this when it ends)."""
        self._locks.close()
        self._locks = ExitStack()

    # what callers (the bench, the app) read of the prepared run
    model_cfg = property(lambda self: self.run_.model_cfg)
    cfg = property(lambda self: self.run_.cfg)
    vocab = property(lambda self: self.run_.vocab)
    tokenizer = property(lambda self: self.run_.tokenizer)
    train_ids = property(lambda self: self.run_.train_ids)
    val_ids = property(lambda self: self.run_.val_ids)

    # ------------------------------------------------------------ the run
    def run(self) -> DoneEvent | FailedEvent:
        if self.run_ is None:
            raise LmError("prepare the trainer before running it")
        try:
            with flushing_denormals():  # in the thread that trains (the app trains in a worker thread)
                if self.run_.device.type == "cpu":
                    self.threads.start()
                return self._run()
        except torch.cuda.OutOfMemoryError:
            msg = "the GPU ran out of memory: use a smaller --batch, --seq-len or preset"
        except SaveError as exc:  # a save failed (full disk, unwritable folder): the previous one stays
            msg = f"{exc}: training stopped. Free some space, then continue with --resume"
        except LmError as exc:
            msg = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported as one line; the last checkpoint stays
            msg = f"training failed: {_one_line(exc)}"
        finally:
            self.threads.close()
            self.close()
        ev = FailedEvent(msg + self._kept(), self._step)
        self._emit(ev)
        return ev

    def _kept(self) -> str:
        if self.saved_step is not None:
            return f" (the checkpoint of step {self.saved_step:,} is kept)"
        if self.run_.saved is not None:
            return f" (the checkpoint of step {self.run_.step0:,} is kept)"
        return " (nothing was saved)"

    def _checkpoint(self, params: int, unigram: float) -> Checkpoint:
        r = self.run_
        if r.saved is not None:
            ck = r.saved  # read for this run, under the lock: this run's to change
        else:
            ck = Checkpoint(name=r.name, model=r.model_cfg, train=r.cfg, tokenizer=r.tokenizer, vocab=r.vocab,
                            corpus=r.corpus, preset=r.preset)
        ck.model, ck.train, ck.corpus = r.model_cfg, r.cfg, r.corpus
        ck.run_start_step, ck.run_start_elapsed = r.run_start_step, r.run_start_elapsed
        ck.params, ck.device, ck.unigram_val_loss = params, describe(r.device), unigram
        if self.ranks.active:
            ck.device = f"{self.ranks.world} x {ck.device}"
        return ck

    def _save(self, ck: Checkpoint, state, resume: dict | None) -> None:
        self.store.save(self.name, ck, state, resume)
        self.saved_step = ck.step

    def _run(self) -> DoneEvent | FailedEvent:
        r, emit = self.run_, self._emit
        cfg, device = r.cfg, r.device
        torch.manual_seed(cfg.seed)
        model = build_model(r.model_cfg)
        rs = r.resume_state
        if rs:
            try:
                model.load_weights(clean_state_keys(rs["model"]))
            except (RuntimeError, KeyError, TypeError) as exc:
                raise StoreError(f"model '{self.name}': its resume state does not fit the model "
                                 f"({_one_line(exc)[:200]}): it is damaged; the model still generates, or "
                                 f"train a new one") from None
        model.to(device)
        self.model = model
        ck = self._checkpoint(model.num_params(), r.unigram if self.ranks.main else math.nan)
        step0 = r.step0
        self._step = step0
        clock = RunClock(float(rs.get("elapsed", ck.elapsed)) if rs else 0.0, r.run_start_elapsed)
        use_amp = cfg.amp and device.type == "cuda"
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
        target = r.run_start_step + cfg.steps if cfg.steps is not None else None
        emit(StartEvent(self.name, r.model_cfg.arch, r.model_cfg.impl, ck.params, ck.device, step0,
                        target, cfg.minutes, len(r.train_ids), len(r.val_ids), len(r.vocab), ck.unigram_val_loss,
                        self.threads.note if device.type == "cpu" else ""))
        if not model.trainable:
            return self._fit_counts(model, ck, clock, autocast)
        return self._gradient_loop(model, ck, clock, autocast, step0, target)

    def _fit_counts(self, model, ck: Checkpoint, clock: RunClock, autocast) -> DoneEvent:
        """The n-gram: count, evaluate, save."""
        r, cfg = self.run_, self.run_.cfg
        try:
            model.fit(r.train_ids, self.stop)
        except Cancelled:
            return stopped_before_start(self.on_event)
        model.to(r.device)
        loss = evaluate(model, r.val_ids.to(r.device), cfg.seq_len, autocast=autocast,
                        max_tokens=cfg.eval_tokens or EVAL_CAP)
        sample, greedy = sample_text(model, r.vocab, r.tokenizer, r.val_ids, cfg.sample_tokens, cfg.seed)
        ck.step, ck.elapsed, ck.best_val_loss = 1, clock.elapsed(), loss
        ck.params = int(model.unigram.numel())
        ck.history.append(EvalPoint(step=1, val_loss=loss, elapsed=round(ck.elapsed, 3),
                                    bits_per_char=ck.bits_per_char(loss)))
        self._step = 1
        self._save(ck, model.state_dict(), None)
        self.on_event(EvalEvent(1, loss, ppl(loss), loss, ppl(loss), True, sample, ck.elapsed, greedy))
        done = DoneEvent("finished", 1, loss, ppl(loss), ck.elapsed, len(r.train_ids) / max(ck.elapsed, 1e-9),
                         steps_trained=1, saved=True)
        self.on_event(done)
        return done

    def _gradient_loop(self, model, ck: Checkpoint, clock: RunClock, autocast, step0: int,
                       target: int | None) -> DoneEvent | FailedEvent:
        r, cfg, device, emit, ranks = self.run_, self.run_.cfg, self.run_.device, self._emit, self.ranks
        rs = r.resume_state
        opt = make_optimizer(model, cfg, device)
        if rs:
            if rs.get("optimizer", cfg.optimizer) == cfg.optimizer and rs.get("optim"):
                opt.load_state_dict(rs["optim"])
            torch.set_rng_state(rs["rng"])
            if device.type == "cuda" and rs.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(rs["cuda_rng"])
        net = model
        if ranks.active:  # one model on several processes: DDP averages the gradients in backward
            from torch.nn.parallel import DistributedDataParallel

            if not ranks.main:  # dropout draws other masks on each process (rank 0 keeps the saved RNG)
                torch.manual_seed((cfg.seed * 1_000_003 + step0) * 1_009 + ranks.rank)
            net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

        def step_loss(x, y, state):
            logits, new_state = net(x, state)
            return F.cross_entropy(logits.float().flatten(0, 1), y.flatten()), new_state

        if cfg.compile and r.model_cfg.impl == "scratch" and hasattr(model, "rnn"):
            model.rnn.fuse_cells = True  # compiling the whole time loop would take minutes: fuse the cells
            fwd_loss = step_loss
        elif cfg.compile:
            # On CUDA, CUDA graphs ("reduce-overhead") replay the whole step: the transformer base trains
            # at 2.4M tokens/s on an H100 with them vs 1.3M without. LMPLAY_COMPILE_MODE overrides.
            mode = os.environ.get("LMPLAY_COMPILE_MODE") or ("reduce-overhead" if device.type == "cuda"
                                                            and not ranks.active else "default")
            fwd_loss = torch.compile(step_loss, mode=None if mode == "default" else mode)
        else:
            fwd_loss = step_loss
        train_ids, val_ids = r.train_ids.to(device), r.val_ids.to(device)
        stream = r.stream if r.stream.ids.device == device else replace(r.stream, ids=train_ids)
        stateful = model.stateful and cfg.sampling == "sequential"
        rows = cfg.batch_size // ranks.world  # this process's rows of each batch
        # a saved state holds the whole batch (every rank's rows): this process continues its own
        carry = distributed.take_rows(_state_to(rs.get("carry"), device), ranks, cfg.batch_size,
                                      STATE_BATCH_DIM) if rs else None
        budget = cfg.minutes * 60 if cfg.minutes else None
        tokens_per_step = cfg.batch_size * cfg.seq_len
        best = ck.best_val_loss if ck.best_val_loss is not None else math.inf
        loss_sum = torch.zeros((), device=device)
        loss_n, last_log_t, last_log_step = 0, time.monotonic(), step0
        last_train_loss, rate, lr = float("nan"), 0.0, cfg.lr
        t_loop = time.monotonic()
        step, reason = step0, "finished"

        def progress() -> float:
            p = [(step - r.run_start_step) / cfg.steps] if cfg.steps else []
            if budget:
                p.append(in_run / budget)
            return max(p) if p else 0.0

        def do_eval() -> None:
            nonlocal best
            whole = model.detach_state(carry) if stateful else None
            if ranks.active:  # every process at the same step: the saved state holds all their rows
                whole = distributed.gather_rows(whole, STATE_BATCH_DIM)
                if not ranks.main:  # only rank 0 evaluates and saves
                    self.saved_step = step
                    return
            val = evaluate(model, val_ids, cfg.seq_len, autocast=autocast, max_tokens=cfg.eval_tokens or EVAL_CAP)
            if not math.isfinite(val):
                raise FloatingPointError("the validation loss is not finite")
            now = clock.elapsed()  # tokens/s of the run so far (not of the last interval, which an evaluation slows)
            run_rate = (step - r.run_start_step) * tokens_per_step / max(now - r.run_start_elapsed, 1e-9)
            ck.history.append(EvalPoint(step=step, val_loss=val, elapsed=round(now, 3),
                                        train_loss=last_train_loss if math.isfinite(last_train_loss) else None,
                                        lr=lr, tokens_per_s=round(run_rate, 1), bits_per_char=ck.bits_per_char(val)))
            improved = val < best
            best = min(best, val)
            ck.step, ck.elapsed, ck.best_val_loss = step, clock.elapsed(), best
            resume = {"step": step, "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                      "optim": opt.state_dict(), "optimizer": cfg.optimizer, "rng": torch.get_rng_state(),
                      "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                      "carry": _state_to(whole, "cpu"),
                      "elapsed": clock.elapsed()}
            self._save(ck, model.state_dict() if improved else None, resume)
            sample, greedy = sample_text(model, r.vocab, r.tokenizer, r.val_ids, cfg.sample_tokens, cfg.seed + step)
            emit(EvalEvent(step, val, ppl(val), best, ppl(best), improved, sample, clock.elapsed(), greedy))

        def nan_failure() -> FailedEvent:
            ev = FailedEvent(f"the loss became {last_train_loss} at step {step}: training stopped"
                             f"{self._kept()}. Lower the learning rate (now {cfg.lr:g}, try --lr {cfg.lr / 4:g}) "
                             f"or keep gradient clipping on", step)
            emit(ev)
            return ev

        model.train()
        it = stream.iterate(step0)
        while True:
            if target is not None and step >= target:
                break
            in_run, agreed_stop = clock.in_run(), False
            if ranks.active:  # every rank stops at the same step, and sees the same clock (learning rate)
                code, in_run = distributed.agree(int(self.stop.is_set()), in_run)
                agreed_stop = code > 0  # decides alone: a signal that arrives after this waits a step
            if budget is not None and step > r.run_start_step and in_run >= budget:
                reason = "time"  # checked once the run has trained a step: a tiny budget still trains one
                break
            if self.paused.is_set():
                t_pause = time.monotonic()
                while self.paused.is_set() and not self.stop.is_set():
                    time.sleep(0.02)
                held = time.monotonic() - t_pause
                clock.hold(held)  # paused time counts neither as elapsed nor in tokens/s
                t_loop += held
                last_log_t += held
            if agreed_stop if ranks.active else self.stop.is_set():
                reason = "stopped"
                break
            self.threads.tick()  # another run may have started or ended: take the cores that are free
            x, y, new_stream = next(it)
            if stateful and (carry is None or new_stream):
                carry = model.init_state(rows, device)
            lr = lr_at(cfg, step - r.run_start_step, progress())
            for g in opt.param_groups:
                g["lr"] = lr
            with autocast():
                loss, st = fwd_loss(x, y, carry if stateful else None)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            if stateful:
                carry = model.detach_state(st)
            step += 1
            self._step = step
            loss_sum += loss.detach()
            loss_n += 1
            is_eval = step % cfg.eval_every == 0
            if step % cfg.log_every == 0 or is_eval or step == step0 + 1:
                last_train_loss = float(distributed.mean(loss_sum) if ranks.active else loss_sum) / loss_n
                loss_sum.zero_()
                loss_n = 0
                if not math.isfinite(last_train_loss):
                    return nan_failure()
                ck.add_curve_point(step, last_train_loss, clock.elapsed())
                now = time.monotonic()
                rate = (step - last_log_step) * tokens_per_step / max(now - last_log_t, 1e-9)
                last_log_t, last_log_step = now, step
                sec_per_step = (now - t_loop) / max(step - step0, 1)
                eta = RunClock.eta(target - step if target is not None else None, sec_per_step,
                                   budget - clock.in_run() if budget else None)
                emit(StepEvent(step, target, last_train_loss, ppl(last_train_loss), rate, lr, clock.elapsed(), eta))
            if is_eval:
                do_eval()
        if loss_n:
            last_train_loss = float(distributed.mean(loss_sum) if ranks.active else loss_sum) / loss_n
            if not math.isfinite(last_train_loss):
                return nan_failure()
            ck.add_curve_point(step, last_train_loss, clock.elapsed())
        if step > step0 and self.saved_step != step:
            do_eval()
        total_time = time.monotonic() - t_loop
        done = DoneEvent(reason, step, best, ppl(best), clock.elapsed(),
                         (step - step0) * tokens_per_step / max(total_time, 1e-9),
                         steps_trained=step - step0, saved=self.saved_step is not None)
        emit(done)
        return done


def train(name: str, *, arch: str = "lstm", preset: str = "small", corpus: str | None = None,
          prep: str = "raw", tokens: str = "char", store: Store | None = None, home=None,
          on_event: Callable[[Event], None] | None = None, stop: threading.Event | None = None,
          resume: bool = False, encoding: str | None = None, model_overrides: dict | None = None,
          vocab_size: int | None = None, threads: int | None = None, **train_options) -> DoneEvent | FailedEvent:
    """Train model ``name`` (a new one needs ``corpus``), or with ``resume`` continue it: ``steps`` /
    ``minutes`` then mean that many more. ``model_overrides`` change the preset's model hyper-parameters
    (e.g. ``{"hidden": 128}``); ``vocab_size`` is the size of a ``tokens="bpe"`` vocabulary; other
    keywords are TrainConfig fields. ``threads`` fixes the CPU threads (default: the free cores)."""
    from ..models import preset_config

    store = store or Store(home)
    cfg = TrainConfig(**train_options)
    trainer = Trainer(store, name, on_event, stop, threads)
    try:
        if resume:
            trainer.prepare(train=cfg, resume=True, corpus=corpus, encoding=encoding)
        else:
            mc = preset_config(arch, preset, **(model_overrides or {}))
            trainer.prepare(model=mc, preset=preset, train=cfg, corpus=corpus or "pythondocs",
                            tokenizer=Tokenizer(tokens, prep, **({} if vocab_size is None else {"vocab_size": vocab_size})),
                            encoding=encoding)
    except Cancelled:
        return stopped_before_start(on_event)
    return trainer.run()


def stopped_before_start(on_event: Callable[[Event], None] | None = None) -> DoneEvent:
    """The outcome of a run stopped while it was being prepared (tokenizing a corpus): nothing saved."""
    done = DoneEvent("stopped", 0, math.inf, math.inf, 0.0, 0.0, steps_trained=0, saved=False)
    if on_event:
        on_event(done)
    return done
