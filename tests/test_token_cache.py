"""The token cache: a corpus tokenized once, streamed in pieces, kept as a memory-mapped id file."""
from __future__ import annotations

import json
import threading

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lmcore
from lmcore.data import corpus as corpora
from lmcore.data import batching as data
from lmcore.data import token_cache
from lmcore.errors import Cancelled, CorpusError
from lmcore.data.text import Tokenizer
from lmcore.data.vocab import Vocab


def _tokens(home, path, tok=Tokenizer(), vocab=None, val_fraction=0.1, **kw):
    src = corpora.open_source(str(path), home)
    return token_cache.tokens_for(home, src, src.sha1(), tok, vocab, val_fraction, **kw)


def _text_of(d: token_cache.TokenData) -> list[str]:
    return d.vocab.decode(torch.cat([d.train_ids, d.val_ids]).tolist())


@pytest.mark.parametrize("level,prep", [("char", "raw"), ("char", "d2l"), ("word", "raw"), ("word", "d2l")])
def test_streamed_pieces_give_the_ids_of_the_whole_text(tmp_path, home, monkeypatch, prose_text, level, prep):
    """Cut into pieces of 500 characters (line ends, CRLF, a BOM), the text tokenizes exactly as whole."""
    monkeypatch.setattr(corpora, "PIECE_CHARS", 500)
    text = prose_text[:20_000].replace("\n", "\r\n")
    p = tmp_path / "t.txt"
    p.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    tok = Tokenizer(level, prep)
    d = _tokens(home, p, tok)
    assert _text_of(d) == [t if t in d.vocab else "<unk>" for t in tok.tokenize(text)]
    if level == "char":  # every character of the text is in the vocabulary, most frequent first
        assert d.vocab.idx_to_token[1] == max(set(tok.tokenize(text)), key=tok.tokenize(text).count)
    n_val = int(len(tok.tokenize(text)) * 0.1)
    assert len(d.val_ids) == n_val and len(d.train_ids) + n_val == len(tok.tokenize(text))
    assert d.val_chars == len(tok.join(tok.tokenize(text)[-n_val:]))
    assert d.built and d.file.dtype == "uint8" or level == "word"


def test_a_second_run_reads_the_cache_and_a_damaged_entry_is_built_again(tmp_path, home, prose_text):
    p = tmp_path / "t.txt"
    p.write_text(prose_text[:5000], "utf-8")
    first = _tokens(home, p)
    again = _tokens(home, p)
    assert first.built and not again.built and torch.equal(first.train_ids, again.train_ids)
    assert again.unigram == first.unigram and again.val_chars == first.val_chars
    other = _tokens(home, p, val_fraction=0.2)  # another split is another entry
    assert other.built and len(other.val_ids) == int(len(prose_text[:5000]) * 0.2)
    expected = first.train_ids.clone()  # damaging a mapped file in place would fault on reading it
    del first, again
    (entry,) = [f for f in token_cache.cache_dir(home).iterdir() if (f / "meta.json").is_file()
                and json.loads((f / "meta.json").read_text())["val_tokens"] == int(5000 * 0.1)]
    for damage in (lambda: (entry / "tokens.bin").write_bytes(b"\x01\x02"),
                   lambda: (entry / "meta.json").write_text("{not json"),
                   lambda: (entry / "meta.json").write_text(json.dumps({"version": 1, "dtype": "float64"}))):
        damage()
        rebuilt = _tokens(home, p)
        assert rebuilt.built and torch.equal(rebuilt.train_ids, expected)
        del rebuilt


def test_a_saved_vocabulary_maps_new_tokens_to_unk(tmp_path, home):
    p = tmp_path / "t.txt"
    p.write_text("abcabcabc xyz " * 50, "utf-8")
    saved = Vocab("abc ")
    d = _tokens(home, p, vocab=saved)
    assert d.vocab is not None and d.vocab.idx_to_token == saved.idx_to_token
    ids = torch.cat([d.train_ids, d.val_ids])
    assert int((ids == 0).sum()) == 3 * 50  # x, y, z
    derived = _tokens(home, p)
    assert "x" in derived.vocab and derived.built


def test_the_unigram_floor_matches_counting_in_memory(tmp_path, home, prose_text):
    from lmcore.training.evaluation import unigram_loss

    p = tmp_path / "t.txt"
    p.write_text(prose_text[:8000], "utf-8")
    d = _tokens(home, p)
    assert d.unigram == pytest.approx(unigram_loss(d.train_ids, d.val_ids, len(d.vocab)), rel=1e-9)


def test_a_folder_of_text_files_is_streamed_as_one_text(tmp_path, home, monkeypatch):
    monkeypatch.setattr(corpora, "PIECE_CHARS", 64)
    folder = tmp_path / "books"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first book\n" * 30, "utf-8")
    (folder / "sub" / "b.txt").write_text("second book" * 30, "utf-8")
    d = _tokens(home, folder)
    assert "".join(_text_of(d)) == "first book\n" * 30 + "\n" + "second book" * 30
    assert corpora.load(str(folder)).sha1 == corpora.sha1_of_text("first book\n" * 30 + "\n" + "second book" * 30)


