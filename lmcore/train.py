"""The trainer: any model, any corpus, events to a callback, best checkpoint in the store, resumable."""
from __future__ import annotations

import contextlib
import math
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Callable

import torch
import torch.nn.functional as F

from . import __version__
from . import corpus as corpora
from .data import SAMPLINGS, BatchStream, split
from .device import describe, pick_device
from .errors import ConfigError, LmError, StoreError
from .events import DoneEvent, EvalEvent, Event, FailedEvent, StartEvent, StepEvent
from .generate import Generator
from .models import PRESETS, LanguageModel, ModelConfig, build_model
from .sampling import SamplingSettings
from .store import Store, clean_state_keys
from .text import Tokenizer, build_vocab, encode
from .vocab import Vocab


@dataclass
class TrainConfig:
    steps: int | None = None          # None: the preset's (or unlimited when only minutes are given)
    minutes: float | None = None      # time budget
    batch_size: int | None = None
    seq_len: int | None = None
    lr: float | None = None
    optimizer: str = "adamw"          # adamw | sgd
    weight_decay: float = 0.1
    clip: float = 1.0                 # gradient-norm clipping (0: off)
    warmup: int | None = None         # warm-up steps (None: 5% of the steps, at most 100)
    schedule: str = "cosine"          # cosine | constant
    min_lr_ratio: float = 0.1
    eval_every: int = 200
    eval_tokens: int = 0              # 0: the whole validation set
    sampling: str | None = None       # random | sequential (None: sequential for recurrent models)
    device: str = "auto"
    compile: bool = False
    amp: bool = True                  # bf16 autocast on CUDA
    seed: int = 0
    val_fraction: float = 0.1
    log_every: int = 10
    sample_tokens: int = 100

    def resolved(self, arch: str, preset: str) -> "TrainConfig":
        """Fill what is unset from the preset's recipe, and check ranges."""
        rec = PRESETS[arch][preset]["train"]
        c = TrainConfig(**asdict(self))
        for k in ("batch_size", "seq_len", "lr"):
            if getattr(c, k) is None:
                setattr(c, k, rec.get(k, {"batch_size": 32, "seq_len": 64, "lr": 2e-3}[k]))
        if c.steps is None and c.minutes is None:
            c.steps = rec.get("steps", 1000)
        if c.sampling is None:
            c.sampling = "sequential" if arch in ("rnn", "gru", "lstm") else "random"
        return c.validate(arch)

    def validate(self, arch: str = "lstm") -> "TrainConfig":
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be at least 1 (got {self.steps})")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be > 0 (got {self.minutes})")
        for k in ("batch_size", "seq_len", "eval_every", "log_every"):
            v = getattr(self, k)
            if v is not None and v < 1:
                raise ConfigError(f"{k.replace('_', '-')} must be at least 1 (got {v})")
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"learning rate must be > 0 (got {self.lr})")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"unknown optimizer '{self.optimizer}': use adamw or sgd")
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"unknown schedule '{self.schedule}': use cosine or constant")
        if self.sampling is not None and self.sampling not in SAMPLINGS:
            raise ConfigError(f"unknown sampling '{self.sampling}': use random or sequential")
        if self.sampling == "sequential" and arch in ("transformer", "ngram"):
            raise ConfigError("sequential sampling carries a recurrent state: use it with rnn, gru or lstm")
        if self.clip < 0:
            raise ConfigError("clip must be >= 0")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def ppl(loss: float) -> float:
    """Perplexity exp(loss), infinite instead of an overflow."""
    return math.exp(loss) if loss < 700 else float("inf")


def _state_to(state, device):
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.to(device)
    return tuple(s.to(device) for s in state)


