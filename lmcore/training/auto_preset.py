"""``--preset auto``: a model size and a recipe for a family, a corpus and a budget. Torch-free (the
calibration's measurement is lmcore/training/calibrate.py; its cache is here).

The rule (a first one, fitted to what the presets' tuning measured; scripts/auto_preset_check.py checks it):

- the tokens the run will see, T: ``--steps`` × batch × sequence, or the tokens per second this device
  trains the size at (each size measured once per device when the rule first asks for it, cached in the
  data folder) × ``--minutes``;
- the size: the largest of the family's ``sizes`` (``Family.candidates``) that sees at least
  TOKENS_PER_PARAM tokens per parameter in the budget and has at most PARAMS_PER_TOKEN parameters per
  token of the corpus; the smallest size when none qualifies. First fitted at 4 and 4 (``lstm small``,
  0.87M parameters, saw 3.9M tokens of tinyshakespeare in 2.2 minutes, loss 1.492, its tuning's best),
  then moved to 2 and 6 by scripts/auto_preset_check.py's first rows: on timemachine (153k characters)
  the 4 and 4 rule could only choose 2×192 (1.505 at 1 min, 1.457 at 2.2), where 2×256 with the rule's
  regularisation reached 1.475 (2.7 tokens per parameter, 5.7 parameters per character) and 1.431; 2,
  not 2.5: the calibration of 2×256 on that machine read 36.3k to 39.4k tokens/s, and 2.5 needs 36.5k
  to choose it at 1 minute (at 2.5 the check's auto took 2×192 again: 1.495 against small's 1.482);
  then to 1.3 on a machine half as fast (2-core AMD EPYC, timemachine, 1 minute): the gru's 2×256 at
  1.44 tokens per parameter reached 1.491 where 2×192 reached 1.519, and the transformer's 4×128 at 1.22
  reached 1.704 where 2×64 reached 1.563 (both without dropout); and 4 tokens per parameter where the budget
  reads the text fewer than 5 times (FEW_EPOCHS; first 2.6 and 4, see FEW_EPOCHS_TOKENS_PER_PARAM): on that
  machine, 5 minutes of tinyshakespeare gave the lstm's and the gru's 2×384 1.3 and 1.5 tokens per parameter
  (2.6 and 2.2 epochs), 1.513 and 1.471 against 1.478 and 1.460 for their 2×256 (small presets), and every size
  at 2.0-3.1 read fewer than 4 times lost to the one below it, where timemachine, read 5 times and more, gained
  at 1.3;
- the epochs E = T / corpus tokens set the weight decay: 0.1 up to 10 epochs, 0.2 beyond; the dropout grows
  with the repetition R = E × min(1, parameters / corpus tokens) (a model smaller than its text cannot learn it
  by heart however often it reads it): 0 up to 25, 0.1 up to 35, 0.2 up to 45, 0.3 beyond. First it was
  E alone (0 up to 3, 0.1 up to 20, ...): on a 2-core AMD EPYC, timemachine, that cost the transformer 0.32
  at 1 minute (2×64, 105k parameters, 31 epochs: dropout 0.3 1.886, none 1.563) and 0.08 at 2.2 (4×128,
  13.4 epochs: 0.1 1.617, none 1.534), and the gru 0.03 at 1 (2×192, 8.4 epochs: 1.551 against 1.519);
  up to 25, not 20: the transformer's 2×64 at R 20.2 reached 1.674 with 0.1 against 1.563 with none. A family
  may declare its own table, or one per arch (``Family.dropout_table``): the recurrent and minRNN ones give 0.1
  from 15, the lstm's from 7 (2026-12-06: at R 7.3-10.2 it gained 0.004-0.023 with 0.1 in four pairs, where the
  gru and the rnn at R 6.6-12.2 gained nothing: lmcore/models/recurrent), the minRNN one 0.2 from 30
  (timemachine, 5 minutes: the gru's 2×256 at R 19.9 none 1.536, 0.1 1.453, 0.2 1.429; minLSTM's 3×192 at
  R 18.3 none 1.528, 0.1 1.483; 10 minutes: 0.1 at R 38 1.492, 0.2 at R 34 1.487); read at the size's speed
  without dropout, as the tables were fitted, then, for a timed run, the budget read again at the dropout's own
  speed (the transformer trains a third slower with it on a CPU), a dropout above 0.1 lowered to what that
  budget's repetition gives (KEPT_DROPOUT; one more reading, no loop);
- the size's own batch (halved, down to 8 sequences and 1024 tokens, while a timed run would take fewer than
  MIN_STEPS (1000) steps; below 2048 tokens only while the halved batch trains at 0.9 of the tokens/s at
  least: the two batches timed in turns on one model (``Keeps``), since two rates measured apart differ by
  the machine's drift as much as by the batch),
  sequence length and learning rate; warm-up 100 steps, at most a quarter of the run
  (first 5% of the steps: the gru's 2×256 for 1 minute on the AMD machine, 440 steps at lr 0.01, reached
  1.549 with 23 warm-up steps, twice, and 1.493 with 100, as its small preset warms up); a text
  too short for one batch of them gets a smaller batch, then a shorter sequence (``fit_batch``);
- a timed run whose validation text is long evaluates less often than every 200 steps, so its evaluations take
  about 5% of its time (EVAL_SHARE; twice at least: midway and at its end): on tinyshakespeare's 111,539 validation
  characters every 200 steps took 11-18% of a minute's run;
- on an accelerator (a GPU: many parallel units, which the sizes' CPU batches leave idle) and a timed run,
  the family's ``base`` recipe (its GPU preset: batch 64×256) is a candidate above the size chosen: taken
  when the device trains it FAST_DEVICE (2) times as fast in tokens/s as that size, the budget gives it
  TOKENS_PER_PARAM tokens per parameter and the corpus has a token for every BASE_PARAMS_PER_TOKEN (12) of
  its parameters; dropout and weight decay by the rule as above. On an H200 (tinyshakespeare, 1 minute) the
  sizes alone lost to the base preset by 0.012 (lstm) and 0.014 (transformer). A CPU never measures it;
- no budget given: DEFAULT_MINUTES minutes, stopped earlier at DEFAULT_MAX_EPOCHS passes over the corpus
  (a short text is learnt long before 3 minutes end).

A family trained by counting (not ``trainable``) takes its ``small`` preset, and so does a family that
declares no ``sizes`` (its batch fitted to a short text). What the user gives (``--hidden``, ``--lr``,
``--steps``, ...) overrides what the rule chooses. It is the default preset of a new model (RunSpec)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from ..models import family as family_of, preset_config
from ..store.files import KB, BadFile, read_json, write_json

TOKENS_PER_PARAM = 1.3
# ... on a text the budget reads fewer than FEW_EPOCHS times, FEW_EPOCHS_TOKENS_PER_PARAM (2-core AMD EPYC,
# tinyshakespeare, 5 minutes: lstm 2×384 at 1.3 tokens per parameter (2.55 epochs) 1.513 against its small preset's
# 2×256 1.478, gru 2×384 at 1.5 (2.16 epochs) 1.471 against 1.460; at 2.2 minutes the transformer's 4×128 at 2.0
# 1.749 where 2×64 reached 1.654, the rnn's 2×512 at 2.3-2.5 1.638 where 2×384 reached 1.542, and at 2.0 (the rule
# of the morning) the lstm's 2×256 at 2.2 1.579 and the gru's at 2.5 1.536 where 2×192 reached 1.567 and 1.489;
# on timemachine, read 5 times and more, 1.3 holds). Then 4 and 5 (2026-12-06, same machine): every size read fewer
# than 4 times at 2.0-3.1 tokens per parameter lost to the size below it (the rnn's 2×384 at 1 minute of
# tinyshakespeare, 3.1 tokens per parameter and 1.6 epochs, 1.620-1.648 against its small preset's 2×256, 1.602),
# every one at 5.8-6.2 won (the rnn's 2×384 at 2.2 minutes 1.542, the lstm's and the gru's 2×192 1.567 and 1.489);
# and at 2.6 a calibration that reads a size a little faster crosses the line: that sitting's took the rnn's 2×512 at
# 2.2 minutes again (2.7 tokens per parameter: 1.638 when measured, against 1.542), the transformer's 4×128 at 2.2
# (3.1: 1.749 at 2.0 against 2×64's 1.654), and at 10 minutes the gru's 2×512 (2.6M parameters, 4.1 epochs, 1.6
# tokens per parameter, just past 4 epochs) where its 2×384 reached 1.444
FEW_EPOCHS = 5.0
FEW_EPOCHS_TOKENS_PER_PARAM = 4.0
# a timed run takes at least this many steps, its batch halved down to MIN_BATCH sequences and MIN_TOKENS_PER_STEP
# tokens while the halved batch trains at HALVED_KEEPS of the tokens/s at least (both calibrated): minGRU's 2×128
# (batch 32×128) for 1 minute on the AMD machine took 377 steps and reached 1.700, at batch 16×64 1,000 steps and
# 1.594, at 16×32 1,619 and 1.574 (its tiny preset: 1.632); 500 steps then 1000 (same machine, timemachine: rnn's
# 2×512 for 2.2 minutes at 32×128 1.584, at 16×128 1.533 (small 1.547); minLSTM's 2×128 for 2.2 at 32×128 1.608,
# at 16×128 1.551 (tiny 1.570)). Halving costs speed where a step's cost is its length, not its tokens (a GRU's
# sequential steps): calibrated at half the batch, minLSTM and minGRU 2×128 (16×128 → 8×128) and the lstm's
# 2×192 (24×64 → 12×64) kept 0.93-1.17 of their tokens/s, the transformer's 4×128 0.89-0.91, the rnn's 2×384
# (32×64 → 16×64) 0.72-0.75 and the gru's 2×192 0.53-0.73 (two readings each); at 1 minute of timemachine minLSTM
# at 8×128 reached 1.615 where 16×128 gave 1.685 (tiny: 1.643), minGRU 1.582 against 1.640, while the gru
# at 16×64 on tinyshakespeare reached 1.737 where 32×64 gave 1.610 (600 steps at 10.5k tokens/s: no more steps);
# at 0.8, a calibration that read the gru's 16×64 at 0.80 of 32×64 halved it: 1.674 (741 steps, 12.2k tokens/s).
# The rule, at 1 minute of timemachine: minLSTM 8×128 1.566, minGRU 8×128 1.563 (tiny 1.643 and 1.632); the
# transformer's 4×128 at 2.2 minutes of tinyshakespeare: 8×128 1.766, 1.729, 16×128 1.749, 1.747 (a tie).
# Down to 2048 tokens a step a batch is halved whatever its speed: the rnn's 32×128 → 16×128 above (1.584 →
# 1.533) lost speed too (its 32×64 → 16×64: 0.72-0.75) and gained by the steps.
# The fraction kept is timed with both batches in turns on one model (calibrate.measure_keeps), not as two rates
# measured apart: the AMD machine's cache of 2026-12-05 held the gru's 2×192 at 16×64 at 1.33x the tokens/s of
# 32×64 (the two measured in different sittings, the machine's speed drifting ±20%), where in turns it read
# 0.69-0.74 three times (the gru's 2×256 0.73-0.78, the rnn's 2×384 0.78-0.81, minLSTM's 2×128 16×128 → 8×128
# 0.94-0.97)
MIN_STEPS = 1000
MIN_BATCH = 8
MIN_TOKENS_PER_STEP = 1024
SPEED_CHECKED_BELOW = 2048
HALVED_KEEPS = 0.9
PARAMS_PER_TOKEN = 6.0
# by repetition (epochs × min(1, parameters / corpus tokens); see the docstring): lstm on tinyshakespeare,
# 5 min (R 10-12), 1.447 with dropout 0.1, 1.47 with 0.2, 1.451 with none; on timemachine (R 18) 0.1 and none
# within 0.01, at R 40 0.2 1.445 and 0.3 1.431 against none 1.49-1.51 (quiet 2-core Xeon, 2026-12-03/04)
DROPOUT_BY_REPETITION = ((25.0, 0.0), (35.0, 0.1), (45.0, 0.2), (math.inf, 0.3))
WEIGHT_DECAY_BY_EPOCHS = ((10.0, 0.1), (math.inf, 0.2))
# a timed run's dropout is read at the size's speed without it, as the tables were fitted; with it the run trains
# slower (the transformer's 4×128 on the AMD machine: 16.9k tokens/s at 0, 11.8k at 0.1, 10.6k at 0.3), so a
# dropout above KEPT_DROPOUT is lowered to what the run's repetition at its own speed gives, KEPT_DROPOUT at least
# (timemachine, 10 minutes: the rule's 0.3, read at R 63.5 where the run saw 35 epochs, 1.490; 0.2 1.423, 0.1 1.424;
# at 5 minutes 0.1, the best measured there (1.453), where its own speed reads R 17: not lowered to none)
KEPT_DROPOUT = 0.1
# a timed run evaluates every EVAL_EVERY steps (the loop's default) or, where its validation text is long, less often:
# its evaluations take about EVAL_SHARE of its time, each reading the validation tokens at EVAL_SPEEDUP times the
# training tokens/s (forward only), and it evaluates twice at least (midway, and at its end). 2-core AMD EPYC,
# 1 minute of tinyshakespeare (111,539 validation characters, every 200 steps): the evaluations took 11-18% of the
# run (1.1-2.2 s each: 4-6 of them), the rnn's 2×384 read them at 2.2x its training tokens/s; on timemachine
# (17,897) 2-4% (0.4-0.9 s each), where the rule keeps 200
EVAL_EVERY = 200
EVAL_SHARE = 0.05
EVAL_SPEEDUP = 2.0
MIN_EVALS = 2
DEFAULT_MINUTES = 3.0        # the budget when none is given: the small presets' run on a 2-core CPU
DEFAULT_MAX_EPOCHS = 100.0   # ... stopped at this many passes over the corpus
BASE_PRESET = "small"        # the preset the chosen sizes are written over (and a counted family's)
# on an accelerator, the family's GPU recipe is a candidate above the size chosen: taken when the device trains it
# FAST_DEVICE times as fast (tokens/s) as that size and the corpus has a token for every BASE_PARAMS_PER_TOKEN of its
# parameters (H200, tinyshakespeare, 1 minute: the lstm's 2×512 at its size's batch 32×128 1.444, the base preset
# 1.432, the rule's base recipe (dropout 0.2) 1.406; the transformer's 6×256 at 16×256 1.464, base's 6×384 at
# 64×256, 10.7 parameters per token, 1.450 -- but its calibration read base 1.5x as fast, not the runs' 4x)
BIG_PRESET = "base"
FAST_DEVICE = 2.0
BASE_PARAMS_PER_TOKEN = 12.0
CACHE_FILE = "calibration.json"
CACHE_LIMIT = 64 * KB

Rate = Callable[[int, dict], float]  # (parameters, size) -> tokens per second on this device (may measure it)
# (parameters, size at a batch, a {"batch_size", "seq_len"} half of it) -> the fraction of its tokens per second the
# size keeps at the half, both timed in turns on this device (may measure it)
Keeps = Callable[[int, dict, dict], float]


@dataclass(frozen=True)
class Choice:
    """What ``auto`` chose: model options and recipe fields (over the ``small`` preset) and why."""

    arch: str
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    params: int = 0
    tokens: int = 0              # the tokens the run will see
    epochs: float = 0.0          # that many times the corpus
    line: str = ""               # what it chose and why, in one line


def choose(arch: str, vocab_size: int, corpus_tokens: int, *, steps: int | None = None,
           minutes: float | None = None, rate: Rate | None = None, corpus: str = "the corpus",
           given: dict | None = None, max_epochs: float | None = None, why: str = "",
           accelerator: bool = False, keeps: Keeps | None = None, val_tokens: int = 0) -> Choice:
    """The size and recipe for ``arch`` on a corpus of ``corpus_tokens`` training tokens (``vocab_size``
    tokens in its vocabulary) and a budget of ``steps`` and/or ``minutes`` (``rate``: tokens per second
    of a size, needed for ``minutes``), and at most ``max_epochs`` passes over the corpus (then
    ``train["steps"]`` says where the run stops). ``given``: model options the user fixed (they count
    in the sizes' parameters). ``why``: said first in the line (how the budget was chosen).
    ``accelerator``: the device is a GPU (or another device of many parallel units), where the family's
    BIG_PRESET recipe is a candidate above the size chosen (see the module's docstring). ``keeps``: the
    fraction of a size's tokens/s a halved batch keeps (without it, the ratio of the two batches' ``rate``).
    ``val_tokens``: the validation tokens each evaluation reads (a timed run with many evaluates less often)."""
    fam = family_of(arch)
    if not fam.trainable:
        return Choice(arch, line=f"auto: {arch} is counted in one pass, not trained: its {BASE_PRESET} preset")
    n = max(1, int(corpus_tokens))
    cap = max_epochs * n if max_epochs else None
    rows = [_row(arch, vocab_size, size, given) for size in fam.candidates(arch)]
    pick = rows[0]
    for row in reversed(rows[1:]):  # the largest that qualifies (its speed asked for only when the rest do)
        size, _, params, per_step = row
        if params <= PARAMS_PER_TOKEN * n and 2 * per_step <= n and \
                enough(tokens_seen(per_step, steps, minutes, rate, params, size, cap), params, n):
            pick = row
            break
    size, cfg, params, _ = pick
    per_s = rate(params, size) if rate is not None and minutes is not None else None
    if not fam.sizes.get(arch):
        return _small_preset(fam, arch, cfg, params, n, Budget(steps, minutes, per_s, cap, why), corpus)
    why_base = ""
    recipe = _big_recipe(fam, arch) if accelerator and per_s else None
    if recipe is not None:
        b_size, b_cfg, b_params, b_per_step = base = _row(arch, vocab_size, recipe, given)
        if b_params <= BASE_PARAMS_PER_TOKEN * n and 2 * b_per_step <= n:
            b_per_s = rate(b_params, b_size)
            if b_per_s >= FAST_DEVICE * per_s and \
                    enough(tokens_seen(b_per_step, steps, minutes, rate, b_params, b_size, cap), b_params, n):
                why_base = (f"its {BIG_PRESET} recipe (this device trains it {b_per_s / per_s:.1f}x as fast as "
                            f"{fam.size(cfg) or fam.describe(cfg)}, batch {size['train']['batch_size']}×"
                            f"{size['train']['seq_len']}): ")
                (size, cfg, params, _), per_s = base, b_per_s
    budget = Budget(steps, minutes, per_s, cap, why)
    timed = rate if minutes is not None else None
    return _choice(fam, arch, size, cfg, params, n, budget, corpus, given or {}, why_base,
                   _kept(rate, keeps, size, params) if minutes is not None else None, val_tokens, timed)


def _kept(rate: Rate | None, keeps: Keeps | None, size: dict, params: int) -> Callable[[dict, dict], float] | None:
    """(a batch, its half) -> the fraction of the size's tokens/s kept at the half (each {"batch_size",
    "seq_len"}): ``keeps``, else the ratio of the calibrated rates; None without a rate."""
    if rate is None:
        return None

    def at(train: dict) -> dict:
        return {**size, "train": {**size["train"], **train}}
    if keeps is not None:
        return lambda train, half: keeps(params, at(train), half)
    return lambda train, half: rate(params, at(half)) / max(rate(params, at(train)), 1e-9)


def _row(arch: str, vocab_size: int, size: dict, given: dict | None) -> tuple:
    """A size as the rule compares it: (size, config, parameters, tokens a step)."""
    cfg = preset_config(arch, BASE_PRESET, vocab_size=vocab_size, **{**size["model"], **(given or {})})
    return size, cfg, count_params(cfg), size["train"]["batch_size"] * size["train"]["seq_len"]


def _big_recipe(fam, arch: str) -> dict | None:
    """The family's BIG_PRESET recipe as a size ({"model", "train"} without steps), or None."""
    try:
        recipe = fam.preset(arch, BIG_PRESET)
    except ConfigError:  # a family without one
        return None
    train = {k: v for k, v in recipe["train"].items() if k != "steps"}
    if "batch_size" not in train or "seq_len" not in train:
        return None
    return {"model": dict(recipe["model"]), "train": train}


