"""What the app needs from a corpus download: stopping it, and why it failed in a few words."""
import hashlib

import pytest

from lmcore import Cancelled, DownloadError

from lmcore.data import corpus

from .httpserver import Server, refused_url

BODY = ("The Time Traveller (for so it will be convenient to speak of him).\n" * 3000).encode()
SHA = hashlib.sha1(BODY).hexdigest()


def _registry(monkeypatch, url: str) -> None:
    entries = [corpus.CorpusEntry(name="demo", title="Demo", url=url, sha1=SHA, size=len(BODY))]
    monkeypatch.setattr(corpus, "registry", lambda: entries)
    monkeypatch.delenv(corpus.MIRROR_ENV, raising=False)


def test_a_download_stopped_by_its_progress_leaves_nothing_and_tries_nothing_else(home, monkeypatch, tmp_path):
    (tmp_path / "mirror").mkdir()
    with Server({"/demo.txt": BODY}) as srv:
        _registry(monkeypatch, srv.url + "/demo.txt")
        monkeypatch.setenv(corpus.MIRROR_ENV, srv.url)  # the mirror first, then the public address
        calls = []

        def progress(done, total):
            calls.append(done)
            raise Cancelled("stopped")

        with pytest.raises(Cancelled):
            corpus.fetch("demo", home, progress=progress)
        assert len(calls) == 1  # the public address was not tried after the stop
        assert not (home / "corpora").exists() or list((home / "corpora").iterdir()) == []
        assert corpus.status(corpus.entry("demo"), home) == "needs download"


def test_a_failed_download_says_why_in_a_few_words(home, monkeypatch):
    _registry(monkeypatch, refused_url())
    with pytest.raises(DownloadError) as info:
        corpus.fetch("demo", home)
    assert info.value.name == "demo" and info.value.reason == "connection refused"
    assert corpus.MIRROR_ENV in str(info.value)  # the command line's whole line is kept
