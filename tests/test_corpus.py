import hashlib
import json

import pytest

import lmcore
from lmcore.data import corpus
from lmcore.cli.main import main
from lmcore.errors import CorpusError

from .conftest import SHAKESPEARE, SHARED, TIMEMACHINE
from .httpserver import Server, refused_url
from .waiting import DEADLINE

BODY = ("It was the best of times, it was the worst of times.\n" * 200).encode()
SHA = hashlib.sha1(BODY).hexdigest()


def _use_registry(monkeypatch, url, sha=SHA, size=len(BODY)):
    entries = [corpus.CorpusEntry(name="pythondocs", title="built in", builtin="pydoc_topics"),
               corpus.CorpusEntry(name="demo", title="Demo", url=url, sha1=sha, size=size)]
    monkeypatch.setattr(corpus, "registry", lambda: entries)
    monkeypatch.delenv(corpus.MIRROR_ENV, raising=False)


def _needs(*files):
    """Skip a test that needs the real corpus files of ../shared/corpora where they are absent (offline)."""
    missing = [p.name for p in files if not p.is_file()]
    return pytest.mark.skipif(bool(missing), reason=f"needs ../shared/corpora/{', '.join(missing)} (not present)")


def _leftovers(home):
    d = home / "corpora"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def test_registry_lists_the_pinned_corpora():
    by_name = {e.name: e for e in corpus.registry()}
    assert by_name["timemachine"].sha1 == "090b5e7e70c295757f55df93cb0a180b9691891a"
    assert by_name["timemachine"].size == 178_979
    assert by_name["timemachine"].url == "https://d2l-data.s3-accelerate.amazonaws.com/timemachine.txt"
    assert by_name["tinyshakespeare"].sha1 == "04486597058d11dcc2c556b1d0433891eb639d2e"
    assert by_name["tinyshakespeare"].size == 1_115_394
    assert by_name["pythondocs"].builtin


def test_builtin_corpus_works_offline(monkeypatch):
    monkeypatch.delenv(corpus.MIRROR_ENV, raising=False)
    c = lmcore.load_corpus("pythondocs")
    assert len(c.text) > 100_000 and c.source == "builtin"
    assert "statement" in c.text and "::=" not in c.text  # prose, grammar removed


def test_download_success_is_verified_and_cached(home, monkeypatch):
    with Server({"/demo.txt": BODY}) as srv:
        _use_registry(monkeypatch, srv.url + "/demo.txt")
        seen = []
        path = corpus.fetch("demo", home, progress=lambda done, total: seen.append((done, total)))
        assert path.read_bytes() == BODY and seen[-1] == (len(BODY), len(BODY))
        assert corpus.status(corpus.entry("demo"), home) == "cached"
        assert _leftovers(home) == ["demo.txt"]
    # the server is gone: the verified cached copy is used
    assert lmcore.load_corpus("demo", home).text == BODY.decode()


def test_cached_file_is_verified_before_use(home, monkeypatch):
    with Server({"/demo.txt": BODY}) as srv:
        _use_registry(monkeypatch, srv.url + "/demo.txt")
        path = corpus.fetch("demo", home)
        path.write_bytes(b"tampered" + BODY[8:])
        assert corpus.fetch("demo", home).read_bytes() == BODY  # re-fetched


@pytest.mark.parametrize("case, expect", [
    ("sha", "sha1 mismatch"),
    ("404", "HTTP 404"),
    ("refused", "connection refused"),
    ("short", "cut short"),
    ("stall", "did not answer"),
])
def test_download_failures_leave_nothing_behind(home, monkeypatch, case, expect):
    if case == "stall":  # a server that never answers meets a short timeout; the others answer at once
        monkeypatch.setattr(corpus, "DOWNLOAD_TIMEOUT", 0.5)
    with Server({"/demo.txt": BODY}) as srv:
        url = {"sha": srv.url + "/demo.txt", "404": srv.url + "/missing.txt", "refused": refused_url(),
               "short": srv.url + "/short/demo.txt", "stall": srv.url + "/stall/demo.txt"}[case]
        srv.stall_s = DEADLINE  # longer than the test: the stalled answer never comes
        _use_registry(monkeypatch, url, sha="0" * 40 if case == "sha" else SHA)
        with pytest.raises(CorpusError) as info:
            corpus.fetch("demo", home)
        msg = str(info.value)
        assert expect in msg and "corpus 'demo'" in msg and "pythondocs" in msg and corpus.MIRROR_ENV in msg
        assert _leftovers(home) == []


def test_mirror_folder_and_url_are_tried_first(home, monkeypatch, tmp_path):
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "demo.txt").write_bytes(BODY)
    _use_registry(monkeypatch, refused_url())
    monkeypatch.setenv(corpus.MIRROR_ENV, str(tmp_path / "mirror"))
    assert corpus.fetch("demo", home).read_bytes() == BODY
    (home / "corpora" / "demo.txt").unlink()
    with Server({"/m/demo.txt": BODY}) as srv:
        monkeypatch.setenv(corpus.MIRROR_ENV, srv.url + "/m/")
        assert corpus.fetch("demo", home).read_bytes() == BODY


