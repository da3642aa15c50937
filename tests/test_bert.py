"""The bert family: masked-language-model and next-sentence batches made as d2l's BERT chapter makes
them, a tiny BERT trained from the command line, its validation numbers, filling and attention."""
import json

import pytest
import torch

from lmcore import Store, load_model
from lmcore.cli.main import main
from lmcore.models import build_model, family, preset_config
from lmcore.models.bert.batch import IGNORE, Specials, make_batch, mask_tokens, sentence_ends, sentence_pairs

from . import factories

V = 40                      # 37 text tokens, then <cls> <sep> <mask>
SPECIALS = Specials.of(V)


def test_the_special_tokens_are_the_last_three_ids():
    assert (SPECIALS.cls, SPECIALS.sep, SPECIALS.mask, SPECIALS.text_tokens) == (37, 38, 39, 37)
    assert family("bert").special_tokens == ("<cls>", "<sep>", "<mask>")


def test_masking_chooses_15_percent_and_masks_80_randomises_10_keeps_10():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, SPECIALS.text_tokens, (400, 100), generator=g)
    tokens[:, 0], tokens[:, 50], tokens[:, -1] = SPECIALS.cls, SPECIALS.sep, SPECIALS.sep
    masked, targets = mask_tokens(tokens, SPECIALS, g)
    chosen = targets != IGNORE
    assert (chosen.sum(1) == 15).all()                     # round(97 * 0.15) text tokens per row
    assert not chosen[:, [0, 50, -1]].any()                 # never a special token
    assert torch.equal(targets[chosen], tokens[chosen])     # the targets are the original tokens
    assert torch.equal(masked[~chosen], tokens[~chosen])    # what is not chosen is left alone
    n = int(chosen.sum())
    as_mask = int((masked[chosen] == SPECIALS.mask).sum()) / n
    kept = int((masked[chosen] == tokens[chosen]).sum()) / n
    other = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - (0.1 + 0.1 / 37)) < 0.02 and abs(other - 0.1) < 0.02
    assert (masked[chosen & (masked != SPECIALS.mask)] < SPECIALS.text_tokens).all()  # random: a text token


def test_next_sentence_pairs_split_at_sentence_ends_and_swap_half():
    g = torch.Generator().manual_seed(1)
    ends = torch.zeros(V, dtype=torch.bool)
    ends[0] = True                                           # token 0 ends a sentence
    x = torch.randint(1, SPECIALS.text_tokens, (2000, 20), generator=g)
    x[:, 7] = 0                                              # each window: a sentence of 8, then the rest
    tokens, segments, is_next = sentence_pairs(x, SPECIALS, ends, g)
    assert tokens.shape == segments.shape == (2000, 23)      # the window + <cls>, <sep>, <sep>: no padding
    assert (tokens[:, 0] == SPECIALS.cls).all() and (tokens[:, 9] == SPECIALS.sep).all()
    assert (tokens[:, -1] == SPECIALS.sep).all()
    assert torch.equal(tokens[:, 1:9], x[:, :8])             # A: the first sentence
    assert (segments[:, :10] == 0).all() and (segments[:, 10:] == 1).all()
    follows = (tokens[:, 10:22] == x[:, 8:]).all(1)
    assert torch.equal(follows, is_next.bool())              # label 1 exactly when B is the text after A
    assert abs(float(is_next.float().mean()) - 0.5) < 0.04


def test_a_window_without_a_sentence_end_is_split_in_the_middle_and_a_batch_of_one_still_swaps():
    g = torch.Generator().manual_seed(2)
    x = torch.arange(1, 11)[None]
    labels = set()
    for _ in range(20):
        tokens, segments, is_next = sentence_pairs(x, SPECIALS, None, g)
        assert tokens[0, 6] == SPECIALS.sep and segments[0, 7:].eq(1).all() and segments[0, :7].eq(0).all()
        assert torch.equal(tokens[0, 7:12], x[0, 5:]) == bool(is_next[0])
        labels.add(int(is_next[0]))
        assert make_batch(x, SPECIALS, None, g).tokens.shape == (1, 13)
    assert labels == {0, 1}


def test_sentence_ends_are_read_from_the_tokens():
    assert sentence_ends(["<unk>", "a", ".", "end!", "\n", "Ġwhy?", "x"]) == [2, 3, 4, 5]


def test_shapes_from_the_config_are_the_built_models():
    config = preset_config("bert", "tiny", vocab_size=V, num_layers=3, context=17)
    with torch.device("meta"):
        built = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    assert family("bert").shapes(config) == built


def test_attention_has_no_mask_and_rows_sum_to_one():
    torch.manual_seed(0)
    model = build_model(preset_config("bert", "tiny", vocab_size=V)).eval()
    maps = model.attention_maps(torch.randint(0, SPECIALS.text_tokens, (12,)))
    assert len(maps) == 2
    for weights, values in maps:
        assert weights.shape == (2, 12, 12) and values.shape[:2] == (2, 12)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, 12))
        assert (weights.triu(1) > 0).any()                   # tokens attend to what comes after them


