"""Training progress as events: the CLI, the TUI and Python callers render the same stream."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


STOP_REASONS = {"finished": "finished", "time": "time budget reached", "stopped": "stopped"}  # DoneEvent.reason


@dataclass
class Event:
    kind = "event"
    optional = ()  # fields left out of to_dict when None (pairs models' scores: language models have none)

    def to_dict(self) -> dict:
        """A JSON-ready dict: floats rounded, NaN and infinities as None (strict JSON has neither)."""
        d = {"event": self.kind}
        d.update({k: ((round(v, 6) if math.isfinite(v) else None) if isinstance(v, float) else v)
                  for k, v in asdict(self).items() if not (v is None and k in self.optional)})
        return d


@dataclass
class StartEvent(Event):
    name: str
    arch: str
    impl: str
    params: int
    device: str
    step: int            # first step (non-zero when resuming)
    steps: int | None    # step budget, if any
    minutes: float | None
    train_tokens: int
    val_tokens: int
    vocab_size: int
    unigram_val_loss: float | None = None  # the floor any model must beat (a reference line)
    threads: str = ""  # on the CPU: how many threads the run uses and why
    model: str = ""    # the model's kind in one line, as its family describes it ("lstm/fused")
    auto: str = ""     # preset auto: what it chose and why, in one line
    kind = "start"


@dataclass
class StepEvent(Event):
    step: int
    steps: int | None
    loss: float
    ppl: float
    tokens_per_s: float
    lr: float
    elapsed: float
    eta: float | None
    run_tokens_per_s: float | None = None  # over the run so far, evaluations included (tokens_per_s: since the last report)
    kind = "step"


@dataclass
class EvalEvent(Event):
    step: int
    val_loss: float
    val_ppl: float
    best_val_loss: float
    best_val_ppl: float
    improved: bool
    sample: str          # the start of the validation text, continued at the default temperature
    elapsed: float
    greedy: str = ""     # the same, continued greedily
    fill_top1: float | None = None  # fill accuracy on the validation text's fixed blanks (None: not measured)
    fill_top5: float | None = None
    bleu: float | None = None         # pairs models: the chapter's BLEU of the greedy replies, averaged
    corpus_bleu: float | None = None  # sacrebleu's corpus BLEU of the same
    exact: float | None = None        # the fraction of replies equal to their reference
    metrics: dict = field(default_factory=dict)  # the model's own numbers (BERT: mlm_loss, pseudo_ppl, nsp_accuracy)
    kind = "eval"
    optional = ("bleu", "corpus_bleu", "exact")


@dataclass
class DoneEvent(Event):
    reason: str          # finished | stopped | time
    step: int
    best_val_loss: float
    best_val_ppl: float
    elapsed: float
    tokens_per_s: float
    steps_trained: int = 0   # steps this run trained
    saved: bool = False      # whether this run saved a checkpoint
    best_val_fill_top1: float | None = None  # the highest fill accuracy of the model's evaluations (None: never
    best_val_fill_top5: float | None = None  # measured)
    best_val_bleu: float | None = None   # pairs models: the best chapter BLEU and exact match so far
    best_val_exact: float | None = None
    metrics: dict = field(default_factory=dict)  # the last evaluation's own numbers of the model (EvalEvent's)
    kind = "done"
    optional = ("best_val_bleu", "best_val_exact")

    @property
    def how(self) -> str:
        """Why the run ended, in words: finished, time budget reached, stopped."""
        return STOP_REASONS[self.reason]


@dataclass
class FailedEvent(Event):
    message: str
    step: int
    kind = "failed"
