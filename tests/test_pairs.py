"""Pairs corpora: the reader, the fixed-shuffle split, d2l's English-French preprocessing, the registry
entries (fra-eng downloaded as a zip; dates and reverse generated) and decoder-only models on pairs."""
import datetime
import hashlib
import io
import zipfile

import pytest

from lmcore import CorpusError
from lmcore.data import corpus, pairs

from .httpserver import Server

# The first lines of d2l's fra.txt as the chapter prints them raw, and after its preprocessing
# (French puts a narrow no-break space, U+202F, before ! and ?).
RAW = "Go.\tVa !\nHi.\tSalut !\nRun!\tCours\u202f!\nRun!\tCourez\u202f!\nWho?\tQui\u202f?\nWow!\tÇa alors\u202f!\n"
CHAPTER = "go .\tva !\nhi .\tsalut !\nrun !\tcours !\nrun !\tcourez !\nwho ?\tqui ?\nwow !\tça alors !\n"


# ---------------------------------------------------------------- reading

def test_pairs_are_read_with_further_columns_ignored_and_lines_without_a_tab_counted_in_one_note():
    text = "Go.\tVa !\tCC-BY 2.0 #2877272\nno tab here\n\nHi.\tSalut !\r\nanother line\n"
    got = pairs.read_pairs(text)
    assert got.pairs == [("Go.", "Va !"), ("Hi.", "Salut !")]
    assert got.skipped == 2
    assert got.note == "skipped 2 lines without a tab (a pairs corpus holds source<TAB>target lines)"
    assert pairs.read_pairs("a\tb\n").note is None
    assert pairs.read_pairs("a\u2028b\tc\x0bd\r\n").pairs == [("a\u2028b", "c\x0bd")]  # one line: one pair


@pytest.mark.parametrize("text, says", [
    ("no tabs\nat all\n", "no pairs"),
    ("\tb\n\tc\n", "empty source on every line"),
    ("a\t\nb\t \n", "empty target on every line"),
    ("\tb\na\t\n", "no pair with text on both sides"),
])
def test_a_text_with_no_pairs_is_refused_in_one_line(text, says):
    with pytest.raises(CorpusError) as info:
        pairs.read_pairs(text, "f.txt")
    assert says in str(info.value) and str(info.value).startswith("f.txt") and "\n" not in str(info.value)


def test_lines_with_one_empty_side_are_skipped_and_counted():
    got = pairs.read_pairs("a\tb\n\tc\nd\t\n")
    assert got.pairs == [("a", "b")] and got.empty == 2 and "2 lines with an empty source or target" in got.note


def test_the_split_is_a_fixed_shuffle_with_the_last_tenth_for_validation():
    data = [(f"s{i}", f"t{i}") for i in range(100)]
    a, b = pairs.split_pairs(data), pairs.split_pairs(list(data))
    assert a == b and a.seed == pairs.SPLIT_SEED
    assert len(a.valid) == 10 and len(a.train) == 90
    assert sorted(a.train + a.valid) == sorted(data) and a.train + a.valid != data  # shuffled, nothing lost
    assert pairs.split_pairs(data, seed=1).valid != a.valid
    assert len(pairs.split_pairs(data[:3]).valid) == 1  # at least one pair held out
    with pytest.raises(CorpusError, match="at least 2 pairs"):
        pairs.split_pairs(data[:1])


def test_a_local_file_of_tab_separated_lines_is_a_pairs_corpus_and_prose_is_not(tmp_path, prose):
    f = tmp_path / "pairs.tsv"
    f.write_text("one\tun\ntwo\tdeux\nthree\ttrois\n")
    assert corpus.open_source(str(f)).pairs
    assert not corpus.open_source(str(prose)).pairs
    code = tmp_path / "code.txt"
    code.write_text("def f():\n\treturn 1\n\n\tpass\n")  # indented with tabs: not pairs
    assert not corpus.open_source(str(code)).pairs


# ---------------------------------------------------------------- d2l's English-French pairs

