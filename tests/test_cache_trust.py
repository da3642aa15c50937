"""What the token cache must not trust: the encoding a corpus was read with, a corpus file rewritten with
its size and time restored, a token file damaged, linked elsewhere or truncated while in use, and the
temporary folder a killed tokenization left behind. Codecs that are not text codecs are refused."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch

import lmcore
from lmcore.data import corpus as corpora
from lmcore.data import token_cache
from lmcore.cli.main import main
from lmcore.errors import CorpusError
from lmcore.data.text import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
NOT_TEXT_CODECS = ("base64", "rot13", "hex", "zlib", "uu", "quopri", "bz2", "undefined")


def _tokens(home, path, encoding=None, tok=Tokenizer(), **kw):
    src = corpora.open_source(str(path), home, encoding=encoding)
    return token_cache.tokens_for(home, src, src.sha1(), tok, None, 0.1, **kw)


def _entry(home) -> Path:
    (entry,) = [f for f in token_cache.cache_dir(home).iterdir() if (f / "meta.json").is_file()]
    return entry


@pytest.fixture
def accented(tmp_path, prose_text) -> Path:
    p = tmp_path / "accented.txt"
    p.write_text(prose_text[:6000] + "café naïve déjà vu\n" * 40, "utf-8")
    return p


def test_the_encoding_a_corpus_was_read_with_is_part_of_the_cache_key(home, accented):
    as_latin1 = _tokens(home, accented, "latin-1")
    assert "Ã" in as_latin1.vocab and "é" not in as_latin1.vocab  # UTF-8 bytes read as latin-1: mojibake
    as_utf8 = _tokens(home, accented)
    assert as_utf8.built and "é" in as_utf8.vocab and "Ã" not in as_utf8.vocab
    assert not _tokens(home, accented, "UTF8").built  # the same codec by another name: the same entry
    assert not _tokens(home, accented, "ISO-8859-1").built


@pytest.mark.parametrize("codec", NOT_TEXT_CODECS)
def test_a_codec_that_is_not_a_text_encoding_is_refused_before_the_cache(home, accented, codec):
    _tokens(home, accented)  # a cached entry must not make a bogus codec acceptable
    with pytest.raises(CorpusError, match=f"'{codec}' is not a text encoding"):
        _tokens(home, accented, codec)


@pytest.mark.parametrize("codec", NOT_TEXT_CODECS)
@pytest.mark.parametrize("command", [["corpora", "info"], ["corpora", "zipf"], ["train", "m", "--arch", "ngram",
                                                                                "--corpus"]])
def test_the_cli_refuses_a_codec_that_is_not_a_text_encoding_in_one_line(home, accented, capsys, command, codec):
    rc = main([*command, str(accented), "--encoding", codec])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert f"'{codec}' is not a text encoding" in err and "free some space" not in err
    assert not (home / "models" / "m").exists()


def test_an_unknown_codec_is_one_line_too(home, accented, capsys):
    assert main(["corpora", "info", str(accented), "--encoding", "klingon-8"]) == 1
    assert capsys.readouterr().err.startswith("error: unknown encoding 'klingon-8'")


def test_a_corpus_rewritten_with_its_size_and_times_restored_is_hashed_again(home, tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("hello world\n" * 100, "utf-8")
    before = os.stat(p)
    memo = tmp_path / "memo"
    old = corpora.open_source(str(p)).sha1(memo)
    assert corpora.open_source(str(p)).sha1(memo) == old  # remembered
    while os.stat(p).st_ctime_ns == before.st_ctime_ns:  # the clock must move on (coarse on some kernels)
        with open(p, "r+b") as f:  # in place: the same inode, the same size
            f.write(b"HELLO")
        os.utime(p, ns=(before.st_atime_ns, before.st_mtime_ns))
    now = os.stat(p)
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert corpora.open_source(str(p)).sha1(memo) == corpora.sha1_of_file(p) != old


def test_ids_outside_the_vocabulary_in_a_token_file_rebuild_the_entry(home, accented):
    expected = _tokens(home, accented).train_ids.clone()
    tokens = _entry(home) / "tokens.bin"
    data = bytearray(tokens.read_bytes())
    data[100] = 255  # the vocabulary of this text has far fewer than 255 characters
    tokens.write_bytes(bytes(data))
    again = _tokens(home, accented)
    assert again.built and torch.equal(again.train_ids, expected)
    assert int(again.train_ids.max()) < len(again.vocab)


def test_a_token_file_or_entry_replaced_by_a_link_is_not_followed(home, tmp_path, accented):
    expected = _tokens(home, accented).train_ids.clone()
    entry = _entry(home)
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"\x00" * (entry / "tokens.bin").stat().st_size)  # valid ids, the wrong ones
    (entry / "tokens.bin").unlink()
    (entry / "tokens.bin").symlink_to(elsewhere)
    again = _tokens(home, accented)
    assert again.built and torch.equal(again.train_ids, expected)
    assert elsewhere.read_bytes() == b"\x00" * len(elsewhere.read_bytes())  # the link's target untouched
    del again
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in entry.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / "tokens.bin").write_bytes(elsewhere.read_bytes())
    for f in entry.iterdir():
        f.unlink()
    entry.rmdir()
    entry.symlink_to(copy, target_is_directory=True)
    again = _tokens(home, accented)
    assert again.built and torch.equal(again.train_ids, expected) and not entry.is_symlink()
    assert (copy / "tokens.bin").read_bytes() == elsewhere.read_bytes()


@pytest.mark.parametrize("in_memory", [True, False], ids=["small file", "large file"])
def test_truncating_the_token_file_while_it_is_used_does_not_kill_the_process(home, accented, in_memory):
    """Read in another process: a memory-mapped file cut short kills its reader with SIGBUS."""
    script = textwrap.dedent(f"""
        import os, sys
        from lmcore.data import corpus as corpora
        from lmcore.data import token_cache
        from lmcore.data.text import Tokenizer
        if not {in_memory}:
            token_cache.IN_MEMORY_BYTES, token_cache.COPY_BYTES = 0, 4096  # copied in several pieces
        home, path = sys.argv[1], sys.argv[2]
        src = corpora.open_source(path, home)
        d = token_cache.tokens_for(home, src, src.sha1(), Tokenizer(), None, 0.1)
        expected = int(d.train_ids.long().sum()) if d.built else None
        (entry,) = [e for e in token_cache.cache_dir(home).iterdir() if (e / "meta.json").is_file()]
        os.truncate(entry / "tokens.bin", 0)
        print(int(d.train_ids.long().sum()), int(d.val_ids.long().sum()), d.file.count, expected, flush=True)
    """)
    first = subprocess.run([sys.executable, "-c", script, str(home), str(accented)], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    train_sum, _, count, expected = first.stdout.split()
    assert train_sum == expected and int(count) > 0
    second = subprocess.run([sys.executable, "-c", script, str(home), str(accented)], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert second.stdout.split()[:2] == first.stdout.split()[:2]  # the cut entry was built again, the same


def test_a_tokenization_killed_with_sigkill_leaves_nothing_after_the_next_use(home, tmp_path, accented):
    script = textwrap.dedent("""
        import os, signal, sys
        from lmcore.data import corpus as corpora
        from lmcore.data import token_cache
        from lmcore.data.text import Tokenizer
        def progress(what, done, total):
            if what == "writing token ids":
                os.kill(os.getpid(), signal.SIGKILL)
        src = corpora.open_source(sys.argv[2], sys.argv[1])
        token_cache.tokens_for(sys.argv[1], src, src.sha1(), Tokenizer(), None, 0.1, progress)
    """)
    killed = subprocess.run([sys.executable, "-c", script, str(home), str(accented)], cwd=ROOT, timeout=300)
    assert killed.returncode == -9
    assert [f.name[0] for f in token_cache.cache_dir(home).iterdir()] == ["."]  # the killed one's folder
    other = tmp_path / "other.txt"
    other.write_text("another text, another entry\n" * 50, "utf-8")
    _tokens(home, other)
    assert [f.name for f in token_cache.cache_dir(home).iterdir() if f.name.startswith(".")] == []


def test_the_folder_of_a_tokenization_still_running_is_left_alone(home, tmp_path, accented):
    reached, release, result = threading.Event(), threading.Event(), {}

    def progress(what, done, total):
        if what == "writing token ids":
            reached.set()
            release.wait(60)

    def build():
        result["data"] = _tokens(home, accented, progress=progress)

    t = threading.Thread(target=build)
    t.start()
    try:
        assert reached.wait(60)
        other = tmp_path / "other.txt"
        other.write_text("another text, another entry\n" * 50, "utf-8")
        _tokens(home, other)
        assert any(f.name.startswith(".") for f in token_cache.cache_dir(home).iterdir())
    finally:
        release.set()
        t.join(60)
    assert result["data"].built and "é" in result["data"].vocab


def test_training_with_another_encoding_records_the_text_it_read(home, accented, capsys):
    assert main(["train", "a", "--arch", "ngram", "--corpus", str(accented), "--encoding", "latin-1"]) == 0
    assert main(["train", "b", "--arch", "ngram", "--corpus", str(accented)]) == 0
    capsys.readouterr()
    store = lmcore.Store(home)
    assert "Ã" in store.read("a").vocab and "Ã" not in store.read("b").vocab
    meta = json.loads((home / "models" / "b" / "meta.json").read_text("utf-8"))
    assert meta["corpus"]["sha1"] == corpora.sha1_of_file(accented)


def test_a_model_remembers_the_encoding_its_corpus_was_read_with(home, tmp_path, prose_text, capsys):
    """The cache no longer hands an earlier decoding to a run: --resume (and the validation text the app
    shows) read the corpus with the encoding the model was trained with, without being told again."""
    p = tmp_path / "utf16.txt"
    p.write_text(prose_text[:20_000] + "café\n" * 50, "utf-16")
    assert main(["train", "m", "--arch", "lstm", "--preset", "tiny", "--steps", "2", "--corpus", str(p),
                 "--encoding", "utf-16"]) == 0
    assert main(["train", "m", "--resume", "--steps", "1"]) == 0, capsys.readouterr().err
    store = lmcore.Store(home)
    ck = store.read("m")
    text = p.read_text("utf-16")
    assert ck.step == 3 and lmcore.validation_text(store, "m", 60) == text[len(text) - ck.corpus.val_tokens:][:60]
