"""Training a model that is counted in one pass (``trainable`` False: the n-gram): count, evaluate, save."""
from __future__ import annotations

from ..errors import Cancelled
from ..events import DoneEvent, EvalEvent
from ..store.checkpoint import EvalPoint, ppl
from .evaluation import EVAL_CAP, evaluate, fill_point, sample_text
from .job import Job


def fit_by_counting(job: Job, stopped: DoneEvent) -> DoneEvent:
    """Count the training text (``stopped`` is the outcome when a stop interrupts the counting)."""
    r, cfg, model, ck = job.run, job.run.cfg, job.model, job.ck
    try:
        model.fit(r.train_ids, job.controls.stop)
    except Cancelled:
        return job.end(stopped)
    model.to(r.device)
    loss = evaluate(model, r.val_ids.to(r.device), cfg.seq_len, autocast=job.autocast,
                    max_tokens=cfg.eval_tokens or EVAL_CAP)
    top1, top5 = fill_point(model, r.val_ids.to(r.device), cfg.fill_eval)
    sample, greedy = sample_text(model, r.vocab, r.tokenizer, r.val_ids, cfg.sample_tokens, cfg.seed)
    ck.step, ck.elapsed, ck.best_val_loss = 1, job.clock.elapsed(), loss
    ck.params = model.num_params()
    ck.history.append(EvalPoint(step=1, val_loss=loss, elapsed=round(ck.elapsed, 3),
                                bits_per_char=ck.bits_per_char(loss), fill_top1=top1, fill_top5=top5))
    job.saver.step = 1
    job.saver.save(ck, model.state_dict(), None)
    job.emit(EvalEvent(1, loss, ppl(loss), loss, ppl(loss), True, sample, ck.elapsed, greedy, top1, top5))
    return job.end(DoneEvent("finished", 1, loss, ppl(loss), ck.elapsed,
                             len(r.train_ids) / max(ck.elapsed, 1e-9), steps_trained=1, saved=True,
                             best_val_fill_top1=top1, best_val_fill_top5=top5))
