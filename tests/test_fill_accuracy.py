"""Fill accuracy on fixed blanks of the validation text: every 7th token, the same blanks for every model;
top-1/top-5 equal a brute-force count; measured at each evaluation of a birnn's training (and of a forward
model's with --fill-eval), stored in the history, carried by the --json summary, ranked by the
leaderboard."""
import json
import random

import pytest
import torch

import lmcore
from lmcore import ConfigError, Store, fill_accuracy
from lmcore.cli.main import main
from lmcore.generation.fill_accuracy import EVERY, FIRST, LEFT, RIGHT, blank_positions
from lmcore.models import build_model, preset_config

from . import factories

SENTENCES = ["i am very hungry .", "you are so tired .", "we were not cold ."]


def strict(line: str) -> dict:
    def refuse(c):
        raise ValueError(f"not strict JSON: {c}")
    return json.loads(line, parse_constant=refuse)


def test_the_blanks_are_every_seventh_token_and_always_the_same():
    every = blank_positions(1000, 0)
    assert every == list(range(FIRST, 1000 - RIGHT, EVERY)) and EVERY == 7
    assert every[0] >= LEFT and every[-1] + RIGHT < 1000
    capped = blank_positions(100_000, 200)
    assert capped == blank_positions(100_000, 200) and len(capped) == 200
    assert all((p - FIRST) % 7 == 0 for p in capped) and capped == sorted(set(capped))
    assert capped[-1] > 90_000  # spread over the whole text, not its start
    assert blank_positions(LEFT + RIGHT, 200) == []
    with pytest.raises(ConfigError):
        blank_positions(100, -1)


def _rank(scores: torch.Tensor, truth: int) -> int:
    return int((scores >= scores[truth]).sum()) - 1


def _fractions(ranks: list[int]) -> tuple[float, float]:
    return sum(r < 1 for r in ranks) / len(ranks), sum(r < 5 for r in ranks) / len(ranks)


@pytest.mark.parametrize("arch", ["lstm", "transformer"])  # the left side read once and carried; read again
def test_a_forward_model_equals_brute_force_scoring_of_every_token(arch):
    """Fewer than 100 tokens: every one is a candidate, scored log P(w | left) + log P(right | left, w), each
    text read alone by the model."""
    gen = factories.generator(arch)
    ids = torch.tensor(gen.vocab[gen.tokenizer.tokenize(factories.TEXT)])[:200]
    ranks = []
    for p in blank_positions(len(ids)):
        left, right = ids[p - LEFT: p].tolist(), ids[p + 1: p + 1 + RIGHT].tolist()
        scores = []
        for w in range(len(gen.vocab)):
            seq = left + [w] + right
            with torch.inference_mode():
                logp = torch.log_softmax(gen.model(torch.tensor([seq]))[0][0].double(), -1)
            scores.append(sum(float(logp[i - 1, seq[i]]) for i in range(LEFT, len(seq))))
        ranks.append(_rank(torch.tensor(scores), int(ids[p])))
    got = fill_accuracy(gen.model, ids)
    assert got.blanks == len(ranks) and got.method == "scoring"
    assert (got.top1, got.top5) == pytest.approx(_fractions(ranks))
    assert 0 <= got.top1 <= got.top5 <= 1


def test_a_both_ways_model_equals_its_blank_prediction_read_blank_by_blank():
    torch.manual_seed(1)
    model = build_model(preset_config("birnn", "tiny", vocab_size=12)).eval()
    ids = torch.randint(0, 12, (900,))
    ranks = []
    for p in blank_positions(len(ids)):
        row = ids[p - LEFT: p + RIGHT + 1].clone()
        row[LEFT] = (row[LEFT] + 5) % 12  # whatever stands at the blank: the model never reads it
        blank = torch.zeros(1, len(row), dtype=torch.bool)
        blank[0, LEFT] = True
        with torch.inference_mode():
            ranks.append(_rank(model.blank_logits(row[None], blank)[0, LEFT], int(ids[p])))
    got = fill_accuracy(model, ids)
    assert got.method == "both ways" and got.blanks == len(ranks)
    assert (got.top1, got.top5) == pytest.approx(_fractions(ranks))


