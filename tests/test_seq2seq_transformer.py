"""The seq2seq-transformer family (lmcore/models/seq2seq_transformer/) and the decoding written once for
every encoder-decoder (lmcore/generation/seq2seq_decode.py): the incremental decoder against the full
forward pass, the source's padding, the attention maps, greedy and beam search."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import lmcore
from lmcore.cli.main import main
from lmcore.errors import ConfigError, LmError
from lmcore.data.text import Tokenizer, build_vocab
from lmcore.generation.generator import Generator
from lmcore.generation.sampling_settings import SamplingSettings
from lmcore.generation.seq2seq_decode import beam_search, greedy, greedy_many, sample_steps, source_problem
from lmcore.inspect import alignment_view
from lmcore.models import build_model, registry
from lmcore.models.config import ModelConfig

ARCH = "seq2seq-transformer"
V, BOS, EOS = 13, 1, 1  # the newline token both starts and ends a target


def make(pos="sinusoidal", seed=0, **options):
    torch.manual_seed(seed)
    opts = {"num_layers": 2, "hidden": 16, "heads": 2, "ffn": 32, "max_len": 24, "dropout": 0.0, "pos": pos, **options}
    config = ModelConfig(ARCH, vocab_size=V, **opts)
    return config.family.model_class(ARCH)(config).eval()


def test_the_family_reads_pairs_and_its_tensors_follow_from_the_config():
    fam = registry.family(ARCH)
    assert fam.reads_pairs and fam.shows(ModelConfig(ARCH, vocab_size=V), "attention")
    for pos in ("sinusoidal", "learned"):
        model = make(pos)
        shapes = fam.shapes(model.config)
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == shapes
    for preset in ("tiny", "small", "base"):
        fam.validate(ModelConfig(ARCH, vocab_size=V, **fam.preset(ARCH, preset)["model"]))


def test_a_width_that_the_heads_do_not_divide_is_refused():
    config = ModelConfig(ARCH, vocab_size=V, hidden=10, heads=4)
    with pytest.raises(ConfigError, match="multiple of the heads"):
        config.family.validate(config)


@pytest.mark.parametrize("pos", ["sinusoidal", "learned"])
def test_the_incremental_decoder_equals_the_forward_pass_token_by_token(pos):
    model = make(pos)
    src = torch.randint(0, V, (3, 9))
    src_len = torch.tensor([9, 5, 1])
    tgt = torch.randint(0, V, (3, 7))
    full = model(src, src_len, tgt)
    state = model.encode(src, src_len)
    for t in range(tgt.shape[1]):
        logits, state = model.decode_step(tgt[:, t], state)
        assert torch.allclose(logits, full[:, t], atol=1e-5), t


def test_padding_after_the_valid_source_changes_nothing():
    model = make()
    src = torch.randint(2, V, (1, 6))
    tgt = torch.randint(0, V, (1, 5))
    alone = model(src, torch.tensor([6]), tgt)
    for pad in (EOS, 0, 7):
        padded = torch.cat([src, torch.full((1, 8), pad)], 1)
        assert torch.allclose(model(padded, torch.tensor([6]), tgt), alone, atol=1e-5)
    noise = torch.cat([src, torch.randint(0, V, (1, 8))], 1)  # whatever the padding holds
    assert torch.allclose(model(noise, torch.tensor([6]), tgt), alone, atol=1e-5)


def test_the_cross_attention_rows_sum_to_one_over_the_valid_source():
    model = make()
    src = torch.randint(0, V, (1, 10))
    tgt = torch.randint(0, V, (1, 4))
    maps = model.alignment(src, torch.tensor([6]), tgt)
    assert len(maps) == 2
    for layer in maps:
        assert layer.shape == (2, 4, 6)  # heads, target tokens, valid source tokens
        assert torch.allclose(layer.sum(-1), torch.ones(2, 4), atol=1e-5)
        assert (layer >= 0).all()


def test_the_self_attention_maps_are_masked_and_causal():
    model = make()
    maps = model.self_attention(torch.randint(0, V, (1, 10)), torch.tensor([6]), torch.randint(0, V, (1, 5)))
    for enc in maps["encoder"]:
        assert enc.shape == (2, 6, 6) and torch.allclose(enc.sum(-1), torch.ones(2, 6), atol=1e-5)
    for dec in maps["decoder"]:
        assert dec.shape == (2, 5, 5) and torch.allclose(dec.sum(-1), torch.ones(2, 5), atol=1e-5)
        assert (dec.triu(1) == 0).all()  # no target token reads a later one


def test_a_source_longer_than_the_limit_is_refused_with_one_line():
    model = make(max_len=8)
    with pytest.raises(ValueError, match="longer than the model's limit of 8"):
        model(torch.zeros(1, 9, dtype=torch.long), torch.tensor([9]), torch.zeros(1, 2, dtype=torch.long))
    assert "more than this model's limit of 8" in source_problem(model, list(range(9)))
    assert "empty" in source_problem(model, [])
    with pytest.raises(ConfigError, match="limit of 8"):
        greedy(model, [2] * 9, BOS, EOS)


# ---------------------------------------------------------------- decoding, for every encoder-decoder
def test_greedy_follows_the_forward_pass_argmax_and_reports_why_it_ended():  # <unk> (0) never chosen
    model = make(seed=3)
    src = [4, 5, 6, 7, 8]
    reply = greedy(model, src, BOS, EOS, max_len=10)
    tgt_in = torch.tensor([[BOS] + reply.ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([src]), torch.tensor([5]), tgt_in).double(), -1)[0]
    expect = reply.ids + ([EOS] if reply.ended else [])
    assert (logp[:, 1:].argmax(-1) + 1).tolist()[: len(expect)] == expect
    assert reply.logprob == pytest.approx(float(sum(logp[i, t] for i, t in enumerate(expect))), abs=1e-6)
    assert reply.probs == pytest.approx([math.exp(float(logp[i, t])) for i, t in enumerate(reply.ids)], abs=1e-6)
    if not reply.ended:
        assert reply.reason == "length" and len(reply.ids) == 10


def test_a_reply_cut_at_the_length_limit_says_so():
    model = make(seed=1)
    with torch.no_grad():
        model.head.bias[EOS] = -1e4  # never ends by itself
    reply = greedy(model, [3, 4], BOS, EOS, max_len=6)
    assert (reply.ended, reply.reason, len(reply.ids), reply.limit) == (False, "length", 6, 6)
    assert len(greedy(model, [3, 4], BOS, EOS).ids) == 24  # no limit asked: the model's max_len
    assert beam_search(model, [3, 4], BOS, EOS, width=3, max_len=5).reason == "length"


def test_batched_greedy_equals_one_source_at_a_time():
    model = make(seed=2)
    sources = [[3, 4, 5], [6] * 9, [7, 2]]
    assert [r.ids for r in greedy_many(model, sources, BOS, EOS, max_len=8)] == \
           [greedy(model, s, BOS, EOS, max_len=8).ids for s in sources]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_beam_of_one_is_greedy(seed):
    model = make(seed=seed)
    src = list(np.random.default_rng(seed).integers(2, V, 6))
    g, b = greedy(model, src, BOS, EOS, max_len=12), beam_search(model, src, BOS, EOS, width=1, max_len=12)
    assert (b.ids, b.ended) == (g.ids, g.ended)
    assert b.logprob == pytest.approx(g.logprob, abs=1e-9)


def test_sampling_at_temperature_zero_is_greedy():
    model = make(seed=4)
    steps = list(sample_steps(model, [5, 6, 7], BOS, EOS, SamplingSettings(temperature=0.0), max_len=9))
    g = greedy(model, [5, 6, 7], BOS, EOS, max_len=9)
    assert [s.token_id for s in steps if not s.eos] == g.ids
    assert any(s.eos for s in steps) == g.ended


class Table:
    """A hand-made encoder-decoder: the next token's probabilities depend on the target so far only.
    Tokens: 0 <unk>, 1 eos/bos, 2 "A", 3 "B". Greedy reads A (0.6) then A (0.5): 0.30; the better reply
    is B (0.4) then A (0.9): 0.36."""

    class config:
        max_len = 5

    def parameters(self):
        return iter(())

    def encode(self, src, src_len):
        return torch.zeros(src.shape[0], 0, dtype=torch.long)  # the target so far, per row

    def select_state(self, state, index):
        return state.index_select(0, index)

    def decode_step(self, token, state):
        state = torch.cat([state, token[:, None]], 1)
        rows = []
        for prefix in state.tolist():
            seen = prefix[1:]  # after bos
            table = {(): [0.0, 0.0, 0.6, 0.4], (2,): [0.0, 0.0, 0.5, 0.5], (3,): [0.0, 0.0, 0.9, 0.1]}
            rows.append(table.get(tuple(seen), [0.0, 1.0, 0.0, 0.0]))
        return torch.tensor(rows).clamp(min=1e-12).log(), state


def test_beam_search_finds_the_more_likely_reply_that_greedy_misses():
    g = greedy(Table(), [2], 1, 1)
    b = beam_search(Table(), [2], 1, 1, width=2)
    assert (g.ids, round(math.exp(g.logprob), 6), g.ended) == ([2, 2], 0.3, True)
    assert (b.ids, round(math.exp(b.logprob), 6), b.ended) == ([3, 2], 0.36, True)
    assert b.probs == pytest.approx([0.4, 0.9])
    assert beam_search(Table(), [2], 1, 1, width=1).ids == [2, 2]


def test_bad_beam_widths_and_limits_are_refused():
    model = make()
    for width in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="beam width"):
            beam_search(model, [3], BOS, EOS, width=width)
    with pytest.raises(ConfigError, match="length limit"):
        greedy(model, [3], BOS, EOS, max_len=0)
    with pytest.raises(ConfigError, match=f"token id {V}, outside the vocabulary of {V}"):
        greedy(model, [3, V], BOS, EOS)
    with pytest.raises(ConfigError, match="token id -1"):
        beam_search(model, [-1], BOS, EOS)
    with pytest.raises(ConfigError, match="the start and end tokens"):
        greedy(model, [3], BOS, 99)


@pytest.mark.parametrize("attention", ["none", "additive", "dot"])
def test_beam_search_serves_the_recurrent_family_too(attention):
    torch.manual_seed(0)
    config = ModelConfig("seq2seq", V, attention=attention, num_layers=2, embed=8, hidden=16, max_len=12)
    model = config.family.model_class("seq2seq")(config).eval()
    for src in ([3, 4, 5], [6, 7, 8, 9, 10, 11]):
        g, b = greedy(model, src, BOS, EOS), beam_search(model, src, BOS, EOS, width=1)
        assert (b.ids, b.ended) == (g.ids, g.ended)
        wide = beam_search(model, src, BOS, EOS, width=4, length_penalty=0.0)
        assert wide.logprob >= g.logprob - 1e-9 or not g.ended  # raw log-probabilities: the beam is no worse


def test_a_model_whose_output_is_not_a_number_says_so():
    model = make()
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    with pytest.raises(LmError, match="not a number"):
        greedy(model, [3, 4], BOS, EOS)
    with pytest.raises(LmError, match="not a number"):
        beam_search(model, [3, 4], BOS, EOS, width=2)


@pytest.fixture
def pairs_file(tmp_path):
    """A tiny reversal task: 200 pairs of letters and their reverse."""
    rng = np.random.default_rng(0)
    words = ["".join(rng.choice(list("abcdef"), rng.integers(2, 7))) for _ in range(200)]
    p = tmp_path / "rev.tsv"
    p.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words), "utf-8")
    return p


def _json(capsys, argv) -> list[dict]:
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    return [json.loads(line) for line in out.splitlines()]


def test_a_tiny_seq2seq_transformer_trains_on_pairs_via_the_cli_and_answers_greedy_or_by_beam(pairs_file, capsys, home):
    events = _json(capsys, ["train", "t", "--arch", ARCH, "--preset", "tiny", "--corpus", str(pairs_file),
                            "--steps", "20", "--eval-every", "10", "--batch", "16", "--device", "cpu", "--json"])
    assert [e["step"] for e in events if e["event"] == "eval"] == [10, 20]
    summary = events[-1]
    assert summary["ok"] and 0 <= summary["best_val_bleu"] <= 1 and 0 <= summary["best_val_exact"] <= 1
    ck = lmcore.Store(home).read("t")
    assert ck.model.arch == ARCH and ck.corpus.pairs_seed is not None

    greedy_text = _json(capsys, ["generate", "t", "--prompt", "abc", "--json"])[-1]
    one_beam = _json(capsys, ["generate", "t", "--prompt", "abc", "--beam", "1", "--json"])[-1]
    assert greedy_text["event"] == one_beam["event"] == "reply"
    assert one_beam["text"] == greedy_text["text"] and set(one_beam["text"]) <= set("abcdef ")
    cold = _json(capsys, ["generate", "t", "--prompt", "abc", "--temperature", "0", "--json"])[-1]
    assert cold["text"] == greedy_text["text"]
    drawn = [_json(capsys, ["generate", "t", "--prompt", "abc", "--temperature", "1.5", "--seed", "7", "--json"])
             for _ in range(2)]
    assert drawn[0] == drawn[1] and set(drawn[0][-1]["text"]) <= set("abcdef ")  # seeded: the same draw
    cut = _json(capsys, ["generate", "t", "--prompt", "abc", "--temperature", "1", "--length", "1", "--json"])[-1]
    assert cut["ended"] is False or cut["text"] == ""
    assert main(["generate", "t", "--prompt", "abc", "--temperature", "1", "--length", "1"]) == 0
    said = capsys.readouterr()
    assert "cut at 1 tokens (--length)" in said.err or said.out.strip() == ""
    assert main(["generate", "t", "--prompt", "abc", "--beam", "3"]) == 0
    assert "\t" not in capsys.readouterr().out
    assert main(["generate", "t", "--prompt", "a" * 65, "--beam", "3"]) == 1  # the tiny preset's limit: 64
    err = capsys.readouterr().err
    assert "limit of 64" in err and len(err.strip().splitlines()) == 1

    lines = _json(capsys, ["inspect", "attention", "t", "--text", "abc", "--target", "cba", "--json", "--layer", "1"])
    assert lines[0] == {"event": "reply", "text": "cba", "ended": True}
    shown = lines[1]
    assert (shown["rows"], shown["columns"], shown["layers"], shown["heads"]) == (["c", "b", "a", "<eos>"], list("abc"), 2, 2)
    assert all(abs(sum(row) - 1) < 1e-4 for row in shown["weights"])
    for kind in ("cross", "encoder", "decoder"):
        assert main(["inspect", "attention", "t", "--text", "abc", "--kind", kind]) == 0
        assert "darker = more attention" in capsys.readouterr().out
    assert main(["inspect", "attention", "t", "--text", "", "--json"]) == 1
    assert "the source is empty" in capsys.readouterr().err
    assert main(["inspect", "attention", "t", "--text", "abc", "--layer", "2"]) == 1
    assert "layer must be between 0 and 1" in capsys.readouterr().err


# ---------------------------------------------------------------- alignments (lmcore inspect attention)
def pairs_generator(arch, **options):
    """An untrained encoder-decoder over the characters of a few pairs, as the app and the CLI hold one."""
    tok = Tokenizer("char", "raw")
    vocab = build_vocab("abcdef\tfedcba\nbad\tdab\n", tok)
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch, len(vocab), max_len=12, **options))
    return Generator(model, vocab, tok)


def test_the_alignment_view_has_a_row_per_reply_token_over_the_source():
    gen = pairs_generator(ARCH, num_layers=2, hidden=16, heads=2, ffn=32)
    view = alignment_view(gen, "abcd")
    assert view.kinds == ("cross", "encoder", "decoder") and view.source == list("abcd")
    assert view.target[-1] == "<eos>" if view.ended else len(view.target) == 12
    assert "".join(view.target).removesuffix("<eos>") == view.reply
    for kind in view.kinds:
        rows, cols = view.labels(kind)
        for layer in range(view.layers(kind)):
            for head in range(view.heads(kind)):
                m = view.matrix(kind, layer, head)
                assert m.shape == (len(rows), len(cols))
                assert np.allclose(m.sum(1), 1, atol=1e-5)
    given = alignment_view(gen, "abcd", target="dcba")
    assert given.target == ["d", "c", "b", "a", "<eos>"] and given.target_in == ["<eos>", "d", "c", "b", "a"]
    with pytest.raises(ConfigError, match="head must be between 0 and 1"):
        given.matrix("cross", 0, 2)


def test_the_recurrent_family_shows_its_alignment_and_says_when_it_has_none():
    view = alignment_view(pairs_generator("seq2seq", attention="additive", embed=8, hidden=16), "abc", "cba")
    assert view.kinds == ("cross",) and view.matrix().shape == (4, 3)
    assert np.allclose(view.matrix().sum(1), 1, atol=1e-5)
    with pytest.raises(ConfigError, match="no encoder attention"):
        view.matrix("encoder")
    with pytest.raises(ConfigError, match="no source-target alignment"):
        alignment_view(pairs_generator("seq2seq", attention="none", embed=8, hidden=16), "abc")