def test_a_blank_is_read_as_mask_and_only_text_tokens_are_candidates():
    torch.manual_seed(0)
    model = build_model(preset_config("bert", "tiny", vocab_size=V)).eval()
    ids = torch.randint(0, SPECIALS.text_tokens, (1, 9))
    blanks = torch.zeros_like(ids, dtype=torch.bool)
    blanks[0, 4] = True
    other = ids.clone()
    other[0, 4] = (other[0, 4] + 1) % SPECIALS.text_tokens
    with torch.no_grad():
        a, b = model.blank_logits(ids, blanks), model.blank_logits(other, blanks)
    torch.testing.assert_close(a, b)                         # the blank's own token is never read
    assert torch.isinf(a[..., SPECIALS.text_tokens:]).all()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from lmcore.data import corpus

    folder = tmp_path_factory.mktemp("bert")
    text = folder / "prose.txt"
    text.write_text(corpus.load("pythondocs").text[:30_000], "utf-8")
    home = folder / "home"
    return home, ["--home", str(home), "train", "tb", "--arch", "bert", "--preset", "tiny", "--steps", "30",
                  "--eval-every", "15", "--corpus", str(text), "--tokens", "word", "--json"]


def test_a_tiny_bert_trains_from_the_command_line_and_reports_its_numbers(trained, capsys, monkeypatch):
    home, argv = trained
    assert main(argv) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["ok"] and summary["steps_trained"] == 30
    assert summary["mlm_loss"] == pytest.approx(summary["best_val_loss"], rel=1e-4) or \
        summary["mlm_loss"] >= summary["best_val_loss"]
    assert summary["pseudo_ppl"] > 1 and 0 <= summary["nsp_accuracy"] <= 1
    evals = [e for e in lines if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [15, 30] and all("nsp_accuracy" in e["metrics"] for e in evals)
    meta = json.loads((home / "models" / "tb" / "meta.json").read_text("utf-8"))
    assert all(set(h) >= {"mlm_loss", "pseudo_ppl", "nsp_accuracy"} for h in meta["history"])
    assert meta["vocab"]["idx_to_token"][-3:] == ["<cls>", "<sep>", "<mask>"]

    ck = Store(home).read("tb")
    assert ck.history[-1].nsp_accuracy == pytest.approx(summary["nsp_accuracy"], abs=1e-6)
    assert ck.best_val_bpc is None     # a masked-token loss is not ranked among next-token losses
    model, vocab, _ = load_model(Store(home), "tb")
    assert model.config.arch == "bert" and model.config.vocab_size == len(vocab)

    assert main(["--home", str(home), "fill", "tb", "--text", "the time _ was", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "mask-predict" in out and out.count("%") == 3
    assert main(["--home", str(home), "fill", "tb", "--text", "the _ of the _ is", "--json"]) == 0
    filled = json.loads(capsys.readouterr().out)
    assert sorted(b["order"] for b in filled["blanks"]) == [1, 2]
    assert all(not c["text"].startswith("<") for b in filled["blanks"] for c in b["candidates"])

    assert main(["--home", str(home), "generate", "tb", "--prompt", "the"]) == 1
    assert "does not generate" in capsys.readouterr().err

    assert main(["--home", str(home), "inspect", "attention", "tb", "--text", "the time machine", "--json"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("COLUMNS", "160")  # wide enough for the ranking on one line a row
    ppl = f"{ck.best_val_ppl:.3f} mask"  # the tables say its perplexity is of masked tokens
    assert main(["--home", str(home), "models"]) == 0 and ppl in capsys.readouterr().out
    assert main(["--home", str(home), "models", "--corpus", ck.corpus.name]) == 0 and ppl in capsys.readouterr().out


def test_a_bert_whose_vocabulary_lost_its_special_tokens_is_listed_as_damaged(tmp_path):
    from lmcore.data.vocab import Vocab

    store = Store(tmp_path)
    factories.save(store, "whole", "bert")
    factories.save(store, "no-specials", "bert", vocab=Vocab(list("abcdefgh \nxyz")))  # as many tokens, no specials
    entries = {e.name: e for e in store.list()}
    assert entries["whole"].ok
    assert not entries["no-specials"].ok and "damaged" in entries["no-specials"].reason
    assert "must end with <cls> <sep> <mask>" in entries["no-specials"].reason
    assert main(["--home", str(tmp_path), "fill", "no-specials", "--text", "a _ c"]) != 0


def test_the_special_tokens_go_after_the_texts_and_only_once():
    from lmcore.data.vocab import Vocab

    text = Vocab(list("abcab"))
    bert = text.with_tokens(("<cls>", "<sep>", "<mask>"))
    assert bert.idx_to_token == text.idx_to_token + ["<cls>", "<sep>", "<mask>"]
    assert bert.encode(list("cab")) == text.encode(list("cab"))    # the text's ids do not change
    assert bert.with_tokens(("<cls>", "<sep>", "<mask>")) is bert
    with pytest.raises(ValueError, match="<sep>"):
        Vocab(["a", "<sep>"]).with_tokens(("<cls>", "<sep>", "<mask>"))


def test_other_models_evaluation_points_keep_their_fields():
    from lmcore.store.checkpoint import EvalPoint

    assert "nsp_accuracy" not in EvalPoint(step=1, val_loss=2.0).to_dict()
    assert EvalPoint(step=1, val_loss=2.0, nsp_accuracy=0.5).to_dict()["nsp_accuracy"] == 0.5


async def test_the_apps_attention_view_shows_berts_heads(home):
    from tui.app import create_app

    from .tui_helpers import fixed_entry, open_inspect, wait_for

    fixed_entry(Store(home), "bb", arch="bert")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        pane = await open_inspect(pilot, app, "attention", "a bad cafe\nhead ache")
        await wait_for(pilot, lambda: "layer 0 head 0 mostly looks at" in str(pane.view.query_one(".view-summary").render()))
