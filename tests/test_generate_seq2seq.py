"""lmcore generate for an encoder-decoder: --beam prints the beam's log-probability line (and a `beam` JSON
event before the reply's), as for a decoder-only model; --length limits every kind of reply (greedy, sampled, beam) and a
reply it cut says so, told apart from the model's own limit."""
import json
import math

import pytest

import lmcore
from lmcore import Store
from lmcore.cli.main import main
from lmcore.generation.seq2seq_decode import beam_reply

SOURCE = "3 May 1979"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A tiny seq2seq, two steps on dates (its replies run on: the limits cut them)."""
    root = tmp_path_factory.mktemp("generate_seq2seq")
    assert lmcore.train("s", arch="seq2seq", preset="tiny", corpus="dates", steps=2, eval_every=2, batch_size=16,
                        model_overrides={"max_len": 24}, home=root).saved
    return root


def run(capsys, home, *argv):
    capsys.readouterr()
    rc = main(["--home", str(home), "generate", "s", "--prompt", SOURCE, *argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_beam_prints_its_log_probability_line(home, capsys):
    gen = lmcore.Generator.from_store(Store(home), "s")
    want = beam_reply(gen.model, gen.vocab, gen.tokenizer, SOURCE, 3, None, "unk", 10)
    rc, out, err = run(capsys, home, "--beam", "3", "--length", "10")
    assert rc == 0 and out == want.text + "\n"
    assert f"beam 3: log-probability {want.logprob:.3f} over {want.scored} tokens (score {want.score():.4f})" in err
    assert math.isfinite(want.logprob) and want.logprob < 0 and want.scored == len(want.tokens) + want.ended
    rc, out, _ = run(capsys, home, "--beam", "3", "--length", "10", "--length-penalty", "0", "--json")
    *_, beam, last = (json.loads(line) for line in out.splitlines())
    assert rc == 0 and last["event"] == "reply"  # the reply stays the last line
    assert beam["event"] == "beam" and beam["score"] == pytest.approx(beam["logprob"])  # penalty 0: the raw sum


@pytest.mark.parametrize("how", [[], ["--beam", "2"], ["--temperature", "1", "--seed", "3"]])
def test_length_cuts_every_kind_of_reply_and_says_so(home, capsys, how):
    rc, out, _ = run(capsys, home, "--length", "3", "--json", *how)
    end = next(json.loads(line) for line in out.splitlines() if '"reply"' in line)
    assert rc == 0 and (end["ended"] or end["cut_by"] == "length")
    rc, out, err = run(capsys, home, "--length", "3", *how)
    assert rc == 0 and out == end["text"] + "\n" and len(end["text"]) <= 3
    assert ("note: the reply was cut at 3 tokens (--length)" in err) == (not end["ended"])


def test_the_models_limit_is_told_apart_from_length(home, capsys):
    gen = lmcore.Generator.from_store(Store(home), "s")
    r = lmcore.reply(gen.model, gen.vocab, gen.tokenizer, SOURCE)
    rc, out, err = run(capsys, home, "--length", "300")
    assert rc == 0 and out == r.text + "\n" and r.limit == 24
    assert ("note: the reply was cut at 24 tokens (the model's limit of 24 tokens)" in err) == (not r.ended)
    assert "--length" not in err
    rc, out, err = run(capsys, home, "--length", "0")
    assert rc == 1 and "length limit" in err and len(err.strip().splitlines()) == 1