def test_the_d2l_preprocessing_gives_the_chapters_first_lines():
    assert pairs.d2l_nmt_preprocess(RAW) == CHAPTER
    src, tgt = zip(*pairs.read_pairs(CHAPTER).pairs)
    assert [pairs.d2l_words(s) for s in src[:3]] == [["go", "."], ["hi", "."], ["run", "!"]]
    assert pairs.d2l_words(tgt[5]) == ["ça", "alors", "!"]
    assert pairs.d2l_nmt_preprocess("I'm OK, thanks.\xa0!") == "i'm ok , thanks . !"


def _zip(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, text in members.items():
            z.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


def _fra_registry(monkeypatch, url: str, body: bytes) -> None:
    real = corpus.entry("fra-eng")
    fake = corpus.CorpusEntry(name=real.name, title=real.title, url=url, sha1=hashlib.sha1(body).hexdigest(),
                              pairs=real.pairs, member=real.member, prep=real.prep)
    monkeypatch.setattr(corpus, "registry", lambda: [fake])
    monkeypatch.delenv(corpus.MIRROR_ENV, raising=False)


def test_fra_eng_is_in_the_registry_as_d2l_publishes_it():
    e = corpus.entry("fra-eng")
    assert e.url == "https://d2l-data.s3-accelerate.amazonaws.com/fra-eng.zip"
    assert e.sha1 == "94646ad1522d915e7b0f9296181140edcf86a4f5"
    assert e.pairs and e.member == "fra-eng/fra.txt" and e.prep == "d2l-nmt"


def test_fra_eng_is_downloaded_as_a_zip_verified_and_read_preprocessed(home, monkeypatch):
    body = _zip({"fra-eng/fra.txt": RAW + "Stop!\tArrête-toi !\tCC-BY 2.0 (France)\n", "fra-eng/_about.txt": "x"})
    with Server({"/fra-eng.zip": body}) as srv:
        _fra_registry(monkeypatch, srv.url + "/fra-eng.zip", body)
        assert corpus.status(corpus.entry("fra-eng"), home) == "needs download"
        src = corpus.open_source("fra-eng", home)
    assert corpus.status(corpus.entry("fra-eng"), home) == "cached"
    assert src.pairs and src.sha1() == hashlib.sha1(body).hexdigest()
    text = src.read()
    assert text.startswith(CHAPTER)
    assert pairs.read_pairs(text).pairs[-1] == ("stop !", "arrête-toi !")
    assert corpus.open_source("fra-eng", home, fetch_missing=False).read() == text  # from the cache now


def test_a_fra_eng_zip_without_fra_txt_says_so_in_one_line(home, monkeypatch):
    body = _zip({"other.txt": RAW})
    with Server({"/fra-eng.zip": body}) as srv:
        _fra_registry(monkeypatch, srv.url + "/fra-eng.zip", body)
        with pytest.raises(CorpusError, match="has no fra-eng/fra.txt inside it"):
            corpus.open_source("fra-eng", home)


# ---------------------------------------------------------------- generated tasks

def test_dates_are_many_unambiguous_formats_of_one_date_to_iso_8601():
    assert pairs.format_date(datetime.date(1979, 5, 3), "{W}, {d} {M} {Y}") == "Thursday, 3 May 1979"
    got = pairs.dates_pairs()
    assert got == pairs.dates_pairs() and len(got) == pairs.DATES_COUNT
    assert len({s for s, _ in got}) == len(got)
    for source, iso in got[:500]:
        d = datetime.date.fromisoformat(iso)
        assert source in {pairs.format_date(d, f) for f in pairs.DATE_FORMATS}
    used = {f for source, iso in got[:500] for f in pairs.DATE_FORMATS
            if pairs.format_date(datetime.date.fromisoformat(iso), f) == source}
    assert used == set(pairs.DATE_FORMATS)


def test_dates_use_english_names_whatever_the_locale(monkeypatch):
    import locale
    try:
        locale.setlocale(locale.LC_TIME, "fr_FR.UTF-8")
    except locale.Error:
        pass  # no French locale here: the names are written in the code either way
    try:
        assert pairs.format_date(datetime.date(2024, 2, 29), "{w} {d} {m} {Y}") == "Thu 29 Feb 2024"
    finally:
        locale.setlocale(locale.LC_TIME, "C")


def test_no_two_formats_read_a_date_two_ways():
    """A source never stands for two dates: every day of three years (a leap year among them), in every
    format, gives a source no other day gives."""
    day, seen = datetime.date(1999, 1, 1), {}
    while day.year < 2002:
        for f in pairs.DATE_FORMATS:
            s = pairs.format_date(day, f)
            assert seen.setdefault(s, day) == day, s
        day += datetime.timedelta(days=1)


def test_reverse_pairs_are_phrases_of_5_to_60_characters_reversed(prose_text):
    got = pairs.reverse_pairs(prose_text, count=300)
    assert got == pairs.reverse_pairs(prose_text, count=300) and len(got) == 300
    assert all(5 <= len(s) <= 60 and t == s[::-1] and "\t" not in s and "\n" not in s for s, t in got)
    assert all(s in " ".join(prose_text.split()) for s, _ in got)


def test_the_built_in_pairs_corpora_need_no_download(home):
    for name in ("dates", "reverse"):
        src = corpus.open_source(name, home)
        assert src.source == "builtin" and src.pairs
        read = pairs.read_pairs(src.read())
        assert read.skipped == 0 and len(read.pairs) == 10_000
    assert pairs.read_pairs(corpus.open_source("dates", home).read()).pairs[:1] == pairs.dates_pairs()[:1]


# ---------------------------------------------------------------- decoder-only models on pairs

def _pairs_file(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("a header line without a tab\n" + "".join(f"w{i}\tv{i % 7}\n" for i in range(300)))
    return f


def test_a_decoder_only_model_reads_each_pair_as_a_line_and_knows_it_was_trained_on_pairs(home, tmp_path, capsys):
    import lmcore
    from lmcore.cli.main import main
    from lmcore.generation.generator import trained_on_pairs
    from lmcore.store.model_store import Store

    events = []
    done = lmcore.train("lm", arch="lstm", preset="tiny", corpus=str(_pairs_file(tmp_path)), steps=2, eval_every=2,
                        on_event=events.append)
    assert done.kind == "done"
    start = next(e for e in events if e.kind == "start")
    assert start.auto == "skipped 1 line without a tab (a pairs corpus holds source<TAB>target lines)"
    ck = Store(home).read("lm")
    assert ck.corpus.pairs_seed == pairs.SPLIT_SEED and trained_on_pairs(ck)
    split = pairs.split_pairs(pairs.read_pairs(_pairs_file(tmp_path).read_text()).pairs)
    lines = pairs.pairs_lines(split.train + split.valid)  # the text it read: the validation pairs last
    assert ck.corpus.train_tokens + ck.corpus.val_tokens == len(lines)  # characters: one token each
    assert ck.corpus.val_tokens == ck.corpus.val_chars == len(pairs.pairs_lines(split.valid))  # exactly its pairs

    # scored as a pairs model is: exact match and BLEU of its greedy replies to the validation sources
    point = ck.history[-1]
    assert all(0 <= v <= 1 for v in (point.bleu, point.corpus_bleu, point.exact))
    assert done.best_val_exact == ck.best_val_exact and done.best_val_bleu is not None
    evals = [e for e in events if e.kind == "eval"]
    assert evals[-1].exact == point.exact and evals[-1].sample.startswith(split.valid[0][0] + " → ")

    # generating: the prompt is a source, a tab is added, the reply ends at the newline
    assert main(["generate", "lm", "--prompt", "w3", "--length", "40", "--temperature", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("w3\t") and out.count("\n") == 1 and out.endswith("\n")
    gen = lmcore.Generator.from_store(Store(home), "lm")
    stream = gen.stream("w3", lmcore.SamplingSettings(max_tokens=40, temperature=0))
    reply = "".join(t.text for t in stream)
    assert stream.prompt == "w3\t" and "\n" not in reply and out == "w3\t" + reply + "\n"

    assert main(["generate", "lm", "--prompt", "w3", "--length", "40", "--beam", "2"]) == 0  # beams end there too
    out = capsys.readouterr().out
    assert out.startswith("w3\t") and out.count("\n") == 1 and out.endswith("\n")

    # continued: still a pairs model, on the same lines
    assert lmcore.train("lm", resume=True, steps=1).kind == "done"
    assert Store(home).read("lm").corpus.pairs_seed == pairs.SPLIT_SEED


def test_a_model_of_plain_text_is_not_a_pairs_model(home, prose):
    import lmcore
    from lmcore.generation.generator import trained_on_pairs
    from lmcore.store.model_store import Store

    lmcore.train("plain", arch="lstm", preset="tiny", corpus=str(prose), steps=1, eval_every=1)
    ck = Store(home).read("plain")
    assert ck.corpus.pairs_seed is None and not trained_on_pairs(ck)
    stream = lmcore.Generator.from_store(Store(home), "plain").stream("The", lmcore.SamplingSettings(max_tokens=3))
    list(stream)
    assert stream.prompt == "The"


def test_a_pairs_prompt_gets_one_tab():
    assert pairs.pair_prompt("3 May 1979") == "3 May 1979\t"
    assert pairs.pair_prompt("3 May 1979\n") == "3 May 1979\t"
    assert pairs.pair_prompt("3 May 1979\t1979-") == "3 May 1979\t1979-"  # a source and the start of its target


@pytest.mark.parametrize("option, says", [(["--prep", "d2l"], "--prep raw"), (["--tokens", "word"], "--tokens char or bpe")])
def test_tokens_that_drop_the_tab_are_refused_for_a_pairs_corpus_and_leave_no_model(home, tmp_path, capsys,
                                                                                      option, says):
    from lmcore.cli.main import main

    rc = main(["train", "lm", "--arch", "lstm", "--preset", "tiny", "--corpus", str(_pairs_file(tmp_path)),
               "--steps", "1", *option])
    err = capsys.readouterr().err
    assert rc != 0 and "pairs corpus" in err and says in err and "Traceback" not in err
    assert not (home / "models" / "lm").exists()


def test_a_decoder_only_model_on_pairs_in_bpe_tokens_holds_out_exactly_the_validation_pairs(home, tmp_path):
    import lmcore
    from lmcore.store.model_store import Store

    f = _pairs_file(tmp_path)
    assert lmcore.train("bpe", arch="lstm", preset="tiny", corpus=str(f), tokens="bpe", vocab_size=300, steps=1,
                        eval_every=1, batch_size=4, seq_len=16).kind == "done"
    ck = Store(home).read("bpe")
    split = pairs.split_pairs(pairs.read_pairs(f.read_text()).pairs)
    assert ck.corpus.val_chars == len(pairs.pairs_lines(split.valid)) and ck.corpus.pairs_seed == 0
    assert ck.corpus.val_tokens == len(ck.tokenizer.tokenize(pairs.pairs_lines(split.valid)))


def test_fra_eng_comes_from_a_mirror_folder_as_fra_eng_zip(home, monkeypatch, tmp_path):
    from .httpserver import refused_url

    body = _zip({"fra-eng/fra.txt": RAW})
    _fra_registry(monkeypatch, refused_url(), body)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "fra-eng.zip").write_bytes(body)
    monkeypatch.setenv(corpus.MIRROR_ENV, str(tmp_path / "mirror"))
    assert corpus.open_source("fra-eng", home).read() == CHAPTER


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_greedy_replies_are_the_generators_replies_and_score_one_when_they_are_the_targets(home, tmp_path, arch):
    """Replies computed together (prompts of one length in one batch) equal the generator's own, one by one."""
    import lmcore
    from lmcore.store.model_store import Store
    from lmcore.training.lm_pairs_eval import evaluate_lm_pairs, greedy_replies

    lmcore.train("lm", arch=arch, preset="tiny", corpus=str(_pairs_file(tmp_path)), steps=3, eval_every=3)
    gen = lmcore.Generator.from_store(Store(home), "lm")
    sources = ["w3", "w12", "w150", "w77", "zz", ""]
    settings = lmcore.SamplingSettings(max_tokens=20, temperature=0)
    one_by_one = [gen.complete(s, settings).strip() for s in sources]
    assert greedy_replies(gen.model, sources, gen.vocab, gen.tokenizer, max_new=20) == one_by_one
    got = evaluate_lm_pairs(gen.model, list(zip(sources, one_by_one)), gen.vocab, gen.tokenizer, max_new=20)
    assert got.exact == 1.0 and got.replies == one_by_one
