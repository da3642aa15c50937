"""The gradient loop of one run, read top to bottom as nanoGPT's train.py: before each step the controls
(the target, the time budget, a stop, a pause), then a batch, forward, backward and update; now and then
a report of the training loss, an evaluation and a checkpoint."""
from __future__ import annotations

import math
import os
from dataclasses import replace

import torch

from ..errors import NotFinite
from ..events import DoneEvent, FailedEvent
from ..models import LanguageModel
from ..store.checkpoint import ppl
from .config import TrainConfig
from .distributed import Ranks
from .job import Job
from .optimizer import lr_at, make_optimizer, set_lr
from .reporting import TrainLog, diverged
from .eval_and_save import EvalAndSave
from .saving import restore_training, saved_carry


def train_by_gradients(job: Job) -> DoneEvent | FailedEvent:
    r, model, cfg, device, ctl, clock = job.run, job.model, job.run.cfg, job.run.device, job.controls, job.clock
    step0 = step = r.step0
    opt = make_optimizer(model, cfg, device)
    restore_training(opt, r.resume_state, cfg, device)
    forward_loss = step_function(network(model, cfg, device, job.ranks, step0), model, cfg, device, job.ranks)
    train_ids, val_ids = r.train_ids.to(device), r.val_ids.to(device)
    stream = r.stream if r.stream.ids.device == device else replace(r.stream, ids=train_ids)
    stateful = model.stateful and cfg.sampling == "sequential"
    rows = cfg.batch_size // job.ranks.world  # this process's rows of each batch
    carry = saved_carry(r.resume_state, device, job.ranks, cfg.batch_size)
    evaluate_and_save = EvalAndSave(job, opt, val_ids, stateful)
    log = TrainLog(cfg, step0, device, job.ranks, clock)
    lr = cfg.lr

    def evaluated(step: int) -> FailedEvent | None:
        """Evaluate and save; an evaluation that finds the model's numbers not finite ends the run as diverged."""
        try:
            evaluate_and_save(step, carry, log.last, lr)
        except NotFinite as exc:
            return job.end(diverged(log.last, step, cfg, job.saver.kept(r), exc.what))
        return None

    model.train()
    batches = stream.iterate(step0)
    while (reason := ctl.before_step(step)) is None:
        job.threads.tick()  # another run may have started or ended: take the cores that are free
        x, y, new_stream = next(batches)
        if stateful and (carry is None or new_stream):
            carry = model.init_state(rows, device)
        lr = set_lr(opt, lr_at(cfg, step - r.run_start_step, ctl.progress(step)))
        with job.autocast():
            loss, new_carry = forward_loss(x, y, carry if stateful else None)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
        opt.step()
        if stateful:
            carry = model.detach_state(new_carry)
        step = job.saver.step = step + 1
        log.add(loss)
        is_eval = step % cfg.eval_every == 0
        if log.due(step) or is_eval:
            if not math.isfinite(log.average()):  # the one sync of a report
                return job.end(diverged(log.last, step, cfg, job.saver.kept(r)))
            job.ck.add_curve_point(step, log.last, clock.elapsed())
            job.emit(log.step_event(step, lr, ctl))
        if is_eval and (failed := evaluated(step)) is not None:
            return failed

    if log.n:  # the steps since the last report
        if not math.isfinite(log.average()):
            return job.end(diverged(log.last, step, cfg, job.saver.kept(r)))
        job.ck.add_curve_point(step, log.last, clock.elapsed())
    if step > step0 and job.saver.saved_step != step and (failed := evaluated(step)) is not None:
        return failed
    best = evaluate_and_save.best
    top1, top5 = job.ck.best_fill
    return job.end(DoneEvent(reason, step, best, ppl(best), clock.elapsed(), log.rate(step),
                             steps_trained=step - step0, saved=job.saver.saved_step is not None,
                             best_val_fill_top1=top1, best_val_fill_top5=top5,
                             best_val_bleu=job.ck.best_val_bleu, best_val_exact=job.ck.best_val_exact,
                             metrics=dict(evaluate_and_save.metrics)))


def network(model: LanguageModel, cfg: TrainConfig, device: torch.device, ranks: Ranks, step0: int):
    """What the step runs: the model, or under torchrun the model wrapped so that DDP averages the
    gradients of every process in backward."""
    if not ranks.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    if not ranks.main:  # dropout draws other masks on each process (rank 0 keeps the saved RNG)
        torch.manual_seed((cfg.seed * 1_000_003 + step0) * 1_009 + ranks.rank)
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def step_function(net, model: LanguageModel, cfg: TrainConfig, device: torch.device, ranks: Ranks):
    """(x, y, state) → (the mean loss: the model's ``train_loss``, by default the next-token cross-entropy;
    the new state); compiled under --compile, unless the model compiles its own parts."""
    def step_loss(x, y, state):
        return model.train_loss(x, y, state, net)

    if not cfg.compile or model.compile_parts():
        return step_loss
    # On CUDA, CUDA graphs ("reduce-overhead") replay the whole step: the transformer base trains at 2.4M
    # tokens/s on an H100 with them vs 1.3M without. LMPLAY_COMPILE_MODE overrides.
    mode = os.environ.get("LMPLAY_COMPILE_MODE") or ("reduce-overhead" if device.type == "cuda"
                                                    and not ranks.active else "default")
    return torch.compile(step_loss, mode=None if mode == "default" else mode)
