"""Beam search: width 1 is greedy, the score is the model's own log-probability, a wide beam finds the
best sequence of a model small enough to search exhaustively."""
import itertools
import math

import numpy as np
import pytest
import torch

from lmcore import ConfigError, Generator, SamplingSettings
from lmcore.models import family

from .factories import ARCHS, generator


def _model_logprob(gen: Generator, prompt: str, ids: list[int]) -> float:
    """log p(ids | prompt) from one forward pass of the model itself (no decoder, no cache)."""
    prompt_ids, _ = gen.encode_prompt(prompt)
    seq = prompt_ids + ids
    with torch.inference_mode():
        logits, _ = gen.model(torch.tensor([seq]), gen.model.init_state(1))
    logp = torch.log_softmax(logits[0].double(), -1)
    return sum(float(logp[len(prompt_ids) - 1 + i, t]) for i, t in enumerate(ids))


@pytest.mark.parametrize("arch", ARCHS)
def test_width_one_is_greedy(arch):
    gen = generator(arch)
    greedy = [t.token_id for t in gen.stream("the ti", SamplingSettings(temperature=0, max_tokens=30))]
    beam = [t.token_id for t in gen.stream("the ti", SamplingSettings(beam=1, max_tokens=30))]
    assert beam == greedy and len(beam) == 30


@pytest.mark.parametrize("arch", ARCHS)
def test_the_reported_score_is_the_models_own_log_probability(arch):
    gen = generator(arch)
    s = SamplingSettings(beam=4, max_tokens=25)
    stream = gen.stream("the ti", s)
    toks = list(stream)
    ids = [t.token_id for t in toks]
    assert len(ids) == 25 and stream.text == "".join(t.text for t in toks)
    assert stream.logprob == pytest.approx(_model_logprob(gen, "the ti", ids), abs=1e-3)
    assert stream.score == pytest.approx(stream.logprob / 25)
    assert sum(math.log(t.prob) for t in toks) == pytest.approx(stream.logprob, abs=1e-3)
    greedy = [t.token_id for t in gen.stream("the ti", SamplingSettings(temperature=0, max_tokens=25))]
    assert stream.logprob >= _model_logprob(gen, "the ti", greedy) - 1e-4  # never worse than greedy


def test_a_wide_beam_finds_the_best_sequence_of_a_tiny_ngram():
    text = "abcab cabba acbbc aab cba bac ccab " * 3  # 4 real tokens: a, b, c, space
    gen = generator("ngram", text, order=3)
    V = len(gen.vocab)
    assert V == 5  # <unk> + 4
    prompt, length = "ab", 4
    best = max(itertools.product(range(1, V), repeat=length), key=lambda ids: _model_logprob(gen, prompt, list(ids)))
    stream = gen.stream(prompt, SamplingSettings(beam=(V - 1) ** (length - 1), max_tokens=length))
    assert tuple(t.token_id for t in stream) == best
    assert stream.logprob == pytest.approx(_model_logprob(gen, prompt, list(best)), abs=1e-6)
    narrow = gen.stream(prompt, SamplingSettings(beam=1, max_tokens=length))
    list(narrow)
    assert narrow.logprob <= stream.logprob + 1e-9


def test_beams_stream_tokens_as_soon_as_they_are_certain_and_stop_at_a_stop_string():
    gen = generator("lstm")
    s = SamplingSettings(beam=3, max_tokens=40)
    stream = gen.stream("the ", s)
    it = iter(stream)
    first = next(it)  # handed out before the search ends
    assert stream.logprob is None and first.index == 0
    rest = list(it)
    assert len(rest) == 39 and stream.logprob is not None
    text = stream.text
    stop = text[10:12]
    stopped = gen.stream("the ", SamplingSettings(beam=3, max_tokens=40, stop=[stop]))
    out = "".join(t.text for t in stopped)
    assert stop in out and len(out) < 40


def test_beam_settings_are_checked():
    for bad in ({"beam": -1}, {"beam": 65}, {"beam": 1.5}, {"length_penalty": -1}, {"length_penalty": float("nan")}):
        with pytest.raises(ConfigError):
            SamplingSettings(**bad).validate()


def test_clone_keeps_every_decoder_independent():
    for arch in ARCHS:
        gen = generator(arch)
        dec = gen.decoder()
        ids, _ = gen.encode_prompt("the ti")
        dec.prefill(ids)
        twin = dec.clone()
        a = dec.step(3)
        b = twin.step(3)
        np.testing.assert_allclose(a, b, atol=1e-6)
        c = twin.step(4)
        d = dec.step(4)
        np.testing.assert_allclose(c, d, atol=1e-6)
        e = dec.step(5)
        f = twin.step(6)
        assert not np.allclose(e, f) or not family(arch).trainable  # a counted model may not tell them apart


# ---------------------------------------------------------------------------- the CLI
def test_cli_beam_search_and_sampling_presets(prose, capsys):
    import json

    import lmcore
    from lmcore.cli.main import main

    lmcore.train("g", arch="lstm", preset="tiny", corpus=str(prose), steps=10, eval_every=10)
    assert main(["generate", "g", "--prompt", "The ", "--length", "20", "--beam", "3", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["event"] == "settings" and lines[0]["beam"] == 3 and lines[0]["summary"] == "beam 3"
    tokens = [x for x in lines if "token_id" in x]
    end = lines[-1]
    assert end["event"] == "beam" and end["tokens"] == len(tokens) == 20
    assert end["logprob"] == pytest.approx(sum(math.log(t["prob"]) for t in tokens), abs=1e-2)
    # the same beam twice: the same text (deterministic, no seed)
    assert main(["generate", "g", "--prompt", "The ", "--length", "20", "--beam", "3", "--no-echo"]) == 0
    first = capsys.readouterr()
    assert main(["generate", "g", "--prompt", "The ", "--length", "20", "--beam", "3", "--no-echo"]) == 0
    assert capsys.readouterr().out == first.out and "log-probability" in first.err
    # a preset, with one control overridden
    assert main(["generate", "g", "--length", "5", "--sampling", "precise", "--top-p", "0.8", "--json"]) == 0
    settings = json.loads(capsys.readouterr().out.splitlines()[0])
    assert settings["temperature"] == 0.5 and settings["top_p"] == 0.8 and "top-p 0.8" in settings["summary"]
    assert main(["generate", "g", "--beam", "65"]) == 1
    assert "beam width" in capsys.readouterr().err