def enough(tokens: int, params: int, corpus_tokens: int) -> bool:
    """Whether a budget of ``tokens`` trains ``params`` parameters: TOKENS_PER_PARAM tokens each, or
    FEW_EPOCHS_TOKENS_PER_PARAM where that reads the corpus fewer than FEW_EPOCHS times."""
    few = tokens < FEW_EPOCHS * max(1, corpus_tokens)
    return tokens >= (FEW_EPOCHS_TOKENS_PER_PARAM if few else TOKENS_PER_PARAM) * params


def tokens_seen(per_step: int, steps: int | None, minutes: float | None, rate: Rate | None, params: int,
                size: dict, cap: float | None = None) -> int:
    """The tokens a run sees: its steps × tokens per step, or its minutes at the device's rate (the
    fewer when both are given), at most ``cap``."""
    seen = []
    if steps is not None:
        seen.append(steps * per_step)
    if minutes is not None and rate is not None:
        seen.append(int(rate(params, size) * minutes * 60))
    if cap is not None and seen:
        seen.append(int(cap))
    return min(seen) if seen else 0


@dataclass(frozen=True)
class Budget:
    """A run's budget as ``choose`` reads it: steps, minutes at ``per_s`` tokens a second, at most ``cap``
    tokens; ``why``: how it was chosen."""

    steps: int | None
    minutes: float | None
    per_s: float | None
    cap: float | None
    why: str = ""

    def seen(self, per_step: int) -> tuple[int, str, int | None]:
        """(the tokens the run sees at ``per_step`` tokens a step, how (words), the steps where the cap
        stops it, or None)."""
        by_steps = self.steps * per_step if self.steps is not None else math.inf
        by_time = self.per_s * self.minutes * 60 if self.per_s is not None else math.inf
        cap = self.cap if self.cap is not None else math.inf
        tokens = min(by_steps, by_time, cap)
        if tokens == math.inf:
            return 0, f"{self.minutes:g} min at an unknown speed" if self.minutes is not None else "no budget", None
        if cap < min(by_steps, by_time):
            stop = max(1, math.ceil(cap / per_step))
            would = (f"{short(self.per_s * 60)} tokens/min here → {self.minutes:g} min would see {short(by_time)} "
                     f"tokens, capped at " if by_time < by_steps else
                     f"{self.steps:,} steps would see {short(by_steps)} tokens, capped at " if by_steps < math.inf
                     else "")
            return int(cap), f"{would}{stop:,} steps × {per_step:,} tokens = {short(stop * per_step)} tokens", stop
        if by_time <= by_steps:
            return int(tokens), (f"{short(self.per_s * 60)} tokens/min here → {self.minutes:g} min sees "
                                 f"{short(tokens)} tokens"), None
        return int(tokens), f"{self.steps:,} steps × {per_step:,} tokens = {short(tokens)} tokens", None


