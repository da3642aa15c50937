"""--preset auto: the rule's choices (torch-free), the calibration's cache, the one line that says why, and
the preset end to end through the command line and lmcore.train (tiny step budgets)."""
from __future__ import annotations

import json
import math

import pytest

import lmcore
from lmcore.cli.main import main
from lmcore.models import families, family
from lmcore.store.model_store import Store
from lmcore.training import auto_preset
from lmcore.training.auto_preset import calibrated_rate, choose

TRAINED = [a for f in families() if f.trainable for a in f.archs if f.sizes.get(a)]  # the rule chooses a size
UNSIZED = [a for f in families() if f.trainable for a in f.archs if not f.sizes.get(a)]  # no sizes: small
COUNTED = [next(iter(f.archs)) for f in families() if not f.trainable]
SHAKESPEARE, TIMEMACHINE = 1_000_000, 153_000  # training characters


def rate(params, size):  # a device that trains 0.9M parameters at 30k tokens/s, slower as sizes grow
    return 30_000 * 900_000 / params


@pytest.mark.parametrize("arch", TRAINED)
@pytest.mark.parametrize("corpus", [TIMEMACHINE, SHAKESPEARE])
def test_more_minutes_never_choose_a_smaller_model_or_a_smaller_run(arch, corpus):
    choices = [choose(arch, 65, corpus, minutes=m, rate=rate) for m in (0.2, 1, 2.2, 5, 10, 30)]
    for a, b in zip(choices, choices[1:]):
        assert b.params >= a.params
        assert b.params * b.tokens >= a.params * a.tokens * 0.999  # the run's compute grows with its budget


@pytest.mark.parametrize("arch", TRAINED)
def test_more_steps_never_see_fewer_tokens(arch):
    choices = [choose(arch, 65, SHAKESPEARE, steps=s) for s in (10, 100, 1000, 10_000, 100_000)]
    for a, b in zip(choices, choices[1:]):
        assert b.tokens >= a.tokens and b.params >= a.params


@pytest.mark.parametrize("arch", TRAINED)
def test_more_epochs_bring_more_regularisation(arch):
    big, small = (choose(arch, 65, n, minutes=5, rate=rate) for n in (50_000_000, 60_000))
    assert small.epochs > big.epochs
    assert small.train["weight_decay"] >= big.train["weight_decay"]
    assert small.model.get("dropout", 0) >= big.model.get("dropout", 0)
    assert small.model.get("dropout", 1) > 0  # sixty thousand tokens seen many times: regularised


@pytest.mark.parametrize("arch", TRAINED)
def test_dropout_follows_what_the_model_can_learn_by_heart_not_the_epochs_alone(arch):
    def at_30_epochs(corpus_tokens):
        c = choose(arch, 65, corpus_tokens, steps=30 * corpus_tokens, max_epochs=30)  # stopped at 30 epochs
        assert round(c.epochs) == 30
        return c

    larger_text, smaller_text = at_30_epochs(50_000_000), at_30_epochs(500_000)
    assert larger_text.params < 50_000_000  # even the largest size is smaller than its text
    assert larger_text.model["dropout"] == 0  # 30 readings of a text it cannot hold
    assert smaller_text.params > 500_000 and smaller_text.model["dropout"] > 0  # 30 readings of a text it can


def test_a_family_may_give_dropout_sooner_than_the_rules_own_table():
    """The recurrent (its gru) and minRNN families declare dropout from repetition 15 where the rule's own table
    starts at 25: 20 readings of a text smaller than the model give a GRU and a minLSTM dropout 0.1 and a
    transformer none, each in the line; 32 readings give the minLSTM 0.2 and the GRU still 0.1."""
    def at_20_epochs(arch):
        c = choose(arch, 65, TIMEMACHINE, steps=20 * TIMEMACHINE, max_epochs=20)
        assert round(c.epochs) == 20 and c.params > TIMEMACHINE  # repetition 20
        return c

    gru, minlstm, transformer = at_20_epochs("gru"), at_20_epochs("minlstm"), at_20_epochs("transformer")
    assert gru.model["dropout"] == 0.1 and "dropout 0.1," in gru.line
    assert minlstm.model["dropout"] == 0.1 and "dropout 0.1," in minlstm.line
    assert transformer.model["dropout"] == 0 and "dropout 0," in transformer.line
    assert choose("gru", 65, TIMEMACHINE, steps=10 * TIMEMACHINE, max_epochs=10).model["dropout"] == 0
    assert choose("mingru", 65, TIMEMACHINE, steps=10 * TIMEMACHINE, max_epochs=10).model["dropout"] == 0
    # and the minRNN family 0.2 from 30, where the recurrent one keeps 0.1 up to 35
    gru, minlstm = (choose(arch, 65, TIMEMACHINE, steps=32 * TIMEMACHINE, max_epochs=32) for arch in ("gru", "minlstm"))
    assert gru.params > TIMEMACHINE and minlstm.params > TIMEMACHINE  # repetition 32
    assert gru.model["dropout"] == 0.1 and minlstm.model["dropout"] == 0.2 and "dropout 0.2," in minlstm.line


