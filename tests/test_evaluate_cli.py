"""lmcore evaluate: a saved model's loss, perplexity and bits per character on its validation split (equal
to what training reported), another corpus or a file; --fill adds fill accuracy on the same blanks
training measures; bad input is one line and exit 1."""
import json
import random

import pytest

import lmcore
from lmcore import Store
from lmcore.cli.main import main

from . import factories

SENTENCES = ["i am very hungry .", "you are so tired .", "we were not cold ."]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A birnn and a forward LSTM, each evaluated once, at its last step (so that step's weights are saved)."""
    root = tmp_path_factory.mktemp("evaluate")
    rng = random.Random(0)
    (root / "sentences.txt").write_text("\n".join(rng.choice(SENTENCES) for _ in range(1500)), "utf-8")
    (root / "other.txt").write_text("\n".join(rng.choice(SENTENCES[:2]) for _ in range(600)), "utf-8")
    for name, arch in (("bi", "birnn"), ("fw", "lstm")):
        done = lmcore.train(name, arch=arch, preset="tiny", corpus=str(root / "sentences.txt"), tokens="word",
                            steps=30, eval_every=30, lr=1e-2, home=root / "home")
        assert done.saved
    return root


def run(capsys, home, *argv):
    capsys.readouterr()
    rc = main(["--home", str(home / "home"), "evaluate", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def last_json(out: str) -> dict:
    def refuse(c):
        raise ValueError(f"not strict JSON: {c}")
    return json.loads(out.splitlines()[-1], parse_constant=refuse)


@pytest.mark.parametrize("name", ["bi", "fw"])
def test_the_numbers_are_those_training_reported(home, capsys, name):
    point = Store(home / "home").read(name).history[-1]
    rc, out, _ = run(capsys, home, name, "--json")
    got = last_json(out)
    assert rc == 0 and got["event"] == "evaluate" and "fill_top1" not in got
    assert got["loss"] == pytest.approx(point.val_loss, abs=1e-6)
    assert got["ppl"] == pytest.approx(point.val_ppl, rel=1e-6)
    assert got["bpc"] == pytest.approx(point.bits_per_char, abs=1e-6)
    rc, out, _ = run(capsys, home, name)
    assert rc == 0 and f"loss {point.val_loss:.4f}" in out and f"perplexity {point.val_ppl:.3f}" in out
    assert "validation split of sentences" in out and "bits per character" in out


def test_fill_json_last_line_matches_training_on_the_same_blanks(home, capsys):
    rc, out, _ = run(capsys, home, "bi", "--fill", "--json")
    got = last_json(out)
    assert rc == 0 and got["fill_method"] == "both ways" and got["fill_blanks"] > 0
    assert 0 <= got["fill_top1"] <= got["fill_top5"] <= 1
    point = Store(home / "home").read("bi").history[-1]
    assert (got["fill_top1"], got["fill_top5"]) == pytest.approx((point.fill_top1, point.fill_top5))


def test_a_forward_model_fills_by_scoring(home, capsys):
    rc, out, _ = run(capsys, home, "fw", "--fill", "--blanks", "20")
    assert rc == 0 and "fill (scoring, 20 blanks, every 7th token): top-1" in out
    ev = lmcore.evaluate("fw", fill=True, blanks=20, home=home / "home")
    assert ev.fill.blanks == 20 and 0 <= ev.fill.top1 <= ev.fill.top5 <= 1


def test_another_corpus_or_a_whole_file(home, capsys):
    rc, out, _ = run(capsys, home, "fw", "--corpus", str(home / "other.txt"), "--json")
    got = last_json(out)
    assert rc == 0 and got["text"] == "the validation split of other" and got["loss"] > 0
    rc, out, _ = run(capsys, home, "fw", "--file", str(home / "other.txt"), "--json")
    whole = last_json(out)
    assert rc == 0 and whole["text"] == "the file other.txt" and whole["tokens"] > got["tokens"]


def _one_line_error(rc, out, err, says):
    assert rc == 1 and len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err


@pytest.mark.parametrize("argv,says", [
    (["nope"], "no model named 'nope'"),
    (["fw", "--fill", "--blanks", "-1"], "number of blanks"),
    (["fw", "--blanks", "20"], "give --fill too"),
    (["fw", "--file", "missing.txt"], "no file"),
])
def test_bad_input_is_one_line(home, capsys, argv, says):
    _one_line_error(*run(capsys, home, *argv), says)


def test_a_text_too_small_or_empty(home, capsys):
    (home / "empty.txt").write_text("", "utf-8")
    _one_line_error(*run(capsys, home, "fw", "--file", str(home / "empty.txt")), "empty")
    (home / "tiny.txt").write_text("i am", "utf-8")
    rc, out, err = run(capsys, home, "fw", "--file", str(home / "tiny.txt"), "--json")
    assert rc == 1 and last_json(out)["event"] == "failed" and len(err.strip().splitlines()) == 1


def test_damaged_cannot_fill_and_busy_models_are_told_apart(home, capsys):
    store = Store(home / "home")
    factories.save(store, "cheat", "lstm", bidirectional=True)
    factories.save(store, "broken", "lstm")
    (store.path("broken") / "meta.json").write_text("{not json", "utf-8")
    _one_line_error(*run(capsys, home, "cheat", "--fill"), "cannot fill blanks")
    _one_line_error(*run(capsys, home, "broken", "--fill"), "damaged")
    with store.lock("fw"):  # training it, say
        _one_line_error(*run(capsys, home, "fw"), "fw")


def test_an_encoder_decoder_on_a_text_without_pairs_is_refused_in_one_line(home, capsys):
    """An encoder-decoder is measured on pairs (tests/test_evaluate_pairs.py); a text with no tab in it is
    refused in one line (it was a TypeError from its forward pass, then a refusal of every encoder-decoder)."""
    store = Store(home / "home")
    factories.save(store, "s2s", "seq2seq")
    _one_line_error(*run(capsys, home, "s2s", "--file", str(home / "sentences.txt")), "no pairs")