def test_mirror_failure_falls_back_to_public_address(home, monkeypatch, tmp_path):
    with Server({"/demo.txt": BODY}) as srv:
        _use_registry(monkeypatch, srv.url + "/demo.txt")
        monkeypatch.setenv(corpus.MIRROR_ENV, str(tmp_path / "empty-mirror"))
        assert corpus.fetch("demo", home).read_bytes() == BODY


@_needs(TIMEMACHINE, SHAKESPEARE)
def test_shared_mirror_serves_the_real_corpora(home):
    assert corpus.fetch("timemachine", home).stat().st_size == 178_979
    assert (SHARED / "tinyshakespeare.txt").is_file()


def test_local_files_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("hello world\n")
    d = tmp_path / "books"
    (d / "sub").mkdir(parents=True)
    (d / "1.txt").write_text("one\n")
    (d / "sub" / "2.txt").write_text("two\n")
    (d / "skip.bin").write_bytes(b"\x00\x01")
    assert lmcore.load_corpus(str(tmp_path / "a.txt")).text == "hello world\n"
    assert lmcore.load_corpus(str(d)).text == "one\n\ntwo\n"


@pytest.mark.parametrize("content, expect", [
    (b"", "is empty"),
    (b"   \n\n", "only whitespace"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8"),
])
def test_bad_local_files_get_one_clear_error(tmp_path, content, expect):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(CorpusError, match=expect):
        lmcore.load_corpus(str(p))


def test_explicit_encoding(tmp_path):
    p = tmp_path / "latin.txt"
    p.write_bytes("caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    assert lmcore.load_corpus(str(p), encoding="latin-1").text == "caf\u00e9 cr\u00e8me\n"
    with pytest.raises(CorpusError, match="unknown encoding"):
        lmcore.load_corpus(str(p), encoding="klingon")


def test_missing_paths_and_names(tmp_path):
    with pytest.raises(CorpusError, match="no such file"):
        lmcore.load_corpus(str(tmp_path / "nope.txt"))
    with pytest.raises(CorpusError, match="unknown corpus 'nosuch'"):
        lmcore.load_corpus("nosuch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .txt files"):
        lmcore.load_corpus(str(tmp_path / "empty"))


# d2l clean-up: "the cat sat on the mat" / "a dog lay on the log", 50 times each
DEMO_TEXT = ("The cat sat on the mat.\nA dog lay on the log!\n" * 50).encode()


def test_cli_corpora_list_fetch_info_offline(capsys, home, monkeypatch, tmp_path):
    """The CLI's list, fetch and info on a corpus the test makes, served from a local mirror folder."""
    assert main(["corpora", "--json"]) == 0  # the real registry: statuses need no download
    st = {r["name"]: r["status"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert st == {"pythondocs": "built-in", "timemachine": "needs download", "tinyshakespeare": "needs download",
                  "fra-eng": "needs download", "dates": "built-in", "reverse": "built-in"}
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / "demo.txt").write_bytes(DEMO_TEXT)
    _use_registry(monkeypatch, refused_url(), sha=hashlib.sha1(DEMO_TEXT).hexdigest(), size=len(DEMO_TEXT))
    monkeypatch.setenv(corpus.MIRROR_ENV, str(tmp_path / "mirror"))
    assert main(["corpora", "--json"]) == 0
    st = {r["name"]: r["status"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert st == {"pythondocs": "built-in", "demo": "needs download"}
    assert main(["corpora", "fetch", "demo"]) == 0
    assert "verified and cached" in capsys.readouterr().out
    assert main(["corpora", "--json"]) == 0
    st = {r["name"]: r["status"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert st == {"pythondocs": "built-in", "demo": "cached"}
    assert main(["corpora", "info", "demo", "--prep", "d2l", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["source"] == "cache" and info["characters"] == len(DEMO_TEXT)
    assert info["char"]["tokens"] == 50 * (22 + 20) and info["char"]["vocab"] == 15  # 14 characters + <unk>
    assert info["word"]["tokens"] == 50 * 12 and info["word"]["vocab"] == 10  # 9 words + <unk>
    assert info["word"]["bigrams"][0] == ["on the", 100]


@_needs(TIMEMACHINE)
def test_cli_corpora_list_fetch_info(capsys, home):
    assert main(["corpora", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    st = {r["name"]: r["status"] for r in rows}
    assert st == {"pythondocs": "built-in", "timemachine": "needs download", "tinyshakespeare": "needs download",
                  "fra-eng": "needs download", "dates": "built-in", "reverse": "built-in"}
    assert main(["corpora", "fetch", "timemachine"]) == 0
    assert "verified and cached" in capsys.readouterr().out
    assert main(["corpora", "info", "timemachine", "--prep", "d2l", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["char"]["tokens"] == 170_580 and info["char"]["vocab"] == 28
    assert info["word"]["tokens"] == 32_775 and info["word"]["vocab"] == 4_580
    assert info["word"]["bigrams"][0] == ["of the", 309]


def test_cli_offline_missing_corpus_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv(corpus.MIRROR_ENV, "/nonexistent-mirror")
    monkeypatch.setattr(corpus, "registry", lambda: [corpus.CorpusEntry(
        name="timemachine", title="t", url=refused_url(), sha1=SHA, size=1)])
    assert main(["corpora", "fetch", "timemachine"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: corpus 'timemachine' is not cached")
