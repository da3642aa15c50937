import json

import torch

import lmcore
from lmcore.data.text import Tokenizer, build_vocab, encode, id_dtype
from lmcore.data.vocab import Vocab


def _d2l(text, level):
    tok = Tokenizer(level, "d2l")
    pre = tok.preprocess(text)
    vocab = build_vocab(pre, tok)
    return encode(pre, tok, vocab), vocab


def test_d2l_figures_char(tm_text):
    ids, vocab = _d2l(tm_text, "char")
    assert len(ids) == 170_580
    assert len(vocab) == 28
    assert vocab.idx_to_token[:4] == ["<unk>", " ", "e", "t"]
    assert ids.dtype == torch.uint8


def test_d2l_figures_word(tm_text):
    ids, vocab = _d2l(tm_text, "word")
    assert len(ids) == 32_775
    assert len(vocab) == 4_580
    assert vocab.idx_to_token[1:4] == ["the", "i", "and"]
    assert ids.dtype == torch.int16
    assert vocab.decode(ids[:4].tolist()) == ["the", "time", "machine", "by"]


def test_corpus_by_name_matches_file(tm_text):
    c = lmcore.load_corpus("timemachine")
    assert c.text == tm_text and c.sha1 == "090b5e7e70c295757f55df93cb0a180b9691891a"


def test_vocab_order_min_freq_reserved_and_json():
    v = Vocab(list("aabbbcd"), min_freq=2, reserved_tokens=["<bos>"])
    assert v.idx_to_token == ["<unk>", "<bos>", "b", "a"]
    assert v.token_freqs[:2] == [("b", 3), ("a", 2)]
    assert v["c"] == 0 and v[["a", "b", "zz"]] == [3, 2, 0]
    assert v.decode(v.encode("ab")) == ["a", "b"]
    w = Vocab.from_dict(json.loads(json.dumps(v.to_dict())))
    assert w.idx_to_token == v.idx_to_token and w.token_freqs == v.token_freqs


def test_raw_keeps_case_and_punctuation():
    tok = Tokenizer("char", "raw")
    assert tok.tokenize("Hi, there!\r\n") == list("Hi, there!\n")
    words = Tokenizer("word", "raw")
    toks = words.tokenize("The Time Traveller (for so it will be) said: don't.\n")
    assert toks == ["The", "Time", "Traveller", "(", "for", "so", "it", "will", "be", ")", "said", ":", "don't", ".", "\n"]
    assert words.join(toks) == "The Time Traveller (for so it will be) said: don't.\n"


def test_d2l_prep_matches_chapter_regex():
    tok = Tokenizer("word", "d2l")
    assert tok.preprocess("The Time-Machine, 1898!\nI") == "the time machine\ni"
    assert Tokenizer("char", "d2l").preprocess("Ab\ncD") == "abcd"


def test_compact_dtypes():
    assert id_dtype(28) == torch.uint8
    assert id_dtype(4580) == torch.int16
    assert id_dtype(70_000) == torch.int32


def test_encode_unknown_chars_map_to_unk_and_chunking(monkeypatch):
    import lmcore.data.text as text

    monkeypatch.setattr(text, "ENCODE_CHUNK", 7)
    tok = Tokenizer("char", "raw")
    vocab = build_vocab("hello world", tok)
    ids = encode("hello world, héllo", tok, vocab)
    assert len(ids) == len("hello world, héllo")
    assert "".join(vocab.decode(ids.tolist())) == "hello world<unk> h<unk>llo"
    wt = Tokenizer("word", "raw")
    wv = build_vocab("one two three two one two", wt)
    assert wv.decode(encode("one two three two one two", wt, wv).tolist()) == "one two three two one two".split()


def test_split_is_a_contiguous_tail():
    ids = torch.arange(100)
    tr, va = lmcore.split(ids, 0.1)
    assert tr.tolist() == list(range(90)) and va.tolist() == list(range(90, 100))


def test_ngram_statistics_zipf(tm_text):
    from lmcore.data.stats import ngram_stats

    ids, vocab = _d2l(tm_text, "word")
    uni = ngram_stats(ids, vocab.idx_to_token, 1)
    bi = ngram_stats(ids, vocab.idx_to_token, 2)
    tri = ngram_stats(ids, vocab.idx_to_token, 3)
    assert uni.top[0] == (("the",), 2261)
    assert bi.top[0] == (("of", "the"), 309)
    assert tri.top[0][0] == ("the", "time", "traveller")
    assert uni.freqs == sorted(uni.freqs, reverse=True) and sum(bi.freqs) == len(ids) - 1
    assert tri.distinct > bi.distinct > uni.distinct


def test_a_word_vocabulary_comes_from_the_training_split_only(tmp_path):
    """A word seen only in the validation tail is <unk> there (as in any new text), not an untrained
    embedding row; the validation text's length in characters stays exact for bits per character."""
    corpus = tmp_path / "words.txt"
    corpus.write_text("alpha beta gamma " * 300 + "zeta alpha " * 50, "utf-8")  # the last 10%: zeta alpha …
    home = tmp_path / "home"
    lmcore.train("w", arch="ngram", preset="tiny", corpus=str(corpus), tokens="word", home=home)
    ck = lmcore.Store(home).read("w")
    assert "zeta" not in ck.vocab and {"alpha", "beta", "gamma"} <= set(ck.vocab.idx_to_token)
    assert ck.corpus.val_tokens == 100 and ck.corpus.val_chars == len(" ".join(["zeta", "alpha"] * 50))
    # continuing maps the text onto the saved vocabulary the same way (char models keep every character)
    lmcore.train("c", arch="ngram", preset="tiny", corpus=str(corpus), home=home)
    assert "z" in lmcore.Store(home).read("c").vocab
