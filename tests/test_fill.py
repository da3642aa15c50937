"""lmcore fill: every _ a blank token; a birnn fills from both directions, a forward model by scoring its
top candidates with the text after the blank; bad input is one line and exit 1."""
import json
import random

import pytest
import torch

import lmcore
from lmcore import Store, load_model
from lmcore.cli.main import main
from lmcore.generation.fill import SCORING, BOTH_WAYS, split_blanks

from . import factories

SENTENCES = ["i am very hungry .", "you are so tired .", "we were not cold ."]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A word-level birnn and forward LSTM on three sentences in a random order (the answers are obvious)."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("fill")
    corpus = root / "sentences.txt"
    corpus.write_text("\n".join(rng.choice(SENTENCES) for _ in range(3000)), "utf-8")
    for name, arch in (("bi", "birnn"), ("fw", "lstm")):
        done = lmcore.train(name, arch=arch, preset="tiny", corpus=str(corpus), tokens="word", steps=150,
                            eval_every=150, lr=1e-2, home=root / "home")
        assert done.saved
    return root / "home"


def run(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.parametrize("name,method", [("bi", BOTH_WAYS), ("fw", SCORING)])
def test_the_obvious_answer_comes_first(home, name, method):
    store = Store(home)
    one = lmcore.fill(store, name, "i am _ hungry .", top=3)
    assert one.method == method and one.blanks[0].chosen == "very" and len(one.blanks[0].candidates) == 3
    assert one.text == "i am very hungry." and one.blanks[0].candidates[0][1] > 0.5
    start = lmcore.fill(store, name, "_ are so tired .")  # read from the right alone
    assert start.blanks[0].chosen == "you"
    two = lmcore.fill(store, name, "we _ not _ .")
    assert [b.chosen for b in two.blanks] == ["were", "cold"] and sorted(b.order for b in two.blanks) == [1, 2]
    probs = [p for _, p in two.blanks[0].candidates]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-5


def test_forward_fill_is_brute_force_scoring_on_a_tiny_vocabulary():
    """With fewer than 100 tokens every one is a candidate: the probabilities are P(w | left) P(right |
    left, w) over the whole vocabulary, normalised, computed here from the model's own forward pass."""
    gen = factories.generator("lstm")
    text = "the ti_e traveller"
    got = lmcore.fill_blanks(gen.model, gen.vocab, gen.tokenizer, text, top=len(gen.vocab)).blanks[0]
    left, right = gen.vocab[list("the ti")], gen.vocab[list("e traveller")]
    scores = []
    for w in range(len(gen.vocab)):
        seq = left + [w] + right
        with torch.inference_mode():
            logp = torch.log_softmax(gen.model(torch.tensor([seq]))[0][0].double(), -1)
        scores.append(sum(float(logp[i - 1, seq[i]]) for i in range(len(left), len(seq))))
    want = torch.softmax(torch.tensor(scores), -1)
    for text_, p in got.candidates:
        assert p == pytest.approx(float(want[gen.vocab[text_]]), abs=1e-4)


@pytest.mark.parametrize("arch", factories.ARCHS)
def test_every_generating_model_fills(arch):
    gen = factories.generator(arch)
    res = lmcore.fill_blanks(gen.model, gen.vocab, gen.tokenizer, "the t_me trav_ller", top=2)
    assert res.method == SCORING and len(res.blanks) == 2 and len(res.text) == len("the time traveller")


def test_an_escaped_underscore_is_text():
    assert split_blanks(r"a\_b _ c") == ["a_b ", None, " c"]


def test_json_is_one_strict_object(home, capsys):
    rc, out, _ = run(capsys, "--home", str(home), "fill", "bi", "--text", "i am _ hungry .", "--top", "2", "--json")
    assert rc == 0
    (line,) = out.splitlines()
    obj = json.loads(line)
    assert obj["event"] == "fill" and obj["model"] == "bi" and obj["method"] == BOTH_WAYS
    assert obj["blanks"][0]["chosen"] == "very" and len(obj["blanks"][0]["candidates"]) == 2


def test_the_text_output_and_control_characters(home, capsys):
    rc, out, _ = run(capsys, "--home", str(home), "fill", "fw", "--text", "i am _ hungry \x1b[2J.")
    assert rc == 0 and "\x1b" not in out
    assert out.splitlines()[0].startswith("i am very hungry") and "scoring" in out and "very" in out
    assert "not in the vocabulary" in out


def test_a_newline_candidate_is_shown_escaped_on_its_own_line(home, capsys):
    """The word vocabulary holds the line break: offered as a candidate it reads \\n, one line per
    candidate (a raw newline would break the table)."""
    rc, out, _ = run(capsys, "--home", str(home), "fill", "bi", "--text", "i am very hungry . _ you", "--top", "100")
    lines = out.splitlines()
    candidates = lines[lines.index("blank 1:") + 1:]
    assert rc == 0 and candidates and all(line.startswith("  ") and line.endswith("%") for line in candidates)
    assert any(line.split()[0] == "\\n" for line in candidates)


@pytest.mark.parametrize("text,says", [("i am very hungry .", "no blank"), ("_ _", "only blanks"),
                                       ("i am hun_gry .", "inside the word 'hun_gry'"),
                                       ("i am _ hungry .", "--top")])
def test_bad_input_is_one_line(home, capsys, text, says):
    extra = ["--top", "0"] if says == "--top" else []
    rc, out, err = run(capsys, "--home", str(home), "fill", "bi", "--text", text, *extra)
    assert rc == 1 and len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err


def test_a_model_that_cannot_fill_is_told_apart_from_a_damaged_one(capsys):
    store = Store()
    factories.save(store, "cheat", "lstm", bidirectional=True)
    factories.save(store, "tf", "transformer")
    factories.save(store, "broken", "lstm")
    weights = next(p for p in store.path("broken").iterdir() if p.suffix == ".safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    rc, _, err = run(capsys, "fill", "cheat", "--text", "ab_cd")
    assert rc == 1 and "cannot fill blanks" in err and len(err.strip().splitlines()) == 1
    rc, _, err = run(capsys, "fill", "broken", "--text", "ab_cd")
    assert rc == 1 and "cannot fill" not in err and len(err.strip().splitlines()) == 1
    window = load_model(store, "tf")[0].context_window
    rc, _, err = run(capsys, "fill", "tf", "--text", "a" * window + "_")
    assert rc == 1 and "longer than the model's context" in err and len(err.strip().splitlines()) == 1