def fit_batch(batch: int, seq_len: int, corpus_tokens: int) -> tuple[int, int]:
    """A batch and sequence length that a text of ``corpus_tokens`` holds at least once: the batch halved
    down to 4, then the sequence down to 16, then either down to 1 (a text too short even then is
    refused where batches are made)."""
    while batch * seq_len + seq_len + 1 > corpus_tokens and (batch > 1 or seq_len > 1):
        if batch > 4 or (seq_len <= 16 and batch > 1):
            batch = max(1, batch // 2)
        else:
            seq_len = max(1, seq_len // 2)
    return batch, seq_len


def _fitted(train: dict, n: int) -> str:
    """``train``'s batch fitted to a corpus of ``n`` tokens (changed in place); " (shortened for the short
    text)" when it changed."""
    b, s = fit_batch(train["batch_size"], train["seq_len"], n)
    if (b, s) == (train["batch_size"], train["seq_len"]):
        return ""
    train["batch_size"], train["seq_len"] = b, s
    return " (made smaller to fit the short text)"


def _choice(fam, arch, size, cfg, params, n, budget: Budget, corpus, given: dict, why_base: str = "",
            kept: Callable[[dict, dict], float] | None = None, val_tokens: int = 0, rate: Rate | None = None
            ) -> Choice:
    """The recipe for a size: its batch fitted to the text and halved for a short timed run, then the rest by the
    tokens the budget sees (``_recipe``); where the rule gives dropout and ``rate`` times the run, the budget read
    again at that dropout (``_at_its_dropout``)."""
    train = {k: v for k, v in size["train"].items() if k != "steps"}
    window = fam.window(cfg)  # a context given smaller than the size's: sequences as long as it
    if window is not None and train["seq_len"] > window:
        train["seq_len"] = window
    fitted = _fitted(train, n)
    halved, budget = _more_steps(train, budget.seen(_per_step(train))[0], budget, kept)
    fitted += halved
    choice = _recipe(fam, arch, size["model"], train, cfg, params, n, budget, corpus, given, why_base, fitted,
                     val_tokens)
    if rate is None or budget.per_s is None or not choice.model.get("dropout") or given.get("dropout") is not None:
        return choice
    return _at_its_dropout(fam, arch, size["model"], train, cfg, params, n, budget, corpus, given, why_base, fitted,
                           val_tokens, rate, choice)


def _at_its_dropout(fam, arch, model: dict, train: dict, cfg, params, n, budget: Budget, corpus, given: dict,
                    why_base: str, fitted: str, val_tokens: int, rate: Rate, first: Choice) -> Choice:
    """A timed run with the dropout the rule gave (``first``) at the size's dropout-free speed: its budget read again at
    that dropout's own speed (on a CPU the transformer trains a third slower with it: attention's dropout leaves
    the fused kernel), and a dropout above KEPT_DROPOUT lowered to what that budget's repetition gives (not
    below it), its speed then read at the lower one. One more reading at most, no loop; ``first`` where that
    dropout's speed cannot be measured."""
    def budget_at(d: float) -> Budget:
        return replace(budget, per_s=rate(params, {"model": {**model, "dropout": d}, "train": dict(train)}))

    table = dropout_table(fam, arch)
    dropout = first.model["dropout"]
    slower = budget_at(dropout)
    if not slower.per_s > 0:  # not measured (out of memory)
        return first
    chosen, why = dropout, ""
    if dropout > KEPT_DROPOUT:
        lower = max(KEPT_DROPOUT, by_epochs(table, repetition(slower.seen(_per_step(train))[0] / n, params, n)))
        if lower < dropout:
            why = f" (the rule's {dropout:g} trains it at {slower.per_s / budget.per_s:.0%} of its speed without)"
            chosen, slower = lower, budget_at(lower)
            if not slower.per_s > 0:
                return first
    return _recipe(fam, arch, model, train, cfg, params, n, slower, corpus, given, why_base, fitted, val_tokens,
                   chosen, why)


def _recipe(fam, arch, model: dict, train: dict, cfg, params, n, budget: Budget, corpus, given: dict, why_base: str,
            fitted: str, val_tokens: int, dropout: float | None = None, dropout_why: str = "") -> Choice:
    """The choice at ``train``'s batch: the tokens ``budget`` sees, the epochs, the dropout (``dropout``, else by
    the repetition), the weight decay, the warm-up, the steps between evaluations and the line (``why_base`` said
    before the size, ``fitted`` after its batch)."""
    train = dict(train)
    tokens, how, stop = budget.seen(_per_step(train))
    epochs = tokens / n
    if dropout is None:
        dropout = by_epochs(dropout_table(fam, arch), repetition(epochs, params, n))
    train["weight_decay"] = by_epochs(WEIGHT_DECAY_BY_EPOCHS, epochs)
    train["warmup"] = min(100, max(1, round(tokens / _per_step(train) / 4)))
    if stop is not None:
        train["steps"] = stop
    every = eval_every(budget, val_tokens, _per_step(train), tokens)
    if every != EVAL_EVERY:
        train["eval_every"] = every
    model = dict(model)
    if "dropout" in fam.option_names():
        model["dropout"] = dropout
    said = f"dropout {dropout:g}{dropout_why}"
    if given.get("dropout") is not None:  # the user's, kept over the rule's
        said = f"dropout {given['dropout']:g} (given; the rule says {dropout:g})"
    line = (f"auto: {budget.why}{how} = {epochs:.3g} epochs of {corpus}: {why_base}{fam.size(cfg) or fam.describe(cfg)} "
            f"({short(params)} parameters), batch {train['batch_size']}×{train['seq_len']}{fitted}, "
            f"lr {train['lr']:g}, {said}, weight decay {train['weight_decay']:g}"
            + (f", evaluated every {every:,} steps (the validation text is long)" if every != EVAL_EVERY else ""))
    return Choice(arch, model, train, params, tokens, epochs, line)


def eval_every(budget: Budget, val_tokens: int, per_step: int, tokens: int) -> int:
    """The steps between a run's evaluations: EVAL_EVERY, or for a timed run whose evaluations of
    ``val_tokens`` would take more than EVAL_SHARE of its time, as many as keep them to it (each reading at
    EVAL_SPEEDUP times the training tokens/s), MIN_EVALS evaluations at least in its ``tokens``."""
    if budget.minutes is None or budget.steps is not None or val_tokens <= 0:
        return EVAL_EVERY
    spaced = math.ceil(val_tokens / (EVAL_SPEEDUP * EVAL_SHARE) / per_step)
    return max(EVAL_EVERY, min(spaced, tokens // per_step // MIN_EVALS))


def _more_steps(train: dict, tokens: int, budget: Budget, kept: Callable[[dict, dict], float] | None
                ) -> tuple[str, Budget]:
    """A short timed run that would take fewer than MIN_STEPS steps: its batch halved (changed in place),
    down to MIN_BATCH sequences and MIN_TOKENS_PER_STEP tokens, until it takes them; below
    SPEED_CHECKED_BELOW tokens a step only while the halved batch keeps HALVED_KEEPS of the tokens/s at
    least (``kept(batch, half)``: the fraction, calibrated); what was done, for the line, or "", and the
    budget at the batch's speed."""
    before = train["batch_size"]
    if budget.steps is not None or budget.per_s is None or kept is None:  # steps given: their tokens are the budget
        return "", budget
    while tokens / _per_step(train) < MIN_STEPS and train["batch_size"] // 2 >= MIN_BATCH and \
            train["batch_size"] // 2 * train["seq_len"] >= MIN_TOKENS_PER_STEP:
        half = {"batch_size": train["batch_size"] // 2, "seq_len": train["seq_len"]}
        if _per_step(half) < SPEED_CHECKED_BELOW:
            fraction = kept({"batch_size": train["batch_size"], "seq_len": train["seq_len"]}, half)
            if not fraction >= HALVED_KEEPS:
                break
            budget = replace(budget, per_s=budget.per_s * fraction)
            tokens = budget.seen(_per_step(half))[0]
        train["batch_size"] = half["batch_size"]
    if train["batch_size"] == before:
        return "", budget
    return f" (halved from {before}: a short run takes {MIN_STEPS} steps at least)", budget


def _small_preset(fam, arch, cfg, params, n, budget: Budget, corpus) -> Choice:
    """A family that declares no sizes: its small preset, as it is (its batch fitted to a short text)."""
    recipe = fam.preset(arch, BASE_PRESET)["train"]
    train = {"batch_size": recipe["batch_size"], "seq_len": recipe["seq_len"]}
    fitted = _fitted(train, n)
    tokens, how, stop = budget.seen(_per_step(train))
    train_b, train_s = train["batch_size"], train["seq_len"]
    if not fitted:
        train = {}
    if stop is not None:
        train["steps"] = stop
    line = (f"auto: {budget.why}{arch} declares no sizes to choose from: its {BASE_PRESET} preset "
            f"({short(params)} parameters), batch {train_b}×{train_s}{fitted}; {how} = {tokens / n:.3g} epochs of {corpus}")
    return Choice(arch, {}, train, params, tokens, tokens / n, line)


def _per_step(train: dict) -> int:
    return train["batch_size"] * train["seq_len"]


def repetition(epochs: float, params: int, corpus_tokens: int) -> float:
    """How hard a run can learn its text by heart: its epochs, times the parameters per corpus token when
    there are fewer parameters than tokens."""
    return epochs * min(1.0, params / max(1, corpus_tokens))


def dropout_table(fam, arch: str) -> tuple:
    """The ((up to R, dropout), ...) table ``arch`` reads: its family's (``Family.dropout_table``), else the rule's."""
    return fam.dropout_table(arch) or DROPOUT_BY_REPETITION


def by_epochs(table, epochs: float) -> float:
    """The value of ``table`` ((up to epochs, value), ...) at ``epochs``."""
    return next(value for limit, value in table if epochs <= limit)


def count_params(cfg) -> int:
    """A model's parameters from its config alone (its family's tensor shapes; tied weights once)."""
    shapes = cfg.family.shapes(cfg) or {}
    total = sum(math.prod(s) for s in shapes.values())
    if "lm_head.weight" in shapes and "wte.weight" in shapes and cfg.get("tie_weights", False):
        total -= math.prod(shapes["lm_head.weight"])
    return int(total)


def short(n: float) -> str:
    """4100000 -> "4.1M", 153000 -> "153k", 999600 -> "1M" (rounded first, then given its unit)."""
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        value = float(f"{n / div:.3g}")
        if abs(value) >= 1:
            return f"{value:g}{unit}"
    return f"{n:.3g}"


# ---------------------------------------------------------------- the calibration's cache
RATES, KEEPS = "tokens_per_s", "halved_keeps"  # the cache's two tables: tokens per second, fractions kept


def cached_rates(home) -> dict[str, float]:
    """The tokens per second measured on this machine, by key (device, size): ``home``/calibration.json;
    a damaged or hostile file reads as empty (the next calibration rewrites it)."""
    return _cache(home)[RATES]


def _cache(home) -> dict[str, dict[str, float]]:
    """calibration.json's tables ({RATES: {key: tokens/s}, KEEPS: {key: fraction}}), each entry checked: a
    damaged or hostile file, table or entry reads as absent."""
    try:
        data = read_json(Path(home) / CACHE_FILE, CACHE_LIMIT)
    except (FileNotFoundError, BadFile, OSError):
        data = {}
    tables = {}
    for name in (RATES, KEEPS):
        table = data.get(name) if isinstance(data, dict) else None
        tables[name] = {k: float(v) for k, v in table.items() if isinstance(k, str) and len(k) < 400
                        and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf} \
            if isinstance(table, dict) else {}
    return tables


def calibrated_rate(home, key: str, measure: Callable[[], float]) -> float:
    """The tokens per second for ``key``: from the cache, else ``measure()``d now and written there."""
    return _calibrated(home, RATES, key, measure, "tokens per second")


def calibrated_keeps(home, key: str, measure: Callable[[], float]) -> float:
    """The fraction of its tokens per second a size keeps at a halved batch (``key``: device, size, both
    batches): from the cache, else ``measure()``d now and written there."""
    return _calibrated(home, KEEPS, key, measure, "as the fraction a halved batch keeps")


def _calibrated(home, table: str, key: str, measure: Callable[[], float], what: str) -> float:
    tables = _cache(home)
    if key in tables[table]:
        return tables[table][key]
    value = float(measure())
    if not 0 < value < math.inf:
        raise ValueError(f"calibration measured {value} {what}")
    tables[table][key] = value
    try:
        write_json(Path(home) / CACHE_FILE, {"format": 1, **tables})
    except OSError:
        pass  # a read-only data folder: the next run measures again
    return value
