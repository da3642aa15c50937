from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# the same examples on every run (CI must not fail by chance); HYPOTHESIS_PROFILE=explore searches anew
# no per-example deadline: a busy machine is slow, not wrong (hypothesis fails an example over 200 ms)
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
settings.register_profile("explore", max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "corpora"
TIMEMACHINE = SHARED / "timemachine.txt"
SHAKESPEARE = SHARED / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own data folder; corpora come from ../shared/corpora through the mirror."""
    home = tmp_path / "home"
    monkeypatch.setenv("LMPLAY_HOME", str(home))
    monkeypatch.setenv("LMPLAY_CORPUS_MIRROR", str(SHARED))
    torch.manual_seed(0)
    yield


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def tm_text() -> str:
    if not TIMEMACHINE.is_file():
        pytest.skip("../shared/corpora/timemachine.txt is not present")
    return TIMEMACHINE.read_text("utf-8")


@pytest.fixture
def tm_slice(tmp_path, prose_text) -> Path:
    """The first 40,000 characters of The Time Machine as a local corpus file; where ../shared is absent
    (a user's machine), 40,000 characters of the built-in prose instead: these tests need a text, not
    that one."""
    p = tmp_path / "tm_slice.txt"
    p.write_text(TIMEMACHINE.read_text("utf-8")[:40_000] if TIMEMACHINE.is_file() else prose_text[:40_000], "utf-8")
    return p


@pytest.fixture(scope="session")
def prose_text() -> str:
    """50,000 characters of English prose that ship with Python (the built-in corpus): tests that need
    a corpus but not a particular one run everywhere, with or without ../shared."""
    from lmcore.data import corpus

    return corpus.load("pythondocs").text[:50_000]


@pytest.fixture
def prose(tmp_path, prose_text) -> Path:
    p = tmp_path / "prose.txt"
    p.write_text(prose_text, "utf-8")
    return p


def pytest_configure(config):
    torch.set_num_threads(min(2, os.cpu_count() or 1))