def test_an_arch_may_declare_its_own_dropout_table_in_its_family():
    """The recurrent family gives its lstm dropout 0.1 from repetition 7, where its gru and rnn keep none up to 15:
    8 readings of a text smaller than the model give the lstm 0.1 (in its line) and the gru and the rnn none; 6
    readings give the lstm none; 20 give each 0.1. An arch its family's mapping leaves out reads the rule's own
    table."""
    def at(arch, epochs):
        c = choose(arch, 65, TIMEMACHINE, steps=epochs * TIMEMACHINE, max_epochs=epochs)
        assert round(c.epochs) == epochs and c.params > TIMEMACHINE  # repetition = epochs
        return c.model["dropout"], c.line

    dropout, line = at("lstm", 8)
    assert dropout == 0.1 and "dropout 0.1," in line
    assert at("gru", 8)[0] == 0 and at("rnn", 8)[0] == 0 and at("lstm", 6)[0] == 0
    assert {at(arch, 20)[0] for arch in ("rnn", "gru", "lstm")} == {0.1}
    fam = family("lstm")
    assert fam.dropout_table("lstm")[0] == (7.0, 0.0) and fam.dropout_table("gru")[0] == (15.0, 0.0)
    assert fam.dropout_table("an arch it does not map") == ()
    assert family("transformer").dropout_table("transformer") == ()  # the rule's own: 0 up to 25


def dropout_slows(asked, cost=1.2):
    """A device where dropout D trains at 1 - ``cost`` × D of the speed without it (the transformer on a CPU: its
    attention's dropout leaves the fused kernel); the dropouts asked for kept in ``asked``."""
    def at(params, size):
        d = size["model"].get("dropout", 0)
        asked.append(d)
        return rate(params, size) * (1 - cost * d)
    return at


def test_a_dropout_that_slows_the_run_is_read_at_its_own_speed_and_lowered_to_what_that_speed_gives():
    """The rule reads the dropout at the size's speed without it (as its tables were fitted); above 0.1 it reads the
    budget again at that dropout and lowers it to what the repetition at that speed gives, then times the run at the
    lower one: the tokens and epochs are those the run sees, and the line says why."""
    asked = []
    plain = choose("transformer", 65, TIMEMACHINE, minutes=5, rate=rate, corpus="timemachine")
    c = choose("transformer", 65, TIMEMACHINE, minutes=5, rate=dropout_slows(asked), corpus="timemachine")
    assert plain.model["dropout"] == 0.3 and plain.epochs > 45  # repetition over 45 at the speed without
    assert c.model["dropout"] == 0.2 and asked[-2:] == [0.3, 0.2]
    assert "dropout 0.2 (the rule's 0.3 trains it at 64% of its speed without)," in c.line
    assert 35 < plain.epochs * 0.64 <= 45  # at 0.3's own speed: 0.2 by the table
    assert abs(c.tokens - rate(c.params, None) * 0.76 * 5 * 60) <= 1  # timed at 0.2 (one reading more, no loop)
    assert f"= {c.epochs:.3g} epochs of timemachine" in c.line
    assert (c.params, c.train["batch_size"], c.train["seq_len"]) == \
        (plain.params, plain.train["batch_size"], plain.train["seq_len"])
    asked.clear()
    longer = choose("transformer", 65, TIMEMACHINE, minutes=10, rate=dropout_slows(asked))
    assert longer.model["dropout"] == 0.3 and asked[-1] == 0.3 and "(the rule's" not in longer.line  # still over 45
    assert abs(longer.tokens - rate(longer.params, None) * 0.64 * 10 * 60) <= 1


def test_dropout_01_is_kept_where_its_own_speed_would_read_none_and_a_speed_not_measured_keeps_the_first_reading():
    """0.1 is not lowered (the transformer's 5 minutes of timemachine: 0.1 the best measured, where its own speed read
    repetition 17), but the run's tokens are read at it; a dropout whose speed cannot be measured (the calibration
    failed: 0) leaves the choice read at the speed without it."""
    asked = []
    plain = choose("transformer", 65, TIMEMACHINE, minutes=2.2, rate=rate)
    c = choose("transformer", 65, TIMEMACHINE, minutes=2.2, rate=dropout_slows(asked, cost=2))
    assert plain.model["dropout"] == 0.1 and c.model["dropout"] == 0.1 and asked[-1] == 0.1
    assert c.epochs * min(1, c.params / TIMEMACHINE) < 25  # none by the table at its own speed
    assert abs(c.tokens - plain.tokens * 0.8) <= 1 and "dropout 0.1," in c.line

    def unmeasured(params, size):
        return 0.0 if size["model"].get("dropout") else rate(params, size)
    for minutes in (2.2, 5):
        assert choose("transformer", 65, TIMEMACHINE, minutes=minutes, rate=unmeasured) == \
            choose("transformer", 65, TIMEMACHINE, minutes=minutes, rate=rate)


