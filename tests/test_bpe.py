"""Byte-level BPE tokens (``--tokens bpe``): trained on the training split, exact round trips, streamed
whole characters, saved as JSON in the checkpoint, a damaged one listed as damaged."""
from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import lmcore
from lmcore import SamplingSettings, Store, Tokenizer
from lmcore.data import bpe
from lmcore.cli.main import main
from lmcore.errors import ConfigError
from lmcore.generation.scoring import score_text
from lmcore.store.typed import from_mapping

ROOT = Path(__file__).resolve().parents[1]
ODD = "Café naïve façade — “quotes” ½ 😀🎉 👩‍👩‍👧 日本語 עברית\tTab\x00nul\x07bell\x1b[0m\u2028sep\ufeff\n"
HARD = ["plain ASCII, with punctuation!?", "accents: déjà vu, Ærøskøbing, Zürich", "emoji 😀🎉 and 👩‍👩‍👧",
        "line\nbreaks\n\n\nand  runs   of spaces \n \n", " leading and trailing ", "\x00\x01\x07\x1b\x7f\x85\u2028",
        "\t\ttabs\r\n", "", " ", "\n", "😀", ODD]


@pytest.fixture(scope="module")
def small_bpe(prose_text) -> Tokenizer:
    return Tokenizer("bpe", vocab_size=300).fitted([prose_text[:20_000]])


# ---------------------------------------------------------------------------- the tokenizer
def test_training_is_deterministic_and_canonical_json(prose_text):
    text = prose_text[:20_000] + ODD
    a = Tokenizer("bpe", vocab_size=320).fitted([text])
    b = Tokenizer("bpe", vocab_size=320).fitted([text[:7_000], text[7_000:]])  # pieces cut at no word: same
    c = Tokenizer("bpe", vocab_size=320).fitted([text])
    assert a.bpe == c.bpe and a == c and hash(a) == hash(c)
    d = json.loads(a.bpe)
    assert d["model"]["type"] == "BPE" and d["pre_tokenizer"]["type"] == "ByteLevel"
    assert len(d["model"]["vocab"]) <= 320 and bpe.canonical(d) == a.bpe
    assert len(b.split(text)) > 0  # another cut of the same text trains a usable tokenizer too
    assert Tokenizer("bpe", vocab_size=320).fitted([text[:5_000]]).bpe != a.bpe  # it learns from the text


def test_only_an_untrained_bpe_needs_fitting(small_bpe):
    for tok in (Tokenizer("char"), Tokenizer("word", "d2l"), small_bpe):
        assert not tok.needs_fitting and tok.fitted(["anything"]) is tok
    raw = Tokenizer("bpe")
    assert raw.needs_fitting and raw.vocab_size == bpe.DEFAULT_VOCAB_SIZE
    with pytest.raises(ConfigError, match="not trained"):
        raw.split("text")
    for bad in (0, 255, bpe.MAX_VOCAB_SIZE + 1, 10 ** 12, True, "300"):
        with pytest.raises(ConfigError, match="vocabulary size"):
            Tokenizer("bpe", vocab_size=bad)
    with pytest.raises(ConfigError, match="for bpe tokens"):
        Tokenizer("char", vocab_size=300)


@pytest.mark.parametrize("text", HARD)
def test_split_and_join_round_trip_exactly(small_bpe, text):
    tokens = small_bpe.split(text)
    assert small_bpe.join(tokens) == text
    assert "".join(small_bpe.pieces(tokens)) == text
    symbols = set(bpe.BYTE_SYMBOLS.values())
    assert all(t in symbols for tok in tokens for t in tok)  # byte-level symbols only


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \n\t.,'éß€😀\x00\x1b日👩\u200d"), max_size=60))
def test_any_text_round_trips_and_streams_whole_characters(small_bpe, text):
    tokens = small_bpe.split(text)
    pieces = small_bpe.pieces(tokens)
    assert small_bpe.join(tokens) == text == "".join(pieces)
    for piece in pieces:  # no piece ever holds half a character
        assert "\ufffd" not in piece


