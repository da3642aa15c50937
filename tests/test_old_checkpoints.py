"""Every checkpoint an earlier release wrote keeps loading, listing, generating and continuing.

tests/fixtures/checkpoints/<date>-format<N>/ holds small models of every family written by the code of
that date (tests/fixtures/make_checkpoints.py); a new checkpoint format adds a folder and keeps the old."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import lmcore
from lmcore import Generator, SamplingSettings, Store, load_model

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoints"
HOMES = sorted(p for p in FIXTURES.iterdir() if (p / "models").is_dir())
MODELS = [(home, d.name) for home in HOMES for d in sorted((home / "models").iterdir()) if not d.name.startswith(".")]


def test_every_release_left_models_to_read():
    assert HOMES and len(MODELS) >= 9


@pytest.fixture
def copied(tmp_path):
    def copy(home: Path) -> Path:
        shutil.copytree(home, tmp_path / "home")
        shutil.copy(FIXTURES / "corpus.txt", tmp_path / "corpus.txt")
        return tmp_path / "home"
    return copy


@pytest.mark.parametrize("release,name", MODELS, ids=[f"{h.name}/{n}" for h, n in MODELS])
def test_an_old_model_lists_generates_and_continues(copied, release, name):
    home = copied(release)
    store = Store(home)
    (entry,) = [e for e in store.list() if e.name == name]
    assert entry.ok and entry.reason == ""
    ck = store.read(name)
    assert ck.step >= 1 and ck.best_val_loss > 0
    model, vocab, tok = load_model(store, name)
    if not ck.model.family.can_generate(ck.model):  # it cannot generate: saying so is what it should do
        with pytest.raises(lmcore.LmError, match="bidirectional"):
            Generator(model, vocab, tok).complete("The ", SamplingSettings(max_tokens=5, seed=1))
    else:
        text = Generator(model, vocab, tok).complete("The ", SamplingSettings(max_tokens=12, seed=1))
        assert text.strip() and text == Generator(model, vocab, tok).complete("The ", SamplingSettings(max_tokens=12, seed=1))
    more = dict(resume=True, steps=2, eval_every=2, eval_tokens=256, threads=1,
                corpus=str(home.parent / "corpus.txt"), home=home)
    if not model.trainable:  # counted in one pass: continuing says there is nothing to continue
        with pytest.raises(lmcore.ConfigError, match="nothing to continue"):
            lmcore.train(name, **more)
        return
    done = lmcore.train(name, **more)
    assert isinstance(done, lmcore.DoneEvent), done
    assert store.read(name).step == ck.step + 2
