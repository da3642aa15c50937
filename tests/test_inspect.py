"""Look inside: every view is checked against a second computation (the model's own forward pass,
torch.nn's fused modules, autograd on another implementation), not by eye."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lmcore
from lmcore import Generator, Tokenizer, Vocab
from lmcore.cli.main import main
from lmcore.inspect import (AttentionView, NeuronTrace, attention_view, find_units, gradient_flow,
                            gradient_flows, text_properties, trace_text, zipf_stats)
from lmcore.inspect.gradients import fresh_model, random_ids
from lmcore.models import build_model, preset_config

from . import factories

TEXT = "a bad cafe, (head) 'ache' fed\nbeef a dace\nhe fade bead "


def _gen(arch, **overrides) -> Generator:
    vocab = Vocab(list("abcdefgh \n,()'"))
    torch.manual_seed(0)
    model = build_model(preset_config(arch, "tiny", vocab_size=len(vocab), **overrides))
    return Generator(model, vocab, Tokenizer())


def _ids(gen, text=TEXT):
    return torch.tensor([gen.vocab.token_to_idx.get(t, 0) for t in gen.tokenizer.tokenize(text)])


# ---------------------------------------------------------------------------- neurons
@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("impl", ["fused", "scratch"])
def test_neuron_values_equal_the_models_forward_pass_in_every_layer(arch, impl):
    gen = _gen(arch, num_layers=2, impl=impl)
    model, ids = gen.model, _ids(gen)
    trace = trace_text(gen, TEXT)
    assert len(trace.layers) == 2 and trace.values == model.unit_values and len(trace.tokens) == len(ids)
    # the model's own output: the last layer's h through the head gives its logits
    logits, _ = model(ids[None])
    assert torch.allclose(model.head(torch.from_numpy(trace.layers[-1]["h"])), logits[0], atol=1e-5)
    # each layer against torch.nn's fused module holding that layer's weights
    x = model.embedding(ids)[None].detach()
    for layer, values in enumerate(trace.layers):
        ref = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[arch](x.shape[-1], 64, batch_first=True)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(ref, f"{name}_l0").copy_(getattr(model.rnn, f"{name}_l{layer}"))
            y, state = ref(x)
        assert np.allclose(values["h"], y[0].numpy(), atol=1e-5)
        if arch == "lstm":
            c = values["c"]
            assert np.allclose(c[-1], state[1][0, 0].numpy(), atol=1e-5)
            assert np.allclose(values["h"], values["o"] * np.tanh(c), atol=1e-5)  # h = o tanh(c)
            g = (c - values["f"] * np.vstack([np.zeros((1, 64)), c[:-1]])) / values["i"]
            assert np.abs(g).max() <= 1 + 1e-4  # c = f c' + i g with g = tanh(·) in [-1, 1]
        for gate in set(values) - {"c", "h"}:
            assert ((values[gate] >= 0) & (values[gate] <= 1)).all()
        x = torch.from_numpy(values["h"])[None]


def test_units_that_track_a_property_are_found_first():
    pieces = list(TEXT)
    props = text_properties(pieces)
    assert props["inside brackets"].tolist() == [12 <= i <= 16 for i in range(len(TEXT))]  # (head)
    assert props["inside quotes"].tolist() == [19 <= i <= 23 for i in range(len(TEXT))]  # 'ache'
    assert props["position in line"][TEXT.index("\n") + 1] == 1
    assert props["after a line break"][TEXT.index("\n")] == 1
    rng = np.random.default_rng(0)
    n = len(pieces)
    c = rng.normal(size=(n, 8))
    c[:, 5] = props["inside quotes"] * 2 - 1 + rng.normal(scale=0.01, size=n)  # a quote unit
    gates = rng.uniform(0.2, 0.8, size=(n, 8))
    gates[:, 3] = 0.97  # always open
    trace = NeuronTrace(pieces, [{"c": c, "h": np.tanh(c), "i": gates, "f": gates, "o": gates}])
    ranked = find_units(trace, top=3)
    best = ranked["inside quotes"][0]
    assert (best["value"], best["unit"]) in (("c", 5), ("h", 5)) and best["score"] > 0.99
    assert ranked["saturated gates"][0]["unit"] == 3 and ranked["saturated gates"][0]["right"] == 1.0
    with pytest.raises(lmcore.ConfigError, match="layer must be between"):
        find_units(trace, layer=3)
    with pytest.raises(lmcore.ConfigError, match="unit must be between"):
        trace.unit(0, "c", 8)


def test_neurons_and_attention_say_which_models_have_them():
    with pytest.raises(lmcore.ConfigError, match="neurons are shown for rnn, gru, lstm and birnn"):
        trace_text(_gen("transformer"), TEXT)
    with pytest.raises(lmcore.ConfigError, match="attention is shown for transformer"):
        attention_view(_gen("lstm"), TEXT)


# ---------------------------------------------------------------------------- attention
@pytest.mark.parametrize("pos", ["learned", "rotary"])
def test_attention_rows_sum_to_one_are_causal_and_reproduce_the_attention_output(pos):
    gen = _gen("transformer", pos=pos, context=32)
    model = gen.model
    text = TEXT + "bad cafe"  # longer than the context: the last 32 tokens
    view = attention_view(gen, text)
    assert view.layers == 2 and view.heads == 2 and view.tokens == list(text)[-32:]
    captured = []
    hooks = [b.attn.c_proj.register_forward_pre_hook(lambda m, args: captured.append(args[0].detach()))
             for b in model.blocks]
    model(_ids(gen, text)[-32:][None])
    for h in hooks:
        h.remove()
    for layer in range(view.layers):
        for head in range(view.heads):
            w = view.matrix(layer, head)
            assert np.allclose(w.sum(1), 1, atol=1e-5) and np.allclose(np.triu(w, 1), 0)
        mixed = np.einsum("hqk,hkd->qhd", view.weights[layer], view.values[layer]).reshape(32, -1)
        assert np.allclose(mixed, captured[layer][0].numpy(), atol=1e-5)  # weights x values = the output
    with pytest.raises(lmcore.ConfigError, match="head must be between 0 and 1"):
        view.matrix(0, 2)


def test_head_patterns_name_what_a_head_looks_at():
    tokens = list("ab\ncab\nca")
    t = len(tokens)
    prev = np.zeros((t, t))
    prev[0, 0] = 1
    for i in range(1, t):
        prev[i, i - 1] = 1
    first = np.zeros((t, t))
    first[:, 0] = 1
    view = AttentionView(tokens, [np.stack([prev, first])], [np.zeros((2, t, 1))])
    heads = view.head_patterns()[0]
    assert heads[0][0] == {"pattern": "the previous token", "mass": 1.0}
    assert heads[1][0] == {"pattern": "the first token", "mass": 1.0}


# ---------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("arch", ["rnn", "gru", "lstm"])
def test_gradient_norms_match_autograd_through_torch_nn_step_by_step(arch):
    model = fresh_model(arch, preset="tiny")
    ids = random_ids(model.config.vocab_size, 30)
    flow = gradient_flow(model, ids)
    # a second implementation: torch.nn's module, one step at a time, each state kept for its gradient
    x = model.embedding(ids[:-1])[None].detach()
    state = model.init_state(1)
    hs = []
    for t in range(x.shape[1]):
        y, state = model.rnn(x[:, t: t + 1], state)
        h = state[0] if arch == "lstm" else state
        h.retain_grad()
        hs.append(h)
    F.cross_entropy(model.head(hs[-1][-1]), ids[-1:]).backward()  # y[:, -1] is the last layer of h
    ref = np.array([h.grad.norm().item() for h in hs])
    assert len(flow.norms) == 30
    assert np.allclose(flow.norms, ref, rtol=1e-4, atol=1e-12)


def test_the_plain_rnn_gradient_vanishes_orders_of_magnitude_faster_than_the_lstm():
    flows = {f.label: f.norms for f in gradient_flows(60)}
    back = 40  # steps back from the last
    rnn, lstm0, lstm1 = flows["rnn"][-back], flows["lstm, forget bias 0"][-back], flows["lstm, forget bias 1"][-back]
    assert rnn < 1e-3 * lstm1  # at least three orders of magnitude
    assert lstm1 > lstm0  # the forget-gate bias of 1 keeps the gradient longer


# ---------------------------------------------------------------------------- surprisal
@pytest.mark.parametrize("arch", ["ngram", "lstm", "transformer"])
def test_surprisal_rows_reproduce_the_models_own_loss(arch):
    ck, state = factories.checkpoint("m", arch)
    model = build_model(ck.model)
    model.load_weights(state)
    gen = Generator(model, ck.vocab, ck.tokenizer)
    text = "abc dea fgh\nabba cafe"
    sc = lmcore.score_text(gen, text, top=5)
    ids = _ids(gen, text)
    logits, _ = model.eval()(ids[None, :-1])
    assert sc.loss == pytest.approx(F.cross_entropy(logits[0], ids[1:]).item(), rel=1e-5)
    logp = torch.log_softmax(logits[0].double(), -1)
    for i, t in enumerate(sc.tokens):
        assert t.rank == int((logp[i] > logp[i, ids[i + 1]]).sum()) + 1
        probs = [p for _, p in t.alternatives]
        assert probs == sorted(probs, reverse=True) and len(probs) == 5
        assert (t.rank == 1) == (t.alternatives[0][1] == pytest.approx(t.prob))  # (ties share a rank)


# ---------------------------------------------------------------------------- zipf
def test_zipf_of_a_text_that_follows_the_law_exactly():
    words = []
    for i in range(1, 201):
        words += [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}"] * (2000 // i)
    stats = zipf_stats(" ".join(words), "word", "raw", max_n=1)
    uni = stats.ngrams[0]
    assert uni.slope == pytest.approx(-1.0, abs=0.02)
    assert uni.freqs[0] == 2000 and uni.coverage[10] == pytest.approx(uni.freqs[:10].sum() / uni.freqs.sum())
    small = zipf_stats("a b a c a b", "word", "raw")
    assert small.ngrams[0].hapax == 1 and small.ngrams[1].top[0] == ("a b", 2)


def test_zipf_slope_of_timemachine_words_is_the_chapters(tm_text):
    stats = zipf_stats(tm_text, "word")
    assert -1.15 < stats.ngrams[0].slope < -0.85  # the chapter's unigram line, slope about -1
    assert stats.ngrams[0].slope < stats.ngrams[1].slope < stats.ngrams[2].slope  # flatter for n-grams
    assert stats.ngrams[0].top[0][0] == "the"


# ---------------------------------------------------------------------------- the command line
def _lines(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_inspect_commands_print_strict_json(home, capsys, prose):
    lmcore.train("rec", arch="lstm", preset="tiny", corpus=str(prose), steps=3, home=home)
    lmcore.train("tf", arch="transformer", preset="tiny", corpus=str(prose), steps=3, home=home)
    text = "The object of the module is"
    assert main(["--home", str(home), "inspect", "surprisal", "rec", "--text", text, "--json"]) == 0
    rows = _lines(capsys)
    assert rows[-1]["event"] == "summary" and rows[-1]["tokens"] == len(text) - 1 == len(rows) - 1
    assert set(rows[0]) == {"token", "prob", "rank", "alternatives"}
    assert main(["--home", str(home), "inspect", "neurons", "rec", "--text", text, "--json", "--top", "2"]) == 0
    assert {r["property"] for r in _lines(capsys)} >= {"inside a word", "saturated gates"}
    assert main(["--home", str(home), "inspect", "neurons", "rec", "--text", text, "--unit", "3", "--value", "f",
                 "--json"]) == 0
    assert len(_lines(capsys)) == len(text)
    assert main(["--home", str(home), "inspect", "attention", "tf", "--text", text, "--layer", "1", "--head", "1",
                 "--json"]) == 0
    rows = _lines(capsys)
    assert all(abs(sum(r) - 1) < 1e-5 for r in rows[0]["weights"]) and len(rows) == 1 + 2 * 2
    assert main(["--home", str(home), "inspect", "gradients", "--length", "20", "--json"]) == 0
    assert [r["model"] for r in _lines(capsys)] == ["rnn", "gru", "lstm, forget bias 0", "lstm, forget bias 1"]
    assert main(["--home", str(home), "inspect", "gradients", "--model", "rec", "--length", "20", "--json"]) == 0
    assert len(_lines(capsys)[0]["norms"]) == 20
    assert main(["--home", str(home), "corpora", "zipf", str(prose), "--json"]) == 0
    assert [r["n"] for r in _lines(capsys)] == [1, 2, 3]
    # wrong model kinds and out-of-range choices: one line, exit 1
    for argv, said in ((["inspect", "neurons", "tf", "--text", text], "neurons are shown for rnn"),
                       (["inspect", "attention", "rec", "--text", text], "attention is shown for transformer"),
                       (["inspect", "attention", "tf", "--text", text, "--layer", "5"], "layer must be between"),
                       (["inspect", "surprisal", "rec"], "give the text"),
                       (["inspect", "gradients", "--arch", "gru", "--forget-bias", "1"], "applies to lstm"),
                       (["inspect", "gradients", "--arch", "lstm", "--forget-bias", "nan"], "forget-gate bias must be"),
                       (["inspect", "gradients", "--arch", "lstm", "--forget-bias", "1e308"], "forget-gate bias must be"),
                       (["inspect", "gradients", "--seed", str(10 ** 30)], "seed must be")):
        assert main(["--home", str(home), *argv]) == 1
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1 and "Traceback" not in err
    # a text too short for trigrams: empty rows, no slope (null), no traceback
    tiny = prose.parent / "two.txt"
    tiny.write_text("hello world", "utf-8")
    assert main(["--home", str(home), "corpora", "--json", "zipf", str(tiny)]) == 0
    rows = _lines(capsys)
    assert rows[2]["distinct"] == 0 and rows[2]["rank_freq"] == [] and rows[0]["slope"] is None
    # the human view: the text, coloured, and the summary
    assert main(["--home", str(home), "inspect", "surprisal", "rec", "--text", text]) == 0
    out = capsys.readouterr().out
    assert "bits/char" in out and "top 1" in out and math.isfinite(float(out.split("perplexity ")[1].split()[0]))


def test_long_views_report_progress_and_stop_when_asked():
    import threading

    gen = _gen("lstm", num_layers=2)
    text = TEXT * 40
    seen = []
    lmcore.score_text(gen, text, progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][1] == len(text) - 1 and seen == sorted(seen)
    seen.clear()
    trace_text(gen, text, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1][1] == 2 * len(text) and seen[-1][0] >= len(text)  # both layers
    stop = threading.Event()
    stop.set()
    with pytest.raises(lmcore.errors.Cancelled):
        trace_text(gen, text, stop_event=stop)