def test_stopping_while_tokenizing_leaves_no_entry(tmp_path, home, prose_text):
    p = tmp_path / "t.txt"
    p.write_text(prose_text[:5000], "utf-8")
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled, match="nothing was saved"):
        _tokens(home, p, stop=stop)
    assert not any(token_cache.cache_dir(home).iterdir())


def test_an_unwritable_cache_is_one_clear_line(tmp_path, home, prose_text):
    p = tmp_path / "t.txt"
    p.write_text(prose_text[:5000], "utf-8")
    home.mkdir(parents=True)
    (home / "cache").write_text("a file where the cache folder goes")
    with pytest.raises(CorpusError, match="could not create the token cache"):
        _tokens(home, p)


@pytest.mark.parametrize("data_bytes,message", [
    (b"", "is empty"), (b"ab\x00cd", "binary"), (b"ok\n\xff\xfe text", "not UTF-8 text .byte 0xff at offset 3"),
    (b" \n\t\n" * 10, "only whitespace"),
])
def test_bad_files_are_refused_while_streaming(tmp_path, home, data_bytes, message):
    p = tmp_path / "bad.txt"
    p.write_bytes(data_bytes)
    with pytest.raises(CorpusError, match=message):
        _tokens(home, p)


def test_the_sha1_memo_is_used_until_the_file_changes(tmp_path, home, monkeypatch):
    monkeypatch.setattr(corpora, "MEMO_SETTLE_NS", 0)  # a file written just now is remembered too
    p = tmp_path / "t.txt"
    p.write_text("hello world\n" * 100, "utf-8")
    memo = tmp_path / "memo"
    digest = corpora.open_source(str(p)).sha1(memo)
    assert digest == corpora.sha1_of_file(p)
    monkeypatch.setattr(corpora, "sha1_of_file", lambda path: pytest.fail("hashed again"))
    assert corpora.open_source(str(p)).sha1(memo) == digest
    monkeypatch.undo()
    p.write_text("hello WORLD\n" * 100, "utf-8")  # same size, new content and time
    assert corpora.open_source(str(p)).sha1(memo) == corpora.sha1_of_file(p) != digest
    for f in memo.iterdir():
        f.write_text('{"stamp": 3, "sha1": "xyz"}')  # a damaged memo: hashed again
    assert corpora.open_source(str(p)).sha1(memo) == corpora.sha1_of_file(p)


@settings(max_examples=50)
@given(st.integers((PERM := 50) + 1, 600), st.integers(0, 2 ** 31))
def test_a_large_random_epoch_visits_every_window_once(n, seed):
    """Past PERM_LIMIT windows an epoch's order is a keyed permutation computed a batch at a time (a huge
    text's order is never held whole): one epoch still visits every window of the text exactly once."""
    steps = 3
    ids = torch.arange(n * steps + steps + 1)  # every token is its position: a row says where it starts
    old = data.PERM_LIMIT
    data.PERM_LIMIT = PERM
    try:
        stream = data.BatchStream(ids, 1, steps, "random", seed)
        count = stream.batches_in_epoch(0)
        it = stream.iterate(0)
        starts = torch.cat([next(it)[0][:, 0] for _ in range(count)])
    finally:
        data.PERM_LIMIT = old
    offset = int(starts[0]) % steps
    assert count > PERM and bool((starts % steps == offset).all())  # whole windows, on one grid
    assert torch.equal(((starts - offset) // steps).sort().values, torch.arange(count))  # each window once


def test_a_large_epoch_resumes_mid_way_with_the_same_batches(monkeypatch):
    monkeypatch.setattr(data, "PERM_LIMIT", 10)
    ids = torch.randint(0, 50, (20_000,), generator=torch.Generator().manual_seed(1))
    s = data.BatchStream(ids, 4, 8, "random", 3)
    it = s.iterate(0)
    first = [next(it)[0] for _ in range(700)]  # crosses an epoch (624 batches)
    again = s.iterate(650)
    assert all(torch.equal(next(again)[0], first[k]) for k in range(650, 700))
    starts = torch.stack([b[:, 0] for b in first[:600]])
    assert len(set(map(tuple, starts.tolist()))) == 600  # different windows, not one repeated


def test_training_reads_the_cache_and_continues_on_the_same_ids(tmp_path, home, prose_text):
    p = tmp_path / "t.txt"
    p.write_text(prose_text[:20_000], "utf-8")
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(p), steps=3, home=home)
    entries = list(token_cache.cache_dir(home).iterdir())
    assert len(entries) == 1
    r = lmcore.train("m", resume=True, steps=2, home=home)
    assert r.kind == "done" and r.step == 5 and list(token_cache.cache_dir(home).iterdir()) == entries
    p.write_text(prose_text[:20_000].upper(), "utf-8")
    with pytest.raises(lmcore.LmError, match="sha1 differs"):
        lmcore.train("m", resume=True, steps=2, home=home)