def test_a_counted_model_of_a_periodic_text_fills_every_blank():
    """abcde repeated: the token after 'abcd' is always 'e', so a trigram answers every blank right."""
    ids = torch.tensor([i % 5 for i in range(700)])
    model = build_model(preset_config("ngram", "tiny", vocab_size=5))
    model.fit(ids)
    got = fill_accuracy(model, ids)
    assert (got.top1, got.top5) == (1.0, 1.0) and got.blanks == len(blank_positions(700))


def test_too_short_a_text_and_a_model_that_cannot_fill():
    gen = factories.generator("lstm")
    assert fill_accuracy(gen.model, torch.zeros(LEFT + RIGHT, dtype=torch.long)) is None
    cheat = build_model(preset_config("lstm", "tiny", vocab_size=10, bidirectional=True))
    with pytest.raises(ConfigError, match="cannot fill"):
        fill_accuracy(cheat, torch.zeros(100, dtype=torch.long))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("fillacc")
    rng = random.Random(0)
    corpus = root / "sentences.txt"
    corpus.write_text("\n".join(rng.choice(SENTENCES) for _ in range(1500)), "utf-8")
    home = root / "home"
    for name, arch, extra in (("bi", "birnn", []), ("fw", "lstm", []), ("fwf", "lstm", ["--fill-eval"])):
        rc = main(["--home", str(home), "train", name, "--arch", arch, "--preset", "tiny", "--corpus", str(corpus),
                   "--tokens", "word", "--steps", "40", "--eval-every", "20", "--lr", "1e-2", "--json", *extra])
        assert rc == 0
    return home


def test_a_birnn_run_measures_fill_at_each_evaluation(trained, capsys, tmp_path):
    corpus = tmp_path / "c.txt"
    rng = random.Random(1)
    corpus.write_text("\n".join(rng.choice(SENTENCES) for _ in range(1500)), "utf-8")
    capsys.readouterr()
    rc = main(["--home", str(trained), "train", "b2", "--arch", "birnn", "--preset", "tiny", "--corpus", str(corpus),
               "--tokens", "word", "--steps", "20", "--eval-every", "10", "--json"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    summary = strict(out[-1])
    assert summary["event"] == "summary"
    for k in ("best_val_fill_top1", "best_val_fill_top5"):
        assert isinstance(summary[k], float) and 0 <= summary[k] <= 1
    evals = [strict(line) for line in out if '"event": "eval"' in line]
    assert len(evals) == 2 and all(0 <= e["fill_top1"] <= e["fill_top5"] <= 1 for e in evals)
    history = Store(trained).read("b2").history
    assert [h.fill_top1 for h in history] == pytest.approx([e["fill_top1"] for e in evals], abs=1e-6)
    assert summary["best_val_fill_top1"] == max(h.fill_top1 for h in history)


def test_forward_models_measure_it_only_when_asked(trained):
    store = Store(trained)
    assert all(h.fill_top1 is None for h in store.read("fw").history)
    assert store.read("fw").summary()["best_val_fill_top1"] is None
    measured = store.read("fwf").history
    assert len(measured) == 2 and all(0 <= h.fill_top1 <= h.fill_top5 <= 1 for h in measured)
    assert all(h.fill_top1 is not None for h in store.read("bi").history)


def test_the_leaderboard_ranks_by_fill(trained, capsys):
    rows = lmcore.leaderboard(Store(trained).list(), "sentences", by="fill")
    names = [r["name"] for r in rows]
    assert names[-1] == "fw"  # never measured: last
    tops = [r["best_val_fill_top1"] for r in rows if r["best_val_fill_top1"] is not None]
    assert tops == sorted(tops, reverse=True)
    capsys.readouterr()
    assert main(["--home", str(trained), "models", "--corpus", "sentences", "--by", "fill"]) == 0
    out = capsys.readouterr().out
    assert "fill accuracy" in out and "%" in out
    with pytest.raises(ConfigError):
        lmcore.leaderboard([], by="speed")
    assert main(["--home", str(trained), "models", "--by", "fill"]) == 1
    assert "--corpus" in capsys.readouterr().err


def test_a_fill_accuracy_outside_zero_to_one_is_a_damaged_model():
    store = Store()
    factories.save(store, "m")
    meta = store.path("m") / "meta.json"
    d = json.loads(meta.read_text())
    assert store.read("m").history[0].fill_top1 is None  # not measured: null
    d["history"][0]["fill_top1"] = 1.5
    meta.write_text(json.dumps(d))
    entry = store.check("m")
    assert not entry.ok and "fill accuracy" in entry.reason
