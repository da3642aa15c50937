"""What the loop does every ``eval_every`` steps and at the end of a run: evaluate, then save."""
from __future__ import annotations

import math

import torch

from . import distributed
from ..errors import NotFinite
from ..events import EvalEvent
from ..store.checkpoint import OWN_METRICS, EvalPoint, ppl
from .evaluation import EVAL_CAP, evaluate, fill_point, sample_text
from .job import Job
from .pairs_eval import PairScores, evaluate_pairs
from .lm_pairs_eval import LmPairScores, evaluate_lm_pairs, reply_limit
from ..models.encdec import special_ids
from .saving import STATE_BATCH_DIM, resume_state


class EvalAndSave:
    """The held-out loss, a checkpoint (with the weights when the loss is the best so far) and an EvalEvent
    with a sample; ``best`` is the best loss so far. Under torchrun every process takes part (the saved
    state holds all their rows); only rank 0 evaluates and saves."""

    def __init__(self, job: Job, opt: torch.optim.Optimizer, val_ids: torch.Tensor, stateful: bool):
        self.job, self.opt, self.val_ids, self.stateful = job, opt, val_ids, stateful
        best = job.ck.best_val_loss
        self.best = best if best is not None else math.inf
        self.metrics: dict[str, float] = {}  # the last evaluation's numbers of the model's own (val_metrics)

    def __call__(self, step: int, carry, train_loss: float, lr: float) -> None:
        j, r, cfg, ck, clock = self.job, self.job.run, self.job.run.cfg, self.job.ck, self.job.clock
        whole = j.model.detach_state(carry) if self.stateful else None
        if j.ranks.active:  # every process at the same step: the saved state holds all their rows
            whole = distributed.gather_rows(whole, STATE_BATCH_DIM)
            if not j.ranks.main:  # only rank 0 evaluates and saves
                j.saver.saved_step = step
                return
        pairs = self._pairs() if r.pairs is not None else None
        val = pairs.loss if pairs else evaluate(j.model, self.val_ids, cfg.seq_len, autocast=j.autocast,
                                                max_tokens=cfg.eval_tokens or EVAL_CAP)
        if not math.isfinite(val):
            raise NotFinite(f"the validation loss became {val}")
        top1, top5 = fill_point(j.model, self.val_ids, cfg.fill_eval) if pairs is None else (None, None)
        lm_pairs = self._lm_pairs() if r.lm_pairs is not None else None  # a decoder-only model on pairs
        figures = dict(lm_pairs.fields() if lm_pairs else _scores(pairs), fill_top1=top1, fill_top5=top5)
        own = j.model.val_metrics(self.val_ids, cfg.seq_len, val, j.autocast) if pairs is None else {}
        self.metrics = {k: v for k, v in own.items() if k in OWN_METRICS and v is not None and math.isfinite(v)}
        # the sample before saving: scores that are not finite end the run as diverged (NotFinite) and the
        # last good checkpoint stays
        if pairs:  # a source and the model's reply to it
            sample = greedy = f"{r.pairs.valid.texts[0][0]} → {pairs.replies[0]}" if pairs.replies else ""
        elif lm_pairs:
            sample = greedy = f"{lm_pairs.sources[0]} → {lm_pairs.replies[0]}" if lm_pairs.replies else ""
        else:
            sample, greedy = sample_text(j.model, r.vocab, r.tokenizer, r.val_ids, cfg.sample_tokens, cfg.seed + step)
        now = clock.elapsed()  # tokens/s of the run so far (not of the last interval, which an evaluation slows)
        run_rate = (step - r.run_start_step) * cfg.batch_size * cfg.seq_len / max(now - r.run_start_elapsed, 1e-9)
        ck.history.append(EvalPoint(step=step, val_loss=val, elapsed=round(now, 3),
                                    train_loss=train_loss if math.isfinite(train_loss) else None,
                                    lr=lr, tokens_per_s=round(run_rate, 1), bits_per_char=ck.bits_per_char(val),
                                    **figures, **self.metrics))
        improved = val < self.best
        self.best = min(self.best, val)
        ck.step, ck.elapsed, ck.best_val_loss = step, clock.elapsed(), self.best
        resume = resume_state(step, j.model, self.opt, cfg, r.device, whole, clock)
        j.saver.save(ck, j.model.state_dict() if improved else None, resume)
        j.emit(EvalEvent(step, val, ppl(val), self.best, ppl(self.best), improved, sample, clock.elapsed(), greedy,
                         metrics=dict(self.metrics), **figures))

    def _pairs(self) -> PairScores:
        """A pairs model's scores on the validation pairs (the loss per target token, BLEU, exact match)."""
        j, r = self.job, self.job.run
        bos, eos = special_ids(r.vocab, r.tokenizer)
        return evaluate_pairs(j.model, r.pairs.valid, r.vocab, r.tokenizer, bos, eos, r.cfg.batch_size,
                              autocast=j.autocast)

    def _lm_pairs(self) -> LmPairScores:
        """A decoder-only model trained on pairs: its greedy replies to the validation sources, scored."""
        j, r = self.job, self.job.run
        return evaluate_lm_pairs(j.model, r.lm_pairs.valid, r.vocab, r.tokenizer, autocast=j.autocast,
                                 max_new=reply_limit(r.lm_pairs.train))


def _scores(pairs: PairScores | None) -> dict:
    return {} if pairs is None else {"bleu": round(pairs.bleu, 6), "corpus_bleu": round(pairs.corpus_bleu, 6),
                                     "exact": round(pairs.exact, 6)}