def test_a_long_text_is_split_in_blocks_as_in_one_piece(small_bpe, monkeypatch):
    text = ("The first line.\nthe  second\n\n  third \nFourth 😀 line\n" * 40) + ODD
    whole = bpe.load(small_bpe.bpe).encode(text, add_special_tokens=False).tokens
    monkeypatch.setattr(bpe, "BLOCK", 50)
    assert len(text) > 10 * bpe.BLOCK  # encoded in many blocks, cut at line breaks
    assert small_bpe.split(text) == whole


def test_streamed_bytes_in_any_order_concatenate_to_join():
    """A model may emit bytes that are no UTF-8 at all: the pieces still add up to join()."""
    rng = random.Random(0)
    symbols = list(bpe.BYTE_SYMBOLS.values())
    tok = Tokenizer("bpe", vocab_size=256).fitted(["x"])
    for _ in range(200):
        tokens = ["".join(rng.choice(symbols) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 12))]
        dec = tok.piece_decoder("prev")
        pieces = [dec(t) for t in tokens[:len(tokens) // 2]]
        fork = dec.copy()  # a beam branching: the copy continues from the same pending bytes
        rest = [dec(t) for t in tokens[len(tokens) // 2:]]
        assert "".join(pieces + rest) + dec.flush() == tok.join(tokens)
        assert "".join(pieces + [fork(t) for t in tokens[len(tokens) // 2:]]) + fork.flush() == tok.join(tokens)


def test_word_pieces_are_unchanged():
    tok = Tokenizer("word")
    tokens = tok.tokenize("Hello, world (again). Yes!\nNext")
    assert "".join(tok.pieces(tokens)) == tok.join(tokens)
    assert tok.pieces(["b"], prev="a") == [tok.separator("a", "b") + "b"] == [" b"]
    assert tok.display("b") == "b" and Tokenizer("bpe").display("Ġthe") == " the"
    assert Tokenizer("bpe").display("ð") == "\\xf0"  # a lone byte of a character


def test_d2l_bpe_keeps_lines_apart():
    tok = Tokenizer("bpe", "d2l", vocab_size=256).fitted(["x"])
    text = tok.preprocess("Hello, World!\r\nSecond LINE 2")
    assert text == "hello world\nsecond line" and tok.join(tok.split(text)) == text


def test_checkpoint_dict_holds_json_and_old_dicts_still_read(small_bpe):
    d = small_bpe.to_dict()
    assert d["level"] == "bpe" and d["vocab_size"] == 300 and d["bpe"]["model"]["type"] == "BPE"
    assert from_mapping(Tokenizer, json.loads(json.dumps(d)), "tokenizer") == small_bpe
    assert Tokenizer("char").to_dict() == {"level": "char", "prep": "raw"}  # char/word as before
    assert from_mapping(Tokenizer, {"level": "word", "prep": "d2l"}, "tokenizer") == Tokenizer("word", "d2l")


@pytest.mark.parametrize("change, match", [
    ({"bpe": {"model": 5}}, "no BPE model"),
    ({"bpe": "{not json"}, "not valid JSON"),
    ({"bpe": 7}, "tokenizer.bpe must be"),
    ({"vocab_size": 10 ** 12}, "vocabulary size"),
    ({"vocab_size": "big"}, "tokenizer.vocab_size must be"),
    ({"level": "bpe?"}, "unknown tokenization"),
])
def test_a_damaged_tokenizer_dict_is_one_clear_error(small_bpe, change, match):
    d = {**small_bpe.to_dict(), **change}
    with pytest.raises((ValueError, ConfigError), match=match):
        from_mapping(Tokenizer, d, "tokenizer")


def test_the_bpe_json_is_checked_before_use(small_bpe):
    good = json.loads(small_bpe.bpe)
    for damage, match in [
        (lambda d: d.update(normalizer={"type": "Lowercase"}), "changes the text"),
        (lambda d: d["pre_tokenizer"].update(add_prefix_space=True), "not byte-level"),
        (lambda d: d["model"].update(vocab={}), "must hold 256"),
        (lambda d: d["model"].update(merges=[["no such", "token"]]), "tokenizers library cannot read"),
    ]:
        d = json.loads(json.dumps(good))
        damage(d)
        with pytest.raises(ConfigError, match=match):
            Tokenizer("bpe", vocab_size=300, bpe=d)


def test_zipf_of_bpe_tokens(prose_text):
    from lmcore.inspect import zipf_stats

    z = zipf_stats(prose_text[:20_000], "bpe", "raw")
    assert z.tokens > 0 and z.ngrams[0].top and all("Ġ" not in t for t, _ in z.ngrams[0].top)


# ---------------------------------------------------------------------------- a trained model
TRAIN_TEXT_EXTRA = "\n".join(["Un café à Zürich — déjà vu. 😀 Ça va? ½ naïve."] * 40) + "\n"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, prose_text) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("bpe")
    corpus = d / "subwords.txt"
    corpus.write_text(prose_text[:30_000] + "\n" + TRAIN_TEXT_EXTRA + prose_text[30_000:36_000], "utf-8")
    home = d / "home"
    done = lmcore.train("sub", arch="lstm", preset="tiny", corpus=str(corpus), tokens="bpe", vocab_size=300,
                        steps=30, home=home)
    assert isinstance(done, lmcore.DoneEvent) and done.saved, done
    return home, corpus


def test_a_bpe_model_trains_and_generates(trained):
    home, _ = trained
    store = Store(home)
    ck = store.read("sub")
    tok = ck.tokenizer
    assert tok.level == "bpe" and tok.vocab_size == 300 and not tok.needs_fitting
    assert len(ck.vocab) <= 301  # the training split's tokens and <unk>
    gen = lmcore.Generator.from_store(store, "sub")
    stream = gen.stream("Un café à Zürich 😀", SamplingSettings(max_tokens=40, seed=1))
    outs = list(stream)
    assert len(outs) == 40 and stream.info.tokens > 0 and not stream.info.unknown
    joined = tok.join([gen.vocab.idx_to_token[t.token_id] for t in outs])
    # the streamed text is join() of the tokens, but for a character the last tokens left unfinished
    assert joined.startswith(stream.text) and len(joined) - len(stream.text) <= 1 and stream.text.strip()
    beam = gen.stream("the ", SamplingSettings(beam=3, max_tokens=12))
    beam_outs = list(beam)
    assert beam_outs and tok.join([gen.vocab.idx_to_token[t.token_id] for t in beam_outs]).startswith(beam.text)


def test_unknown_prompt_bytes_are_reported_readably(trained):
    home, _ = trained
    gen = lmcore.Generator.from_store(Store(home), "sub")
    # a character with a byte never seen in the training split (every byte still encodes: no error)
    odd = next(c for c in "🦜ꙮ\x7f\x01\x02" if any(t not in gen.vocab for t in gen.tokenizer.split(c)))
    ids, info = gen.encode_prompt("the " + odd)
    assert info.unknown and 0 in ids and all(u not in gen.vocab.idx_to_token for u in info.unknown)
    assert all(u.startswith("\\x") or u.isprintable() or len(u) == 1 for u in info.unknown)
    assert "not in the model's vocabulary" in info.message()
    empty, info = gen.encode_prompt("")
    assert info.tokens == 0 and gen.vocab.idx_to_token[empty[0]] == "Ċ"  # starts after a line break


def test_the_checkpoint_holds_the_bpe_as_json_and_reloads_in_a_fresh_process(trained):
    home, _ = trained
    store = Store(home)
    meta = json.loads((store.path("sub") / "meta.json").read_text("utf-8"))
    assert meta["tokenizer"]["level"] == "bpe" and meta["tokenizer"]["vocab_size"] == 300
    assert meta["tokenizer"]["bpe"]["model"]["type"] == "BPE"  # the library's JSON, an object in meta.json
    assert not any(p.suffix in (".pkl", ".pickle") for p in store.path("sub").iterdir())
    settings_ = SamplingSettings(max_tokens=25, seed=3)
    here = lmcore.Generator.from_store(store, "sub").complete("déjà vu ", settings_)
    code = ("import json, lmcore\n"
            "g = lmcore.Generator.from_store(lmcore.Store(), 'sub')\n"
            "print(json.dumps(g.complete('déjà vu ', lmcore.SamplingSettings(max_tokens=25, seed=3))))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, "LMPLAY_HOME": str(home), "PYTHONHASHSEED": "123"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == here


def test_bits_per_character_of_a_bpe_model(trained):
    home, corpus = trained
    store = Store(home)
    ck = store.read("sub")
    bpc = ck.best_val_bpc
    assert bpc is not None and math.isfinite(bpc) and bpc > 0
    assert bpc == pytest.approx(ck.best_val_loss / math.log(2) * ck.corpus.val_tokens / ck.corpus.val_chars)
    tok = ck.tokenizer
    tokens = tok.tokenize(corpus.read_text("utf-8"))
    assert ck.corpus.val_tokens + ck.corpus.train_tokens == len(tokens)
    assert ck.corpus.val_chars == len(tok.join(tokens[-ck.corpus.val_tokens:]))  # exact
    gen = lmcore.Generator.from_store(store, "sub")
    text = "Un café à Zürich — déjà vu. 😀 Ça va?"
    sc = score_text(gen, text)
    first = tok.join(tok.tokenize(text)[:1])
    assert first + "".join(t.text for t in sc.tokens) == text  # each character counted once
    assert math.isfinite(sc.bits_per_char) and sc.bits_per_char > 0


def test_a_damaged_bpe_in_meta_json_lists_the_model_as_damaged(trained, tmp_path, capsys, monkeypatch):
    home = tmp_path / "home"
    shutil.copytree(trained[0], home)
    monkeypatch.setenv("LMPLAY_HOME", str(home))
    store = Store(home)
    p = store.path("sub") / "meta.json"
    good = json.loads(p.read_text("utf-8"))
    for damage, reason in [
        (lambda t: t.update(bpe={"model": {"type": "BPE", "vocab": "x"}}), "BPE"),
        (lambda t: t["bpe"]["model"].update(merges=[["nosuch", "pair"]]), "cannot read"),
        (lambda t: t.update(bpe=None), "bpe is missing"),
        (lambda t: t.update(vocab_size=-1), "vocabulary size"),
    ]:
        meta = json.loads(json.dumps(good))
        damage(meta["tokenizer"])
        p.write_text(json.dumps(meta), "utf-8")
        entry = Store(home).check("sub")
        assert not entry.ok and reason in entry.reason, entry.reason
        assert "\n" not in entry.reason
    rc = main(["generate", "sub", "--prompt", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "damaged" in err[0], err
    p.write_text(json.dumps(good), "utf-8")
    assert Store(home).check("sub").ok


def test_the_cli_takes_vocab_size_for_bpe_only(prose, capsys):
    rc = main(["train", "w", "--tokens", "word", "--vocab-size", "500", "--corpus", str(prose), "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "for bpe tokens" in err[0], err
    rc = main(["train", "w", "--tokens", "bpe", "--vocab-size", "100", "--corpus", str(prose), "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "from 256" in err[0], err


async def test_the_new_model_dialog_offers_bpe_with_a_vocabulary_size(home, prose):
    from textual.widgets import Input, Select

    from tui.app import create_app
    from tui.screens.model import ModelScreen

    from .tui_helpers import new_model_dialog_on_path, wait_for

    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await new_model_dialog_on_path(pilot, app, prose)
        scr = app.screen
        assert not scr.query_one("#vocab-row").display  # characters: no vocabulary size to choose
        scr.query_one("#tokens", Select).value = "bpe"
        await pilot.pause()
        assert scr.query_one("#vocab-row").display
        scr.query_one("#name", Input).value = "sub"
        scr.query_one("#preset", Select).value = "tiny"
        scr.query_one("#new-steps", Input).value = "3"
        scr.query_one("#vocab-size", Input).value = "100"
        await pilot.press("ctrl+s")  # creates from any field
        await pilot.pause()
        assert app.screen is scr and "from 256" in str(scr.query_one("#new-hint").render())
        scr.query_one("#vocab-size", Input).value = "300"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await wait_for(pilot, lambda: Store(home).exists("sub") and not app.runs.is_running("sub"))
        tok = Store(home).read("sub").tokenizer
        assert tok.level == "bpe" and tok.vocab_size == 300 and tok.bpe


def test_a_saved_transcript_keeps_tokens_that_add_no_text():
    from tui.widgets.generation.transcript import SavedToken, pack_tokens, unpack_tokens

    tokens = [SavedToken("a", 0.5), SavedToken("", 0.2), SavedToken("😀", 0.9)]  # "" : a byte of the emoji
    back = unpack_tokens("a😀", pack_tokens(tokens))
    assert back is not None and [t.text for t in back] == ["a", "", "😀"]