def _lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    warm = cfg.warmup if cfg.warmup is not None else min(100, max(1, (cfg.steps or 2000) // 20))
    if step < warm:
        return cfg.lr * (step + 1) / warm
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


@torch.no_grad()
def evaluate(model: LanguageModel, ids: torch.Tensor, seq_len: int, batch_size: int = 16,
             autocast=contextlib.nullcontext, max_tokens: int = 0) -> float:
    """Mean cross-entropy (nats per token) on held-out ids. Recurrent and n-gram models read the text as
    a few contiguous streams, carrying their state; the transformer reads windows of its context."""
    was_training = model.training
    model.eval()
    ids = ids[: max_tokens + 1] if max_tokens else ids
    total, count = 0.0, 0
    try:
        if model.config.arch == "transformer":
            t = min(model.config.context, len(ids) - 1)
            n = (len(ids) - 1) // t
            xs, ys = ids[: n * t].view(n, t).long(), ids[1: n * t + 1].view(n, t).long()
            for i in range(0, n, batch_size):
                with autocast():
                    logits, _ = model(xs[i: i + batch_size])
                total += F.cross_entropy(logits.float().flatten(0, 1), ys[i: i + batch_size].flatten(), reduction="sum").item()
                count += ys[i: i + batch_size].numel()
        else:
            streams = max(1, min(batch_size, (len(ids) - 1) // (4 * seq_len)))
            length = (len(ids) - 1) // streams
            xs = ids[: streams * length].view(streams, length).long()
            ys = ids[1: streams * length + 1].view(streams, length).long()
            state = model.init_state(streams, ids.device)
            for i in range(0, length, seq_len):
                with autocast():
                    logits, state = model(xs[:, i: i + seq_len], state)
                total += F.cross_entropy(logits.float().flatten(0, 1), ys[:, i: i + seq_len].flatten(), reduction="sum").item()
                count += ys[:, i: i + seq_len].numel()
    finally:
        model.train(was_training)
    if count == 0:
        raise ConfigError("the validation set is too small to evaluate: use a larger corpus")
    return total / count


def _sample(model: LanguageModel, vocab: Vocab, tok: Tokenizer, val_ids: torch.Tensor, n: int) -> str:
    if model.config.bidirectional or n <= 0:
        return ""
    was_training = model.training
    try:
        prompt_ids = val_ids[:16].tolist()
        prompt = tok.join(vocab.decode(prompt_ids))
        gen = Generator(model, vocab, tok, device=next(model.parameters()).device)
        s = SamplingSettings(temperature=0.0, max_tokens=n)
        return prompt + gen.complete(prompt, s)
    finally:
        model.train(was_training)


def unigram_loss(train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int) -> float:
    """Cross-entropy of the add-one unigram distribution: the floor any model must beat."""
    counts = torch.ones(vocab_size, dtype=torch.float64)
    for chunk in train_ids.cpu().split(1 << 22):  # chunked: no int64 copy of a huge corpus
        counts += torch.bincount(chunk.long(), minlength=vocab_size)
    logp = torch.log(counts / counts.sum())
    return float(-logp[val_ids.long().cpu()].mean())


class Trainer:
    """Set up with :meth:`prepare` (new or resumed), then :meth:`run`. ``stop`` (an Event) ends the run
    cleanly after the current step, saving."""

    def __init__(self, store: Store, name: str, on_event: Callable[[Event], None] | None = None,
                 stop: threading.Event | None = None):
        self.store, self.name = store, name
        self.on_event = on_event or (lambda e: None)
        self.stop = stop or threading.Event()
        self.paused = threading.Event()
        self._step = 0

    def pause(self) -> None:
        """Hold training after the current step (the clock stops too) until :meth:`resume_training`."""
        self.paused.set()

    def resume_training(self) -> None:
        self.paused.clear()

    # ------------------------------------------------------------ set-up
    def prepare(self, *, model: ModelConfig | None = None, preset: str = "small",
                train: TrainConfig | None = None, corpus: str | None = None,
                tokenizer: Tokenizer | None = None, resume: bool = False, encoding: str | None = None,
                progress: Callable[[int, int | None], None] | None = None) -> "Trainer":
        store, name = self.store, self.name
        store.path(name)  # validates the name
        self.resume_state = None
        if resume:
            meta = store.read_meta(name)
            self.meta = meta
            self.model_cfg = ModelConfig.from_dict(meta["model"])
            self.preset = meta.get("preset", "small")
            saved = TrainConfig.from_dict(meta.get("train", {}))
            if train is not None:  # explicit new values win (more steps, another device…)
                for f in fields(TrainConfig):
                    v, default = getattr(train, f.name), getattr(TrainConfig(), f.name)
                    if v != default:
                        setattr(saved, f.name, v)
            self.cfg = saved.validate(self.model_cfg.arch)
            self.tokenizer = Tokenizer(**meta["tokenizer"])
            self.vocab = Vocab.from_dict(meta["vocab"])
            src = meta["corpus"]
            corpus_src = corpus or src.get("source_arg") or src["name"]
            self.resume_state = store.load_resume(name, meta)
        else:
            if store.exists(name):
                raise StoreError(f"a model named '{name}' exists already: continue it with --resume, "
                                 f"pick another name, or delete it (lmcore models rm {name})")
            if model is None or corpus is None:
                raise ConfigError("a new model needs an architecture and a corpus")
            self.model_cfg, self.preset = model, preset
            self.cfg = (train or TrainConfig()).resolved(model.arch, preset)
            self.tokenizer = tokenizer or Tokenizer()
            self.vocab = None
            corpus_src = corpus
            self.meta = {}
        self.corpus = corpora.load(corpus_src, store.home, encoding=encoding, progress=progress)
        if resume and self.corpus.sha1 != self.meta["corpus"].get("sha1"):
            raise ConfigError(f"corpus '{corpus_src}' has changed since model '{name}' was trained "
                              f"(sha1 differs): resume with the same text, or train a new model")
        text = self.tokenizer.preprocess(self.corpus.text)
        if self.vocab is None:
            self.vocab = build_vocab(text, self.tokenizer)
        ids = encode(text, self.tokenizer, self.vocab)
        del text
        self.corpus.text = ""  # only the compact ids are needed from here on (a huge corpus stays small)
        self.train_ids, self.val_ids = split(ids, self.cfg.val_fraction)
        if len(self.val_ids) < 2:
            raise ConfigError(f"corpus '{self.corpus.name}' is too small to hold out a validation set "
                              f"({len(ids):,} tokens): use a larger text")
        self.model_cfg.vocab_size = len(self.vocab)
        self.model_cfg.validate()
        if self.model_cfg.arch == "transformer" and self.cfg.seq_len > self.model_cfg.context:
            raise ConfigError(f"the sequence length ({self.cfg.seq_len}) is larger than the transformer's context "
                              f"({self.model_cfg.context}): use --context {self.cfg.seq_len} or --seq-len "
                              f"{self.model_cfg.context}")
        self.corpus_arg = corpus_src
        return self

    # ------------------------------------------------------------ helpers
    def _meta(self, step: int, history: list, best: float, device: torch.device, params: int) -> dict:
        m = dict(self.meta)
        m.update(
            lmplay_version=__version__, preset=self.preset,
            model=self.model_cfg.to_dict(), train=self.cfg.to_dict(), tokenizer=self.tokenizer.to_dict(),
            vocab={"idx_to_token": self.vocab.idx_to_token, "min_freq": self.vocab.min_freq,
                   "reserved_tokens": self.vocab.reserved_tokens},
            corpus={"name": self.corpus.name, "sha1": self.corpus.sha1, "source": self.corpus.source,
                    "source_arg": self.corpus_arg, "train_tokens": len(self.train_ids),
                    "val_tokens": len(self.val_ids)},
            step=step, history=history, params=params, device=describe(device),
            best_val_loss=best if math.isfinite(best) else None,
            best_val_ppl=ppl(best) if math.isfinite(best) else None,
            unigram_val_loss=self.unigram,
        )
        return m

    # ------------------------------------------------------------ the loop
    def run(self) -> DoneEvent | FailedEvent:
        with self.store.lock(self.name):
            try:
                return self._run()
            except LmError:
                raise
            except torch.cuda.OutOfMemoryError:
                ev = FailedEvent("the GPU ran out of memory: use a smaller --batch, --seq-len or preset", self._step)
            except OSError as exc:  # the disk filled up, or the store became unwritable, during a save
                ev = FailedEvent(f"could not save the checkpoint ({exc.strerror or exc}): training stopped and the "
                                 f"previous checkpoint was kept. Free some space, then continue with --resume",
                                 self._step)
            except Exception as exc:  # noqa: BLE001 - reported as one line; the last checkpoint stays
                ev = FailedEvent(f"training failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}",
                                 self._step)
            self.on_event(ev)
            return ev

    def _run(self) -> DoneEvent | FailedEvent:
        cfg, emit = self.cfg, self.on_event
        self._step = 0
        device = pick_device(cfg.device)
        torch.manual_seed(cfg.seed)
        model = build_model(self.model_cfg)
        self.unigram = unigram_loss(self.train_ids, self.val_ids, len(self.vocab))
        r = self.resume_state
        history = list(self.meta.get("history", [])) if r else []
        best = float(self.meta.get("best_val_loss") or math.inf) if r else math.inf
        step0 = int(r["step"]) if r else 0
        elapsed0 = float(r.get("elapsed", 0.0)) if r else 0.0
        if r:
            model.load_weights(clean_state_keys(r["model"]))
        model.to(device)
        self.model = model
        train_ids, val_ids = self.train_ids.to(device), self.val_ids.to(device)
        use_amp = cfg.amp and device.type == "cuda"
        autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext
        params = model.num_params()
        emit(StartEvent(self.name, self.model_cfg.arch, self.model_cfg.impl, params, describe(device), step0,
                        cfg.steps, cfg.minutes, len(self.train_ids), len(self.val_ids), len(self.vocab)))
        t_start = time.monotonic()

        def elapsed() -> float:
            return elapsed0 + time.monotonic() - t_start

        if not model.trainable:  # the n-gram: count, evaluate, save
            model.fit(self.train_ids)
            model.to(device)
            loss = evaluate(model, val_ids, cfg.seq_len, autocast=autocast, max_tokens=cfg.eval_tokens)
            sample = _sample(model, self.vocab, self.tokenizer, self.val_ids, cfg.sample_tokens)
            history.append({"step": 1, "val_loss": loss, "val_ppl": ppl(loss), "elapsed": elapsed()})
            self.store.save(self.name, self._meta(1, history, loss, device, int(model.unigram.numel())),
                            model.state_dict())
            emit(EvalEvent(1, loss, ppl(loss), loss, ppl(loss), True, sample, elapsed()))
            done = DoneEvent("finished", 1, loss, ppl(loss), elapsed(), len(self.train_ids) / max(elapsed(), 1e-9))
            emit(done)
            return done

        opt = make_optimizer(model, cfg, device)
        if r:
            if r.get("optimizer", cfg.optimizer) == cfg.optimizer:
                opt.load_state_dict(r["optim"])
            torch.set_rng_state(r["rng"])
            if device.type == "cuda" and r.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(r["cuda_rng"])
        def step_loss(x, y, state):
            logits, new_state = model(x, state)
            return F.cross_entropy(logits.float().flatten(0, 1), y.flatten()), new_state

        if cfg.compile and self.model_cfg.impl == "scratch" and hasattr(model, "rnn"):
            model.rnn.fuse_cells = True  # compiling the whole time loop would take minutes: fuse the cells
            fwd_loss = step_loss
        elif cfg.compile:
            # On CUDA, CUDA graphs ("reduce-overhead") replay the whole step: the transformer base trains
            # at 2.4M tokens/s on an H100 with them vs 1.3M without. LMPLAY_COMPILE_MODE overrides
            # ("default" for plain compilation).
            mode = os.environ.get("LMPLAY_COMPILE_MODE") or ("reduce-overhead" if device.type == "cuda" else "default")
            fwd_loss = torch.compile(step_loss, mode=None if mode == "default" else mode)
        else:
            fwd_loss = step_loss
        stream = BatchStream(train_ids, cfg.batch_size, cfg.seq_len, cfg.sampling, cfg.seed)
        carry = _state_to(r.get("carry"), device) if r else None
        stateful = model.stateful and cfg.sampling == "sequential"
        budget = cfg.minutes * 60 if cfg.minutes else None
        tokens_per_step = cfg.batch_size * cfg.seq_len
        loss_sum = torch.zeros((), device=device)
        loss_n, last_log_t, last_log_step = 0, time.monotonic(), step0
        last_train_loss = float("nan")
        rate = 0.0
        t_loop = time.monotonic()
        step = step0
        reason = "finished"

        def progress() -> float:
            p = [step / cfg.steps] if cfg.steps else []
            if budget:
                p.append(elapsed() / budget)
            return max(p) if p else 0.0

        def save(val_loss: float) -> bool:
            nonlocal best
            improved = val_loss < best
            if improved:
                best = val_loss
            resume = {"step": step, "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                      "optim": opt.state_dict(), "optimizer": cfg.optimizer, "rng": torch.get_rng_state(),
                      "cuda_rng": torch.cuda.get_rng_state() if device.type == "cuda" else None,
                      "carry": _state_to(model.detach_state(carry), "cpu") if stateful else None,
                      "elapsed": elapsed()}
            meta = self._meta(step, history, best, device, params)
            self.store.save(self.name, meta, model.state_dict() if improved else None, resume=resume,
                            keep_weights=not improved)
            return improved

        def do_eval() -> None:
            val = evaluate(model, val_ids, cfg.seq_len, autocast=autocast, max_tokens=cfg.eval_tokens)
            if not math.isfinite(val):
                raise FloatingPointError("validation loss is not finite")
            history.append({"step": step, "train_loss": last_train_loss, "val_loss": val, "val_ppl": ppl(val),
                            "lr": lr, "elapsed": round(elapsed(), 3), "tokens_per_s": round(rate, 1)})
            improved = save(val)
            sample = _sample(model, self.vocab, self.tokenizer, self.val_ids, cfg.sample_tokens)
            emit(EvalEvent(step, val, ppl(val), best, ppl(best), improved, sample, elapsed()))

        def nan_failure() -> FailedEvent:
            ev = FailedEvent(f"the loss became {last_train_loss} at step {step}: training stopped and the last good "
                             f"checkpoint was kept. Lower the learning rate (now {cfg.lr:g}, try --lr {cfg.lr / 4:g}) "
                             f"or keep gradient clipping on", step)
            emit(ev)
            return ev

        model.train()
        lr = cfg.lr
        it = stream.iterate(step0)
        while True:
            if cfg.steps is not None and step >= cfg.steps:
                break
            if budget is not None and elapsed() >= budget:
                reason = "time"
                break
            if self.paused.is_set():
                t_pause = time.monotonic()
                while self.paused.is_set() and not self.stop.is_set():
                    time.sleep(0.02)
                held = time.monotonic() - t_pause
                t_start += held  # paused time counts neither as elapsed nor in tokens/s
                t_loop += held
                last_log_t += held
            if self.stop.is_set():
                reason = "stopped"
                break
            x, y, new_stream = next(it)
            if stateful and (carry is None or new_stream):
                carry = model.init_state(cfg.batch_size, device)
            lr = _lr_at(cfg, step, progress())
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
                last_train_loss = float(loss_sum) / loss_n
                loss_sum.zero_()
                loss_n = 0
                if not math.isfinite(last_train_loss):
                    return nan_failure()
                now = time.monotonic()
                rate = (step - last_log_step) * tokens_per_step / max(now - last_log_t, 1e-9)
                last_log_t, last_log_step = now, step
                eta = None
                sec_per_step = (now - t_loop) / max(step - step0, 1)
                if cfg.steps:
                    eta = (cfg.steps - step) * sec_per_step
                if budget:
                    eta = min(eta, budget - elapsed()) if eta is not None else budget - elapsed()
                emit(StepEvent(step, cfg.steps, last_train_loss, ppl(last_train_loss), rate, lr,
                               elapsed(), max(eta, 0.0) if eta is not None else None))
            if is_eval:
                do_eval()
        if loss_n:
            last_train_loss = float(loss_sum) / loss_n
            if not math.isfinite(last_train_loss):
                return nan_failure()
        if step > step0 and (not history or history[-1]["step"] != step):
            do_eval()
        total_time = time.monotonic() - t_loop
        done = DoneEvent(reason, step, best, ppl(best), elapsed(),
                         (step - step0) * tokens_per_step / max(total_time, 1e-9))
        emit(done)
        return done


def train(name: str, *, arch: str = "lstm", preset: str = "small", corpus: str = "pythondocs",
          prep: str = "raw", tokens: str = "char", store: Store | None = None, home=None,
          on_event: Callable[[Event], None] | None = None, stop: threading.Event | None = None,
          resume: bool = False, encoding: str | None = None, model_overrides: dict | None = None,
          **train_options) -> DoneEvent | FailedEvent:
    """Train (or, with ``resume``, continue) model ``name``. ``model_overrides`` change the preset's model
    hyper-parameters (e.g. ``{"hidden": 128}``); other keywords are TrainConfig fields."""
    from .models import preset_config

    store = store or Store(home)
    cfg = TrainConfig(**train_options)
    trainer = Trainer(store, name, on_event, stop)
    if resume:
        trainer.prepare(train=cfg, resume=True, encoding=encoding)
    else:
        mc = preset_config(arch, preset, **(model_overrides or {}))
        trainer.prepare(model=mc, preset=preset, train=cfg, corpus=corpus, tokenizer=Tokenizer(tokens, prep),
                        encoding=encoding)
    return trainer.run()