def test_a_dropout_given_is_not_read_again_and_a_run_of_steps_never_reads_a_speed():
    asked = []
    given = choose("transformer", 65, TIMEMACHINE, minutes=5, rate=dropout_slows(asked), given={"dropout": 0.3})
    assert set(asked) == {0} and "dropout 0.3 (given; the rule says 0.3)" in given.line  # the calibration's cfg has it
    by_steps = choose("transformer", 65, TIMEMACHINE, steps=20_000, rate=dropout_slows(asked))
    assert by_steps.model["dropout"] == 0.3 and set(asked) == {0}


@pytest.mark.parametrize("arch", TRAINED)
def test_the_learning_rate_warms_up_over_100_steps_or_a_quarter_of_a_short_run(arch):
    assert choose(arch, 65, SHAKESPEARE, steps=10_000).train["warmup"] == 100
    assert choose(arch, 65, SHAKESPEARE, steps=200).train["warmup"] == 50
    assert choose(arch, 65, SHAKESPEARE, steps=2).train["warmup"] == 1


@pytest.mark.parametrize("arch", TRAINED)
def test_a_short_timed_run_halves_its_batch_to_take_enough_steps(arch):
    declared = {(s["train"]["batch_size"], s["train"]["seq_len"]) for s in family(arch).candidates(arch)}
    short = choose(arch, 65, SHAKESPEARE, minutes=0.02, rate=rate)  # a second or so: a few hundred thousand tokens
    b, seq = short.train["batch_size"], short.train["seq_len"]
    floor = auto_preset.MIN_TOKENS_PER_STEP
    assert b >= 8 and (b * seq >= floor or (b, seq) in declared) and f"batch {b}×{seq}" in short.line
    assert short.tokens / (b * seq) >= auto_preset.MIN_STEPS or b // 2 < 8 or b // 2 * seq < floor
    if (b, seq) in declared:  # no room to halve (the lstm takes 24×64)
        assert b // 2 * seq < floor and "halved" not in short.line
    else:
        assert "a short run takes 1000 steps at least" in short.line
    assert arch not in ("mingru", "minlstm") or (b, seq) not in declared
    by_steps = choose(arch, 65, SHAKESPEARE, steps=20)  # steps given: the size's own batch
    assert (by_steps.train["batch_size"], by_steps.train["seq_len"]) in declared and "halved" not in by_steps.line


