"""Models side by side: the same prompt continued by each, the same text scored by each."""
import json
import math

import pytest
import torch

import lmcore
from lmcore import Generator, Store
from lmcore.cli.main import main
from lmcore.generation.scoring import score_text

from .factories import ARCHS, generator


@pytest.mark.parametrize("arch", ARCHS)
def test_scores_reproduce_the_models_own_loss(arch):
    gen = generator(arch)
    text = "the time traveller held in his hand"
    sc = score_text(gen, text)
    ids = gen.vocab[gen.tokenizer.tokenize(text)]
    with torch.inference_mode():
        logits, _ = gen.model(torch.tensor([ids]), gen.model.init_state(1))
    want = torch.nn.functional.cross_entropy(logits[0, :-1].double(), torch.tensor(ids[1:])).item()
    assert len(sc.tokens) == len(ids) - 1 and "".join(t.text for t in sc.tokens) == text[1:]
    assert sc.loss == pytest.approx(want, abs=1e-4)
    assert sc.bits_per_char == pytest.approx(want / math.log(2), abs=1e-4)  # characters: one per token


def test_compare_a_prompt_and_a_text_headless(prose, capsys):
    for name, arch in (("a", "ngram"), ("b", "lstm")):
        lmcore.train(name, arch=arch, preset="tiny", corpus=str(prose), steps=10, eval_every=10)
    assert main(["compare", "a", "b", "--prompt", "The object", "--length", "30", "--seed", "5", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["event"] == "settings" and rows[0]["seed"] == 5
    done = {r["model"]: r["text"] for r in rows if r.get("event") == "done"}
    models = {r["model"]: r for r in rows if r.get("event") == "model"}
    assert set(done) == {"a", "b"} and all(len(t) == 30 for t in done.values())
    for name in ("a", "b"):  # each column is what that model generates alone with the same settings
        gen = Generator.from_store(Store(), name)
        assert gen.complete("The object", lmcore.SamplingSettings(temperature=0.8, max_tokens=30, seed=5)) == done[name]
        assert models[name]["prompt_ppl"] == pytest.approx(score_text(gen, "The object").ppl)
        assert sum(1 for r in rows if r.get("model") == name and "token_id" in r) == 30
    assert main(["compare", "a", "b", "--text", "The object is returned.", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summaries = {r["model"]: r for r in rows if r.get("event") == "summary"}
    for name in ("a", "b"):
        losses = [r["loss"] for r in rows if r.get("model") == name and "loss" in r and "event" not in r]
        assert summaries[name]["tokens"] == len(losses) == len("The object is returned.") - 1
        assert summaries[name]["loss"] == pytest.approx(sum(losses) / len(losses))
    assert main(["compare", "a", "b", "--text", "The object is returned."]) == 0
    out = capsys.readouterr().out
    assert "bits/char" in out and "The object is returned." in out
    assert main(["compare", "a"]) == 1
    assert "two different models or more" in capsys.readouterr().err


def test_compare_refuses_the_same_model_twice_and_mixed_inputs(home, capsys):
    from lmcore import Store

    from . import factories

    for name in ("a", "b"):
        factories.save(Store(home), name)
    for argv, said in ((["a", "a", "--prompt", "x"], "two different models"),
                       (["a", "b", "--prompt", "x", "--text", "abc"], "give one of them"),
                       (["a", "b", "--text", "abc", "--file", "f.txt"], "not both")):
        assert main(["--home", str(home), "compare", *argv]) == 1
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1


def test_compare_refuses_an_encoder_decoder_beside_a_text_model_before_printing_anything(home, capsys):
    """A seq2seq model answers a source: beside a model that continues text, compare says so in one line,
    before any model's header (models of one pairs corpus: tests/test_compare_pairs.py)."""
    from . import factories

    factories.save(Store(home), "lm")
    factories.save(Store(home), "s2s", "seq2seq")
    assert main(["--home", str(home), "compare", "lm", "s2s", "--prompt", "3 May 1979"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and "answers sources" in out.err and out.err.count("\n") == 1
