"""lmcore evaluate of models that answer pairs, on the built-in dates and reverse corpora: an encoder-decoder
and a decoder-only LSTM trained on the same pairs get the loss per target token, exact match and both
BLEUs (training's figures on their own split), broken down by source length in characters (1-10, 11-20,
21-40, 41+), as a table and as strict JSON."""
import json

import pytest

import lmcore
from lmcore import Store
from lmcore.cli.main import main

BUCKETS = ["1-10", "11-20", "21-40", "41+"]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A seq2seq and a char LSTM trained a few steps on dates, each evaluated once, at its last step."""
    root = tmp_path_factory.mktemp("evaluate_pairs")
    for name, arch, extra in (("s2s", "seq2seq", {}), ("lm", "lstm", {"tokens": "char"})):
        done = lmcore.train(name, arch=arch, preset="tiny", corpus="dates", steps=4, eval_every=4, batch_size=16,
                            home=root, **extra)
        assert done.saved
    return root


def run(capsys, home, *argv):
    capsys.readouterr()
    rc = main(["--home", str(home), "evaluate", *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def last_json(out: str) -> dict:
    def refuse(c):
        raise ValueError(f"not strict JSON: {c}")
    return json.loads(out.splitlines()[-1], parse_constant=refuse)


def _buckets_cover_the_replies(got):
    assert [b["chars"] for b in got["buckets"]] == BUCKETS
    assert sum(b["pairs"] for b in got["buckets"]) == got["replies"] == 1000
    for b in got["buckets"]:
        figures = [b["exact"], b["bleu"], b["corpus_bleu"]]
        assert all(f is None for f in figures) if not b["pairs"] else all(0 <= f <= 1 for f in figures)


def test_an_encoder_decoder_gets_trainings_figures_and_the_buckets(home, capsys):
    point = Store(home).read("s2s").history[-1]
    rc, out, _ = run(capsys, home, "s2s", "--json")
    got = last_json(out)
    assert rc == 0 and got["event"] == "evaluate" and got["text"] == "its validation split of dates"
    assert got["loss"] == got["target_loss"] == pytest.approx(point.val_loss, abs=1e-6)
    assert got["ppl"] == pytest.approx(point.val_ppl, rel=1e-6) and got["bpc"] is None
    assert (got["bleu"], got["corpus_bleu"], got["exact"]) == pytest.approx((point.bleu, point.corpus_bleu, point.exact), abs=1e-6)
    assert got["pairs"] == 1000 and got["tokens"] == got["target_tokens"] > 1000
    _buckets_cover_the_replies(got)
    assert got["buckets"][-1]["pairs"] == 0  # no date is written in more than 40 characters

    rc, out, _ = run(capsys, home, "s2s")
    lines = out.splitlines()
    assert rc == 0 and "1,000 pairs" in lines[0] and f"loss {point.val_loss:.4f} per target token" in lines[0]
    assert "exact match" in lines[1] and "corpus BLEU" in lines[1]
    assert lines[2].split()[:3] == ["source", "characters", "pairs"]
    assert [line.split()[0] for line in lines[3:7]] == BUCKETS and lines[6].split()[1:] == ["0", "-", "-", "-"]


def test_a_decoder_only_model_on_pairs_gets_the_same_figures(home, capsys):
    point = Store(home).read("lm").history[-1]
    rc, out, _ = run(capsys, home, "lm", "--json")
    got = last_json(out)
    assert rc == 0 and got["loss"] == pytest.approx(point.val_loss, abs=1e-6)  # over the lines, as training
    assert got["bpc"] == pytest.approx(point.bits_per_char, abs=1e-6)
    assert got["target_loss"] > 0 and 1000 < got["target_tokens"] < got["tokens"]
    assert (got["bleu"], got["corpus_bleu"], got["exact"]) == pytest.approx((point.bleu, point.corpus_bleu, point.exact), abs=1e-6)
    _buckets_cover_the_replies(got)
    rc, out, _ = run(capsys, home, "lm")
    assert rc == 0 and "per target token" in out.splitlines()[1] and "41+" in out


@pytest.mark.parametrize("name", ["s2s", "lm"])
def test_another_pairs_corpus_fills_the_longest_bucket(home, capsys, name):
    rc, out, _ = run(capsys, home, name, "--corpus", "reverse", "--json")
    got = last_json(out)
    assert rc == 0 and got["text"] == "the validation split of reverse"
    _buckets_cover_the_replies(got)
    assert all(b["pairs"] > 0 for b in got["buckets"])  # reversed phrases of 5 to 60 characters


def test_a_file_of_pairs_is_read_whole(home, capsys, tmp_path):
    f = tmp_path / "few.tsv"
    f.write_text("3 May 1979\t1979-05-03\n1 January 2000\t2000-01-01\n", "utf-8")
    for name in ("s2s", "lm"):
        rc, out, _ = run(capsys, home, name, "--file", str(f), "--json")
        got = last_json(out)
        assert rc == 0 and got["text"] == "the file few.tsv" and got["pairs"] == got["replies"] == 2
        assert [b["pairs"] for b in got["buckets"]] == [1, 1, 0, 0]


def test_bad_input_is_one_line(home, capsys, tmp_path):
    (tmp_path / "prose.txt").write_text("no pairs in here at all\n", "utf-8")
    for argv, says in ((["s2s", "--file", str(tmp_path / "prose.txt")], "no pairs"),
                       (["s2s", "--file", str(tmp_path / "missing.tsv")], "no file"),
                       (["s2s", "--fill"], "cannot fill"),
                       (["s2s", "--corpus", "nope"], "unknown corpus")):
        rc, _, err = run(capsys, home, *argv)
        assert rc == 1 and len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err


def test_a_masked_language_model_on_pairs_has_no_loss_per_target_token(tmp_path, capsys):
    """BERT's loss is over masked tokens, not the next one: its replies are scored, its target loss is null."""
    assert lmcore.train("b", arch="bert", preset="tiny", corpus="dates", steps=2, eval_every=2, batch_size=16,
                        home=tmp_path).saved
    rc, out, _ = run(capsys, tmp_path, "b", "--json")
    got = last_json(out)
    assert rc == 0 and got["target_loss"] is None and got["target_ppl"] is None and got["target_tokens"] == 0
    _buckets_cover_the_replies(got)
    rc, out, _ = run(capsys, tmp_path, "b")
    assert rc == 0 and "per target token" not in out and "exact match" in out.splitlines()[1]
