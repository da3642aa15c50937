"""The seq2seq family (d2l's recurrent encoder–decoder, with none, additive or dot attention): its decoder
step against the full forward pass, masking of the source's padding, BLEU against the chapter's formula
and sacrebleu, training on a pairs file end to end through the CLI, and replies from `lmcore generate`."""
import collections
import json
import math
import random

import pytest
import torch

import lmcore
from lmcore.cli.main import main
from lmcore.models import ModelConfig, build_model
from lmcore.models.encdec import masked_softmax
from lmcore.training.bleu import bleu, corpus_bleu, exact, mean_bleu

VARIANTS = [(cell, att) for cell in ("gru", "lstm") for att in ("none", "additive", "dot")]


def tiny(cell="gru", attention="additive", vocab=23, **kw):
    torch.manual_seed(0)
    c = ModelConfig("seq2seq", vocab, cell=cell, attention=attention, num_layers=2, embed=8, hidden=16, **kw)
    return build_model(c.validate()).eval()


@pytest.mark.parametrize("cell,attention", VARIANTS)
def test_the_decoder_step_equals_the_forward_pass_token_by_token(cell, attention):
    m = tiny(cell, attention)
    src, src_len = torch.randint(0, 23, (3, 7)), torch.tensor([7, 2, 5])
    tgt = torch.randint(0, 23, (3, 6))
    full = m(src, src_len, tgt)
    state, steps = m.encode(src, src_len), []
    for t in range(tgt.shape[1]):
        logits, state = m.decode_step(tgt[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)
    # beams: the rows of a state picked or repeated decode as their sources do
    index = torch.tensor([2, 2, 0])
    picked, _ = m.decode_step(tgt[index, 0], m.select_state(m.encode(src, src_len), index))
    torch.testing.assert_close(picked, full[index, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cell,attention", VARIANTS)
def test_padding_of_the_source_changes_nothing(cell, attention):
    m = tiny(cell, attention)
    src, src_len, tgt = torch.randint(0, 23, (2, 9)), torch.tensor([4, 9]), torch.randint(0, 23, (2, 5))
    other = src.clone()
    other[0, 4:] = (other[0, 4:] + 7) % 23  # only the padding of the first source differs
    torch.testing.assert_close(m(src, src_len, tgt), m(other, src_len, tgt))


def test_masked_softmax_gives_padding_no_weight_and_rows_sum_to_one():
    scores = torch.randn(2, 3, 5)
    w = masked_softmax(scores, torch.tensor([2, 5]))
    assert (w[0, :, 2:] == 0).all() and (w[1] > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3))
    torch.testing.assert_close(w[0, :, :2], torch.softmax(scores[0, :, :2], -1))


@pytest.mark.parametrize("attention", ["additive", "dot"])
def test_the_alignment_has_a_row_per_target_token_over_the_valid_source(attention):
    m = tiny(attention=attention)
    src, src_len, tgt = torch.randint(0, 23, (1, 6)), torch.tensor([4]), torch.randint(0, 23, (1, 3))
    (a,) = m.alignment(src, src_len, tgt)
    assert a.shape == (1, 3, 6) and (a[..., 4:] == 0).all()
    torch.testing.assert_close(a.sum(-1), torch.ones(1, 3))
    with pytest.raises(lmcore.ConfigError, match="no attention"):
        tiny(attention="none").alignment(src, src_len, tgt)


def chapter_bleu(pred_seq, label_seq, k):
    """d2l.ai's bleu, as printed in "Sequence-to-Sequence Learning" (section 10.7.6)."""
    pred_tokens, label_tokens = pred_seq.split(' '), label_seq.split(' ')
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    score = math.exp(min(0, 1 - len_label / len_pred))
    for n in range(1, min(k, len_pred) + 1):
        num_matches, label_subs = 0, collections.defaultdict(int)
        for i in range(len_label - n + 1):
            label_subs[' '.join(label_tokens[i: i + n])] += 1
        for i in range(len_pred - n + 1):
            if label_subs[' '.join(pred_tokens[i: i + n])] > 0:
                num_matches += 1
                label_subs[' '.join(pred_tokens[i: i + n])] -= 1
        score *= math.pow(num_matches / (len_pred - n + 1), math.pow(0.5, n))
    return score


def test_bleu_is_the_chapters_formula():
    # the chapter's translations of its four English sentences (k=2)
    cases = [("go .", "va !"), ("i lost .", "j'ai perdu ."), ("he's calm .", "il est calme ."),
             ("i'm home .", "je suis chez moi ."), ("a b c d", "a b c d"), ("a b", "a b c d e"),
             ("x y z", "a b c"), ("the cat the cat", "the cat sat on the mat")]
    for pred, label in cases:
        for k in (1, 2, 3, 4):
            assert bleu(pred, label, k) == pytest.approx(chapter_bleu(pred, label, k))
    assert bleu("a b c d", "a b c d") == 1.0 and bleu("x y", "a b") == 0.0
    assert bleu("a b", "a b c d e", 2) == pytest.approx(math.exp(1 - 5 / 2))  # brevity penalty only
    assert mean_bleu(["a b", "x"], ["a b", "y"]) == pytest.approx(0.5)
    assert bleu("", "a") == 0.0  # an empty reply scores 0, never a division by zero


def test_corpus_bleu_is_sacrebleus_and_exact_match_counts_equal_replies():
    import sacrebleu

    rng = random.Random(0)
    words = "the cat sat on a mat dog ran far".split()
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 9))) for _ in range(30)]
    hyps = [" ".join(w if rng.random() < 0.7 else rng.choice(words) for w in r.split()) for r in refs]
    want = sacrebleu.corpus_bleu(hyps, [refs]).score / 100
    assert corpus_bleu(hyps, refs) == pytest.approx(want) and 0 < want < 1
    assert corpus_bleu(refs, refs) == pytest.approx(1.0)
    assert corpus_bleu(["x", "y"], ["x", "z"]) == pytest.approx(
        sacrebleu.metrics.BLEU(effective_order=True).corpus_score(["x", "y"], [["x", "z"]]).score / 100)
    assert corpus_bleu(["x", "y"], ["x", "y"]) == pytest.approx(1.0)  # one-word targets, all right
    assert exact(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == 0.5


@pytest.fixture
def pairs_file(tmp_path):
    """A tiny reversal task: 240 pairs of letters and their reverse, one line without a tab."""
    rng = random.Random(0)
    lines = []
    for _ in range(240):
        w = "".join(rng.choice("abcdef") for _ in range(rng.randint(2, 7)))
        lines.append(f"{w}\t{w[::-1]}")
    lines.insert(5, "a line without any tab")
    p = tmp_path / "rev.tsv"
    p.write_text("\n".join(lines) + "\n", "utf-8")
    return p


def _json(capsys, argv) -> list[dict]:
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    return [json.loads(line) for line in out.splitlines()]


def test_a_tiny_seq2seq_trains_on_pairs_via_the_cli_and_answers(pairs_file, capsys, home):
    events = _json(capsys, ["train", "s", "--arch", "seq2seq", "--preset", "tiny", "--corpus", str(pairs_file),
                            "--steps", "30", "--eval-every", "15", "--batch", "16", "--device", "cpu", "--json"])
    start = next(e for e in events if e["event"] == "start")
    assert "1 line without a tab" in start["auto"]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [15, 30]
    assert all(0 <= e[k] <= 1 for e in evals for k in ("bleu", "corpus_bleu", "exact"))
    summary = events[-1]
    assert summary["event"] == "summary" and summary["ok"]
    assert 0 <= summary["best_val_bleu"] <= 1 and 0 <= summary["best_val_exact"] <= 1
    ck = lmcore.Store(home).read("s")  # stored at every evaluation point, through the typed checkpoint
    assert [h.step for h in ck.history] == [15, 30] and all(h.bleu is not None for h in ck.history)
    assert ck.best_val_bleu == summary["best_val_bleu"] and ck.corpus.pairs_seed is not None

    assert main(["generate", "s", "--prompt", "abc"]) == 0
    reply = capsys.readouterr().out
    assert reply.endswith("\n") and "\t" not in reply and set(reply.strip()) <= set("abcdef")
    lines = _json(capsys, ["generate", "s", "--prompt", "abcz", "--json"])
    assert lines[0]["unknown"] == ["z"] and lines[-1]["event"] == "reply"
    assert "".join(e["text"] for e in lines if e["event"] == "token") == lines[-1]["text"]
    assert all(0 < e["prob"] <= 1 for e in lines if e["event"] == "token")
    more = _json(capsys, ["train", "s", "--resume", "--steps", "2", "--json"])  # the pairs path continues
    assert more[-1]["step"] == 32 and 0 <= more[-1]["best_val_bleu"] <= 1


def test_sources_over_the_limit_are_cut_in_training_and_refused_in_generation(pairs_file, capsys, home):
    events = _json(capsys, ["train", "c", "--arch", "seq2seq", "--preset", "tiny", "--max-len", "4",
                            "--corpus", str(pairs_file), "--steps", "2", "--batch", "16", "--json"])
    assert "longer than the model's limit of 4 tokens were cut" in events[0]["auto"]
    assert main(["generate", "c", "--prompt", "abcdef"]) == 1
    err = capsys.readouterr().err
    assert "over the model's limit of 4" in err and len(err.strip().splitlines()) == 1


def test_a_text_that_is_not_pairs_is_refused_with_one_line(prose, capsys, home):
    assert main(["train", "p", "--arch", "seq2seq", "--preset", "tiny", "--corpus", str(prose), "--steps", "2"]) == 1
    err = capsys.readouterr().err
    assert "has no pairs" in err and len(err.strip().splitlines()) == 1
    assert not lmcore.Store(home).exists("p")


@pytest.mark.parametrize("cell,attention", VARIANTS)
def test_the_family_knows_its_tensors_without_torch(cell, attention):
    c = ModelConfig("seq2seq", 11, cell=cell, attention=attention, num_layers=3, embed=5, hidden=7)
    with torch.device("meta"):
        built = {k: tuple(v.shape) for k, v in build_model(c).state_dict().items()}
    assert c.family.shapes(c) == built


def test_text_continuation_and_scoring_refuse_an_encoder_decoder_with_one_line(pairs_file, capsys, home):
    assert main(["train", "s", "--arch", "seq2seq", "--preset", "tiny", "--corpus", str(pairs_file), "--steps", "1",
                 "--batch", "16"]) == 0
    assert main(["train", "d", "--arch", "lstm", "--preset", "tiny", "--corpus", str(pairs_file), "--steps", "1"]) == 0
    capsys.readouterr()
    assert main(["compare", "s", "d", "--text", "abc\tcba"]) == 1
    err = capsys.readouterr().err
    assert "answers a source" in err and "Traceback" not in err


def test_preset_auto_gives_a_pairs_model_the_small_preset(pairs_file, capsys, home):
    events = _json(capsys, ["train", "a", "--arch", "seq2seq", "--preset", "auto", "--corpus", str(pairs_file),
                            "--minutes", "0.01", "--batch", "16", "--json"])
    assert "takes the small preset" in events[0]["auto"] and events[-1]["ok"]
    assert lmcore.Store(home).read("a").model.hidden == lmcore.preset_config("seq2seq", "small").hidden


@pytest.mark.parametrize("tokens", [["--tokens", "word"], ["--tokens", "bpe", "--vocab-size", "300"]])
def test_word_and_bpe_pairs_models_train_and_reply_in_pieces_that_join_to_the_text(tokens, tmp_path, capsys):
    rng = random.Random(1)
    words = "the cat dog sat ran on a mat far home".split()
    lines = []
    for _ in range(200):
        w = [rng.choice(words) for _ in range(rng.randint(2, 5))]
        lines.append(f"{' '.join(w)}\t{' '.join(w[::-1])}\n")
    p = tmp_path / "words.tsv"
    p.write_text("".join(lines), "utf-8")
    events = _json(capsys, ["train", "w", "--arch", "seq2seq", "--preset", "tiny", *tokens, "--corpus", str(p),
                            "--steps", "3", "--batch", "16", "--json"])
    assert 0 <= events[-1]["best_val_bleu"] <= 1
    lines = _json(capsys, ["generate", "w", "--prompt", "the cat sat on", "--json"])
    assert "".join(e["text"] for e in lines if e["event"] == "token") == lines[-1]["text"]


@pytest.mark.parametrize("value", [1.5, -0.1, "high"])
def test_a_damaged_bleu_in_the_history_lists_the_model_as_damaged(value, pairs_file, capsys, home):
    assert main(["train", "s", "--arch", "seq2seq", "--preset", "tiny", "--corpus", str(pairs_file), "--steps", "1",
                 "--batch", "16"]) == 0
    store = lmcore.Store(home)
    meta = store.root / "s" / "meta.json"
    d = json.loads(meta.read_text("utf-8"))
    d["history"][0]["bleu"] = value
    meta.write_text(json.dumps(d), "utf-8")
    check = store.check("s")
    assert not check.ok and "bleu" in check.reason


def test_the_python_api_trains_a_pairs_model_and_answers(pairs_file, home):
    done = lmcore.train("api", arch="seq2seq", preset="tiny", corpus=str(pairs_file), steps=2, batch_size=16, home=home)
    assert done.kind == "done" and 0 <= done.best_val_bleu <= 1 and 0 <= done.best_val_exact <= 1
    gen = lmcore.Generator.from_store(lmcore.Store(home), "api")
    r = lmcore.reply(gen.model, gen.vocab, gen.tokenizer, "abc")
    assert isinstance(r, lmcore.Reply) and "".join(r.tokens) == r.text and len(r.probs) == len(r.tokens)
    assert lmcore.bleu("a b", "a b") == 1.0


def test_pair_batches_are_bucketed_by_length_and_reproducible_from_any_step():
    from lmcore.data.pair_batches import IGNORE, PairStream, encode
    from lmcore.data.text import Tokenizer
    from lmcore.data.vocab import Vocab

    rng = random.Random(0)
    pairs = [("a" * rng.randint(1, 60), "b" * rng.randint(1, 9)) for _ in range(2000)]
    vocab = Vocab(list("ab\n"))
    data, cut = encode(pairs, Tokenizer(), vocab, 128)
    eos = vocab["\n"]
    stream = PairStream(data.ids, data.spans, 8, eos, eos, seed=3)
    it = stream.iterate(0)
    batches = [next(it) for _ in range(300)]  # more than one epoch (250 batches)
    spread = [int(src_len.max() - src_len.min()) for (src, src_len, tgt_in), y, _ in batches]
    assert cut == 0 and sum(spread) / len(spread) < 5  # random batches of 8 spread about 45
    (src, src_len, tgt_in), y, _ = batches[7]
    assert src.shape == (8, int(src_len.max())) and (tgt_in[:, 0] == eos).all()
    ends = (y == eos).sum(1)
    assert (ends == 1).all() and ((y == IGNORE) | (y == eos) | (y == vocab["b"])).all()
    torch.testing.assert_close(tgt_in[:, 1:][y[:, :-1] != IGNORE], y[:, :-1][y[:, :-1] != IGNORE])  # shifted
    for k in (0, 7, 251):
        (s2, l2, t2), y2, _ = next(stream.iterate(k))
        (s1, l1, t1), y1, _ = batches[k]
        assert torch.equal(s1, s2) and torch.equal(y1, y2) and torch.equal(t1, t2)


def test_the_leaderboard_ranks_a_pairs_corpus_by_bleu(pairs_file, capsys, home):
    for name, steps in (("short", "1"), ("longer", "40")):
        assert main(["train", name, "--arch", "seq2seq", "--preset", "tiny", "--corpus", str(pairs_file),
                     "--steps", steps, "--batch", "16", "--eval-every", "20"]) == 0
    assert main(["train", "lm", "--arch", "lstm", "--preset", "tiny", "--corpus", str(pairs_file), "--steps", "1"]) == 0
    store = lmcore.Store(home)
    rows = lmcore.leaderboard([store.check(n) for n in ("short", "longer", "lm")])
    scored = [r for r in rows if r.get("best_val_bleu") is not None]
    keys = [(r["best_val_bleu"], r["best_val_exact"]) for r in scored]
    assert keys == sorted(keys, reverse=True) and [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[: len(scored)] == scored  # the models scored by BLEU come first