@pytest.mark.parametrize("arch", TRAINED)
def test_a_batch_is_halved_only_where_the_device_trains_the_half_nearly_as_fast(arch):
    def slower_halves(params, size):  # a step costs its length, whatever its batch (a GRU on a CPU)
        return rate(params, size) * size["train"]["batch_size"] / 64

    def asked_at(keeps):  # (the batch chosen, the batches whose speed was asked for)
        asked = []

        def speed(params, size):
            b = size["train"]["batch_size"]
            asked.append(b)
            return rate(params, size) * keeps ** math.log2(max(1, 64 // b))
        c = choose(arch, 65, SHAKESPEARE, minutes=0.02, rate=speed)
        return c, asked

    declared = {(s["train"]["batch_size"], s["train"]["seq_len"]) for s in family(arch).candidates(arch)}
    checked = auto_preset.SPEED_CHECKED_BELOW  # down to this many tokens a step, halved whatever the speed

    def halved_only_to_the_check(c):
        b, seq = c.train["batch_size"], c.train["seq_len"]
        return (b, seq) in declared or (b * seq >= checked and b // 2 * seq < checked)

    assert halved_only_to_the_check(choose(arch, 65, SHAKESPEARE, minutes=0.02, rate=slower_halves))
    assert halved_only_to_the_check(asked_at(auto_preset.HALVED_KEEPS - 0.05)[0])
    kept, asked = asked_at(auto_preset.HALVED_KEEPS + 0.05)  # nearly as fast: halved down to the floor
    b, seq = kept.train["batch_size"], kept.train["seq_len"]
    assert b // 2 * seq < auto_preset.MIN_TOKENS_PER_STEP or b // 2 < auto_preset.MIN_BATCH
    if (b, seq) not in declared:
        assert "halved" in kept.line
    if b * seq < checked and (b, seq) not in declared:
        assert b in asked  # the batch taken below the check was measured
    assert arch not in ("mingru", "minlstm") or b * seq < checked  # their 32×128 went down to 8×128


@pytest.mark.parametrize("arch", TRAINED)
def test_a_batch_is_halved_by_the_fraction_timed_in_turns_not_by_two_rates(arch):
    """Given ``keeps`` (the fraction of the tokens/s a halved batch keeps, both timed in turns), the rule halves
    below the check by it, whatever two rates measured apart say (here: that the half is as fast), and asks it
    for a batch and its half."""
    asked_rates = []

    def two_rates(params, size):  # the half would look as fast as the whole
        asked_rates.append(size["train"]["batch_size"])
        return rate(params, size)

    def choice(fraction):
        asked = []

        def keeps(params, size, half):
            asked.append((size["train"]["batch_size"], half["batch_size"], size["train"]["seq_len"] == half["seq_len"]))
            return fraction
        return choose(arch, 65, SHAKESPEARE, minutes=0.02, rate=two_rates, keeps=keeps), asked

    declared = {(s["train"]["batch_size"], s["train"]["seq_len"]) for s in family(arch).candidates(arch)}
    checked = auto_preset.SPEED_CHECKED_BELOW
    slow, asked = choice(auto_preset.HALVED_KEEPS - 0.01)
    b, seq = slow.train["batch_size"], slow.train["seq_len"]
    assert (b, seq) in declared or (b * seq >= checked and b // 2 * seq < checked)
    assert all(whole == 2 * half and same_length for whole, half, same_length in asked)
    fast, asked = choice(auto_preset.HALVED_KEEPS + 0.01)
    b, seq = fast.train["batch_size"], fast.train["seq_len"]
    assert b // 2 * seq < auto_preset.MIN_TOKENS_PER_STEP or b // 2 < auto_preset.MIN_BATCH
    if b * seq < checked and (b, seq) not in declared:
        assert (2 * b, b, True) in asked and f"batch {b}×{seq} (halved from" in fast.line
    declared_batches = {s["train"]["batch_size"] for s in family(arch).candidates(arch)}
    assert set(asked_rates) <= declared_batches  # no rate asked at a halved batch: the fraction says it


def test_the_fraction_a_halved_batch_keeps_is_timed_once_per_device_beside_the_rates(home, monkeypatch):
    import torch

    from lmcore.training import calibrate

    timed = []

    def measure_keeps(cfg, whole, half, lr, device, stop=None):
        timed.append((whole, half))
        return 0.7

    monkeypatch.setattr(calibrate, "measure_keeps", measure_keeps)
    monkeypatch.setattr(calibrate, "measure", lambda *a, **k: 5_000.0)
    size = family("gru").candidates("gru")[1]
    b, seq = size["train"]["batch_size"], size["train"]["seq_len"]
    half = {"batch_size": b // 2, "seq_len": seq}
    assert calibrate.rate_for(home, "gru", 65, torch.device("cpu"))(1000, size) == 5_000.0
    for _ in range(2):
        assert calibrate.keeps_for(home, "gru", 65, torch.device("cpu"))(1000, size, half) == 0.7
    assert timed == [((b, seq), (b // 2, seq))]  # once: the second read the cache
    assert list(auto_preset.cached_rates(home).values()) == [5_000.0]  # the rates kept beside it
    cache = json.loads((home / auto_preset.CACHE_FILE).read_text())
    assert list(cache["halved_keeps"].values()) == [0.7]


@pytest.mark.parametrize("table", ['"fast"', '{"k": -1}', '{"k": "x"}', '{"k": true}', '[0.5]', '{"k": 1e999}'])
def test_a_damaged_table_of_fractions_is_measured_again_and_the_rates_beside_it_are_kept(home, table):
    home.mkdir(parents=True, exist_ok=True)
    (home / auto_preset.CACHE_FILE).write_text('{"tokens_per_s": {"cpu:test": 99.0}, "halved_keeps": %s}' % table)
    assert auto_preset.calibrated_keeps(home, "k", lambda: 0.8) == 0.8
    assert auto_preset.calibrated_keeps(home, "k", lambda: pytest.fail("measured again")) == 0.8
    assert calibrated_rate(home, "cpu:test", lambda: pytest.fail("the rate was lost")) == 99.0
    with pytest.raises(ValueError, match="calibration measured nan"):
        auto_preset.calibrated_keeps(home, "other", lambda: math.nan)


def test_a_halved_batch_is_timed_against_its_whole_on_the_familys_objective_and_can_be_stopped():
    import threading

    import torch

    from lmcore import Cancelled
    from lmcore.models import preset_config
    from lmcore.training import calibrate

    for arch in ("gru", "minlstm", "bert"):
        cfg = preset_config(arch, "tiny", vocab_size=30)
        fraction = calibrate.measure_keeps(cfg, (4, 16), (2, 16), 1e-3, torch.device("cpu"))
        assert 0 < fraction < math.inf
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        calibrate.measure_keeps(preset_config("gru", "tiny", vocab_size=30), (4, 16), (2, 16), 1e-3,
                                torch.device("cpu"), stop)


@pytest.mark.parametrize("fraction, batch", [(0.5, 16), (0.97, 8)])
def test_a_timed_run_takes_the_halved_batch_its_device_keeps_the_speed_of(home, prose, monkeypatch, capsys, fraction,
                                                                          batch):
    """minLSTM's 32×128 is halved to 16×128 for a short run whatever its speed, to 8×128 only where the device
    keeps HALVED_KEEPS of its tokens/s there (timed in turns)."""
    from lmcore.training import calibrate

    monkeypatch.setattr(calibrate, "measure", lambda *a, **k: 2_000.0)
    monkeypatch.setattr(calibrate, "measure_keeps", lambda *a, **k: fraction)
    assert main(["train", "h", "--arch", "minlstm", "--corpus", str(prose), "--minutes", "0.01",
                 "--eval-every", "1"]) == 0
    ck = Store(home).read("h")
    assert (ck.train.batch_size, ck.train.seq_len) == (batch, 128)
    assert f"batch {batch}×128 (halved from 32" in capsys.readouterr().out


@pytest.mark.parametrize("arch", TRAINED)
@pytest.mark.parametrize("minutes", [1, 2.2, 10])
def test_a_timed_run_on_a_long_validation_text_evaluates_less_often_and_twice_at_least(arch, minutes):
    """tinyshakespeare's 111,539 validation characters read every 200 steps took 11-18% of a minute's run:
    the rule spaces its evaluations so they take EVAL_SHARE of the time (each at EVAL_SPEEDUP times the
    training tokens/s), never closer than 200 steps and never fewer than two in the run; the line says so."""
    val = 111_539
    c = choose(arch, 65, SHAKESPEARE, minutes=minutes, rate=rate, val_tokens=val)
    per_step = c.train["batch_size"] * c.train["seq_len"]
    every, steps = c.train.get("eval_every", auto_preset.EVAL_EVERY), c.tokens // per_step
    assert every >= 200 and steps // every >= auto_preset.MIN_EVALS
    share = val / auto_preset.EVAL_SPEEDUP / (every * per_step + val / auto_preset.EVAL_SPEEDUP)
    assert share <= auto_preset.EVAL_SHARE or every == 200 or every == steps // auto_preset.MIN_EVALS
    assert (f"evaluated every {every:,} steps" in c.line) == (every != 200)
    if every == 200:
        assert "eval_every" not in c.train


@pytest.mark.parametrize("arch", TRAINED)
def test_a_short_validation_text_or_a_budget_of_steps_keeps_evaluating_every_200_steps(arch):
    for c in (choose(arch, 65, TIMEMACHINE, minutes=5, rate=rate, val_tokens=17_897),
              choose(arch, 65, SHAKESPEARE, steps=2_000, val_tokens=111_539),
              choose(arch, 65, SHAKESPEARE, minutes=1, rate=rate)):
        assert "eval_every" not in c.train and "evaluated every" not in c.line


def test_a_timed_run_records_the_evaluations_its_validation_text_spaces(home, prose, monkeypatch, capsys):
    from lmcore.training import calibrate

    monkeypatch.setattr(calibrate, "measure", lambda *a, **k: 2_000_000.0)
    monkeypatch.setattr(calibrate, "measure_keeps", lambda *a, **k: 0.5)
    monkeypatch.setattr(auto_preset, "EVAL_SHARE", 0.001)  # the prose's short validation text, as if long
    assert main(["train", "e", "--arch", "minlstm", "--corpus", str(prose), "--minutes", "0.01"]) == 0
    ck = Store(home).read("e")
    expected = choose("minlstm", ck.model.vocab_size, ck.corpus.train_tokens, minutes=0.01,
                      rate=lambda p, s: 2_000_000.0, keeps=lambda *a: 0.5, val_tokens=ck.corpus.val_tokens)
    assert ck.train.eval_every == expected.train["eval_every"] > 200
    assert f"evaluated every {ck.train.eval_every:,} steps" in ck.auto
    assert "evaluated every" in " ".join(capsys.readouterr().out.split())  # said as it starts


@pytest.mark.parametrize("arch", TRAINED)
def test_a_text_read_only_a_few_times_needs_more_tokens_per_parameter(arch):
    largest = choose(arch, 65, 10**9, steps=10**7)
    per_step = largest.train["batch_size"] * largest.train["seq_len"]
    between = (auto_preset.TOKENS_PER_PARAM + auto_preset.FEW_EPOCHS_TOKENS_PER_PARAM) / 2  # tokens per parameter
    steps = math.ceil(between * largest.params / per_step)
    tokens = steps * per_step
    read_twice = choose(arch, 65, tokens // 2, steps=steps)  # the largest would read it twice
    read_five_times = choose(arch, 65, tokens // 5, steps=steps)
    assert read_five_times.params == largest.params and round(read_five_times.epochs) == 5
    assert read_twice.params < largest.params
    more = math.ceil((auto_preset.FEW_EPOCHS_TOKENS_PER_PARAM + 0.2) * largest.params / per_step)  # read < 4 times
    assert choose(arch, 65, tokens // 2, steps=more).params == largest.params


@pytest.mark.parametrize("arch", TRAINED)
def test_a_tiny_corpus_gets_the_smallest_size(arch):
    tiny = choose(arch, 65, 5_000, minutes=10, rate=rate)
    assert tiny.params == min(choose(arch, 65, n, minutes=10, rate=rate).params for n in (5_000, SHAKESPEARE))
    assert tiny.params < choose(arch, 65, 50_000_000, minutes=10, rate=rate).params


@pytest.mark.parametrize("arch", COUNTED)
def test_a_counted_family_keeps_its_default_preset(arch):
    c = choose(arch, 65, SHAKESPEARE, minutes=3)
    assert c.model == {} and c.train == {} and "counted" in c.line


def test_the_line_says_what_was_chosen_and_why():
    c = choose("lstm", 65, TIMEMACHINE, minutes=3, rate=rate, corpus="timemachine")
    assert c.line.startswith("auto: ") and "tokens/min here" in c.line and "3 min sees" in c.line
    assert "epochs of timemachine" in c.line and f"dropout {c.model['dropout']:g}" in c.line
    assert "\n" not in c.line


def test_the_calibration_is_measured_once_per_device(home):
    calls = []

    def measure():
        calls.append(1)
        return 1234.5

    assert calibrated_rate(home, "cpu:test", measure) == 1234.5
    assert calibrated_rate(home, "cpu:test", measure) == 1234.5
    assert len(calls) == 1
    assert calibrated_rate(home, "cuda:other", measure) == 1234.5  # another device measures anew
    assert len(calls) == 2


@pytest.mark.parametrize("damage", [b"{not json", b'{"tokens_per_s": {"cpu:test": -3}}', b"[1, 2]",
                                    b'{"tokens_per_s": {"cpu:test": "fast"}}', b"\xff\xfe"])
def test_a_damaged_calibration_cache_is_measured_again_and_rewritten(home, damage):
    home.mkdir(parents=True, exist_ok=True)
    (home / auto_preset.CACHE_FILE).write_bytes(damage)
    assert calibrated_rate(home, "cpu:test", lambda: 99.0) == 99.0
    assert json.loads((home / auto_preset.CACHE_FILE).read_text())["tokens_per_s"] == {"cpu:test": 99.0}
    assert calibrated_rate(home, "cpu:test", lambda: pytest.fail("measured again")) == 99.0


def test_cli_preset_auto_trains_and_the_checkpoint_records_the_choice(home, prose, capsys):
    rc = main(["train", "a", "--arch", "lstm", "--preset", "auto", "--corpus", str(prose), "--steps", "3",
               "--eval-every", "3"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "auto: 3 steps" in out and "epochs of prose" in out
    ck = Store(home).read("a")
    assert ck.preset == "auto" and ck.auto.startswith("auto: 3 steps")
    size = choose("lstm", ck.model.vocab_size, ck.corpus.train_tokens, steps=3)
    assert ck.model.hidden == size.model["hidden"] and ck.train.lr == size.train["lr"]
    assert ck.train.weight_decay == size.train["weight_decay"] and ck.train.warmup == size.train["warmup"]
    assert main(["train", "a", "--resume", "--steps", "1"]) == 0  # a saved auto run continues


def test_lmcore_train_preset_auto_keeps_what_was_given(home, prose):
    events = []
    done = lmcore.train("b", arch="lstm", preset="auto", corpus=str(prose), steps=2, eval_every=2, lr=1e-3,
                        model_overrides={"embed": 16, "dropout": 0.05}, on_event=events.append)
    assert done.kind == "done"
    start = next(e for e in events if e.kind == "start")
    assert start.auto.startswith("auto: ")
    ck = Store(home).read("b")
    assert ck.preset == "auto" and ck.train.lr == 1e-3 and ck.model.embed == 16 and ck.model.dropout == 0.05
    # the line says what the run uses: what was given, beside what the rule would have chosen
    assert "dropout 0.05 (given; the rule says" in ck.auto and ck.auto.endswith("given, kept over the rule: lr 0.001")


@pytest.mark.parametrize("arch", UNSIZED)
def test_a_family_without_sizes_takes_its_small_preset_and_says_so(arch):
    c = choose(arch, 65, SHAKESPEARE, minutes=3, rate=rate)
    assert c.model == {} and "declares no sizes" in c.line and "small preset" in c.line


@pytest.mark.parametrize("arch", TRAINED + UNSIZED)
def test_a_short_text_gets_a_batch_it_holds(arch):
    c = choose(arch, 30, 300, steps=5)
    b, s = (c.train.get("batch_size"), c.train.get("seq_len"))
    assert b * s + s + 1 <= 300 and "smaller to fit the short text" in c.line


def test_a_batch_is_made_smaller_only_when_the_text_is_short():
    assert auto_preset.fit_batch(32, 128, 1_000_000) == (32, 128)
    for n in (2, 17, 300, 5_000):
        b, s = auto_preset.fit_batch(32, 128, n)
        assert b >= 1 and s >= 1 and (b * s + s + 1 <= n or (b, s) == (1, 1))


@pytest.mark.parametrize("arch", TRAINED)
def test_a_cap_of_epochs_stops_a_long_budget_on_a_short_text(arch):
    c = choose(arch, 30, 3_000, minutes=3, rate=rate, max_epochs=100, why="no budget given: ")
    assert c.epochs <= 101 and c.train["steps"] >= 1 and "capped at" in c.line
    assert c.line.startswith("auto: no budget given: ")
    long = choose(arch, 30, 50_000_000, minutes=3, rate=rate, max_epochs=100)
    assert "steps" not in long.train and "3 min sees" in long.line  # a long text: the minutes end first


def test_a_new_model_without_a_preset_is_auto_and_the_checkpoint_says_what_it_chose(home, prose, capsys):
    assert main(["train", "d", "--corpus", str(prose), "--steps", "2", "--eval-every", "2"]) == 0
    assert "auto: 2 steps" in capsys.readouterr().out
    ck = Store(home).read("d")
    assert ck.preset == "auto" and ck.auto.startswith("auto: 2 steps") and ck.train.steps == 2
    assert main(["train", "d", "--resume", "--steps", "1"]) == 0  # continued: its own settings
    again = Store(home).read("d")
    assert (again.preset, again.model, again.auto) == ("auto", ck.model, ck.auto) and again.step == 3


def test_no_budget_means_a_few_minutes_or_a_cap_of_epochs(home, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("the quick brown fox jumps over the lazy dog. " * 8)
    trainer = lmcore.Trainer(Store(home), "n")
    trainer.prepare(lmcore.RunSpec.new("n", str(short)))
    assert trainer.cfg.minutes == auto_preset.DEFAULT_MINUTES and trainer.cfg.steps >= 1
    assert trainer.prepared.auto_note.startswith("auto: no budget given, so 3 min or 100 epochs")
    assert trainer.cfg.batch_size * trainer.cfg.seq_len < len(short.read_text())
    trainer.close()
    assert auto_preset.cached_rates(home)  # measured once, kept for the next run


def test_a_data_folder_that_cannot_be_written_measures_each_time_and_does_not_fail(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    home = blocked / "home"  # neither readable nor writable as a folder
    assert calibrated_rate(home, "cpu:test", lambda: 5.0) == 5.0
    assert calibrated_rate(home, "cpu:test", lambda: 6.0) == 6.0  # nothing was kept: measured again


def test_a_context_given_shorter_than_the_sizes_sequences_shortens_them():
    windowed = [a for f in families() if f.trainable and f.windowed for a in f.archs if f.sizes.get(a)]
    for arch in windowed:
        c = choose(arch, 65, SHAKESPEARE, steps=1000, given={"context": 24})
        assert c.train["seq_len"] == 24 and "×24" in c.line


def test_a_calibration_that_fails_trains_the_smallest_size_and_says_why(home, prose, monkeypatch, capsys):
    from lmcore.training import calibrate

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(calibrate, "measure", broken)
    assert main(["train", "f", "--corpus", str(prose), "--minutes", "0.01", "--eval-every", "1"]) == 0
    assert "speed could not be measured (RuntimeError)" in capsys.readouterr().out
    ck = Store(home).read("f")
    assert ck.params == min(choose("lstm", ck.model.vocab_size, n, steps=1).params for n in (10, 10**8))


def test_the_calibration_measures_with_the_threads_the_run_would_take(home, monkeypatch):
    """Beside a busy core two threads spin against each other and measure a tenth of the real rate: the
    calibration runs under the thread governor's choice (here fixed at one thread), then gives the
    threads back."""
    import torch

    from lmcore.training import calibrate
    from lmcore.training.threads import ThreadGovernor

    seen = []

    def measure(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return 1000.0

    before = torch.get_num_threads()
    monkeypatch.setattr(calibrate, "measure", measure)
    monkeypatch.setattr(calibrate, "ThreadGovernor", lambda: ThreadGovernor(1))
    rate = calibrate.rate_for(home, "lstm", 65, torch.device("cpu"))
    small = family("lstm").candidates("lstm")[0]
    assert rate(1000, small) == 1000.0 and seen == [1] and torch.get_num_threads() == before


def test_each_size_is_measured_once_when_the_rule_asks_for_it(home, monkeypatch):
    """Sizes are measured, not scaled from one by their parameters (small sizes pay a fixed cost a step):
    the rule asks for the largest sizes first and stops at the first that qualifies; a size is measured
    once per device and data folder."""
    import torch

    from lmcore.training import calibrate

    measured = []

    def measure(cfg, batch, seq_len, lr, device, stop=None):
        measured.append(cfg.hidden)
        return {128: 400_000.0}.get(cfg.hidden, 1_000.0)  # only the smallest is fast enough for the budget

    monkeypatch.setattr(calibrate, "measure", measure)
    sizes = family("lstm").candidates("lstm")
    rate = calibrate.rate_for(home, "lstm", 65, torch.device("cpu"))
    choice = choose("lstm", 65, SHAKESPEARE, minutes=1, rate=rate)
    assert measured == [s["model"]["hidden"] for s in reversed(sizes)]  # largest first, each once
    assert choice.params == choose("lstm", 65, SHAKESPEARE, steps=1).params  # the smallest size
    assert "24M tokens/min" in choice.line  # its own rate: 400k tokens/s
    again = calibrate.rate_for(home, "lstm", 65, torch.device("cpu"))
    assert choose("lstm", 65, SHAKESPEARE, minutes=1, rate=again).line == choice.line
    assert len(measured) == len(sizes)  # read from the cache


def test_a_size_is_measured_apart_at_each_dropout_and_a_given_dropout_is_measured_at_it(home, monkeypatch):
    """Dropout slows a step (the transformer's 4×128 on a 2-core CPU: 16.9k tokens/s without, 10.6k at 0.3): a rate
    measured without it is not read for a run with it, and a dropout the user gives is timed like the rule's."""
    import torch

    from lmcore.training import calibrate

    measured = []
    monkeypatch.setattr(calibrate, "measure",
                        lambda cfg, *a, **k: measured.append(cfg.dropout) or 5_000 * (1 - cfg.dropout))
    size = family("transformer").candidates("transformer")[1]
    with_dropout = {**size, "model": {**size["model"], "dropout": 0.2}}
    cpu = torch.device("cpu")
    rate = calibrate.rate_for(home, "transformer", 65, cpu)
    assert rate(1000, size) == 5_000 and rate(1000, with_dropout) == 4_000 and rate(1000, size) == 5_000
    assert calibrate.rate_for(home, "transformer", 65, cpu, given={"dropout": 0.2})(1000, size) == 4_000
    assert measured == [0, 0.2]  # each once: the given 0.2 read the rule's


def test_a_data_folder_moved_to_another_cpu_measures_that_cpu_afresh(home, monkeypatch):
    import torch

    from lmcore.training import calibrate

    measured = []
    monkeypatch.setattr(calibrate, "measure", lambda cfg, *a, **k: measured.append(cfg.hidden) or 5_000.0)
    size = family("lstm").candidates("lstm")[0]
    for cpu in ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8375C", "AMD EPYC"):
        monkeypatch.setattr(calibrate, "cpu_model", lambda: cpu)
        assert calibrate.rate_for(home, "lstm", 65, torch.device("cpu"))(1000, size) == 5_000.0
    assert len(measured) == 2  # each CPU once: the third run read the first one's rate


@pytest.mark.parametrize("n, said", [(4_100_000, "4.1M"), (153_000, "153k"), (999_600, "1M"), (999_400, "999k"),
                                     (2_360_000, "2.36M"), (512, "512")])
def test_token_counts_are_said_in_three_figures_with_their_unit(n, said):
    assert auto_preset.short(n) == said


def test_a_calibration_says_what_it_measures_and_stops_when_asked(home):
    """Measuring a size reports progress (the app shows it while a run prepares) and a set stop event
    cancels it before a step is taken (quitting the app does not wait for the calibration)."""
    import threading

    import torch

    from lmcore import Cancelled
    from lmcore.training import calibrate

    heard, stop = [], threading.Event()
    stop.set()
    rate = calibrate.rate_for(home, "lstm", 65, torch.device("cpu"), stop=stop,
                              progress=lambda what, done, total: heard.append((what, done, total)))
    with pytest.raises(Cancelled):
        rate(1000, family("lstm").candidates("lstm")[0])
    assert heard == [("measuring this device's speed", 0, len(family("lstm").candidates("lstm")))]
    assert auto_preset.cached_rates(home) == {}  # nothing was measured, nothing kept


def gpu_rate(speedup):
    """A device where a step of up to 4,096 tokens costs the same (parallel units to spare): the base
    recipe's 64×256 trains ``speedup`` times as fast (tokens/s) as the sizes' batches; asked sizes kept."""
    asked = []

    def rate(params, size):
        t = size["train"]
        asked.append((t["batch_size"], t["seq_len"]))
        return 300_000 * (speedup if t["batch_size"] * t["seq_len"] >= 64 * 256 else 1)
    return rate, asked


@pytest.mark.parametrize("arch", ["lstm", "gru", "transformer"])
def test_an_accelerator_that_trains_the_base_recipe_twice_as_fast_takes_it(arch):
    base = family(arch).preset(arch, "base")
    rate, asked = gpu_rate(3.0)
    c = choose(arch, 65, 50_000_000, minutes=1, rate=rate, corpus="big", accelerator=True)
    assert (c.train["batch_size"], c.train["seq_len"]) == (base["train"]["batch_size"], base["train"]["seq_len"])
    assert c.model["hidden"] == base["model"]["hidden"] and c.model["num_layers"] == base["model"]["num_layers"]
    assert c.train["lr"] == base["train"]["lr"]
    assert "its base recipe (this device trains it 3.0x as fast as" in c.line
    assert c.tokens == 3 * 300_000 * 60  # the budget at the base recipe's own rate


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_a_cpu_never_measures_the_base_recipe_and_a_small_gain_keeps_the_size(arch):
    rate, asked = gpu_rate(3.0)
    cpu = choose(arch, 65, 50_000_000, minutes=1, rate=rate, accelerator=False)
    assert (64, 256) not in asked and "base recipe" not in cpu.line
    rate, asked = gpu_rate(1.5)  # an accelerator with little to spare: the size's own batch
    slow = choose(arch, 65, 50_000_000, minutes=1, rate=rate, accelerator=True)
    assert (64, 256) in asked and "base recipe" not in slow.line
    assert (slow.train["batch_size"], slow.model["hidden"]) == (cpu.train["batch_size"], cpu.model["hidden"])


def test_the_base_recipe_is_not_taken_for_a_text_it_would_learn_by_heart_or_with_steps_given():
    rate, asked = gpu_rate(3.0)
    short = choose("lstm", 65, TIMEMACHINE, minutes=1, rate=rate, accelerator=True)  # 3.5M parameters, 153k tokens
    assert "base recipe" not in short.line and short.params <= 12 * TIMEMACHINE
    by_steps = choose("lstm", 65, 50_000_000, steps=1000, accelerator=True)
    assert "base recipe" not in by_steps.line
