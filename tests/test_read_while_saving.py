"""Readers race the writer: a model read (listed, shown, loaded for generation) while its training saves it
is never seen as damaged. A save writes new weights, replaces meta.json, then removes the old weights; a
reader that read the old meta.json must not report the old file's absence as damage.

The race is made deterministic with a seam: right after the reader has parsed meta.json (Checkpoint.from_json
returns) and before it opens the weights, another Store saves the model (or deletes it), once."""
from __future__ import annotations

import json

import pytest

import lmcore
from lmcore import Checkpoint
from lmcore.cli.main import main
from lmcore.errors import StoreError
from lmcore.store.model_store import Store
from tests import factories


@pytest.fixture
def store(home):
    s = Store(home)
    factories.save(s, "g1", step=1)
    return s


@pytest.fixture
def save_after_meta_is_read(monkeypatch, home):
    """Arm with ``arm(action)``: the next meta.json parsed runs ``action`` (a save or a delete by another
    Store, as a training process would) before the reader goes on. Returns how many times it fired."""
    original = Checkpoint.from_json.__func__
    pending: list = []
    fired: list = []

    def from_json(cls, d, folder_name=None):
        ck = original(cls, d, folder_name)
        if pending:
            action = pending.pop()
            action()
            fired.append(action)
        return ck

    monkeypatch.setattr(Checkpoint, "from_json", classmethod(from_json))

    def arm(action=None, times: int = 1):
        for _ in range(times):
            pending.append(action or (lambda: factories.save(Store(home), "g1", step=len(fired) + 2)))
        return fired
    return arm


def test_reading_a_model_while_it_is_saved_gives_the_model(store, save_after_meta_is_read):
    fired = save_after_meta_is_read()
    ck = store.read("g1")
    assert fired, "the seam did not run: the test no longer reproduces the race"
    assert ck.name == "g1" and ck.model.arch == "lstm"
    assert store.check("g1").ok


def test_listing_while_a_model_is_saved_lists_it_as_usable(store, save_after_meta_is_read):
    factories.save(store, "other", step=1)
    save_after_meta_is_read()
    entries = {e.name: e for e in store.list()}
    assert entries["g1"].ok, entries["g1"].reason
    assert entries["other"].ok


def test_several_saves_in_a_row_while_reading_still_give_the_model(store, save_after_meta_is_read):
    fired = save_after_meta_is_read(times=5)
    assert store.read("g1").name == "g1"
    assert len(fired) == 5


def test_loading_for_generation_while_the_model_is_saved_works(store, save_after_meta_is_read):
    save_after_meta_is_read()
    model, vocab, tok = lmcore.load_model(store, "g1")
    assert vocab.idx_to_token == store.read("g1").vocab.idx_to_token
    text = lmcore.Generator.from_store(store, "g1").complete("ab", lmcore.SamplingSettings(max_tokens=5, seed=0))
    assert isinstance(text, str) and len(text) > 0


def test_weights_of_a_checkpoint_read_before_a_save_still_load(store):
    """The app reads a checkpoint (the picker), training saves, then the app loads its weights."""
    ck = store.read("g1")
    old = ck.files.weights
    factories.save(Store(store.home), "g1", step=2)
    assert store.read("g1").files.weights != old
    state = store.load_weights("g1", ck)
    assert set(state) == set(factories.checkpoint("g1")[1])
    model, vocab, tok = lmcore.load_model(store, "g1", ck)
    assert vocab.idx_to_token == ck.vocab.idx_to_token


def test_a_model_deleted_while_it_is_read_is_gone_not_damaged(store, save_after_meta_is_read, home):
    factories.save(store, "other", step=1)
    save_after_meta_is_read(lambda: Store(home).delete("g1"))
    with pytest.raises(StoreError) as err:
        store.read("g1")
    assert "no model named 'g1'" in str(err.value) and "damaged" not in str(err.value)
    save_after_meta_is_read(lambda: Store(home).delete("other"))
    factories.save(store, "g1", step=1)
    assert [(e.name, e.ok) for e in store.list()] == [("g1", True)]


def test_cli_show_and_generate_while_the_model_is_saved(store, save_after_meta_is_read, capsys):
    save_after_meta_is_read()
    assert main(["models", "show", "g1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "g1"
    save_after_meta_is_read()
    assert main(["models", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]  # one model a line
    assert [(r["name"], r["ok"]) for r in rows] == [("g1", True)]
    save_after_meta_is_read()
    assert main(["generate", "g1", "--prompt", "ab", "--length", "5", "--seed", "0", "--json"]) == 0
    out = capsys.readouterr()
    assert "damaged" not in out.err
    events = [json.loads(line) for line in out.out.splitlines()]
    assert len([e for e in events if "text" in e]) == 5  # the five tokens asked for


def test_the_app_opens_a_model_that_is_being_saved(store, save_after_meta_is_read):
    from tui.app import create_app

    app = create_app(store.home)
    save_after_meta_is_read()
    assert app.core.model_checkpoint("g1") is not None
    save_after_meta_is_read()
    assert [e.ok for e in app.core.list_models()] == [True]
    save_after_meta_is_read()
    assert app.core.get_generator("g1").complete("ab", lmcore.SamplingSettings(max_tokens=3, seed=0))
