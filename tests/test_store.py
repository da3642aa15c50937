import json

import pytest
import torch

from lmcore.errors import StoreError
from lmcore.store.model_store import Store, validate_name

from . import factories


def test_round_trip_checkpoint_tensors_and_tied_weights(home):
    s = Store(home)
    ck, state = factories.checkpoint("m1", "transformer")  # tied embedding and head
    s.save("m1", ck, state, resume={"step": 1, "model": state, "optim": {"lr": 0.1}, "rng": torch.get_rng_state()})
    back_ck = s.read("m1")
    assert back_ck.name == "m1" and [h.val_loss for h in back_ck.history] == [1.5]
    assert back_ck.created and back_ck.updated and back_ck.to_json()["format"] == 2
    assert back_ck.model == ck.model and back_ck.vocab.idx_to_token == ck.vocab.idx_to_token
    back = s.load_weights("m1")
    assert set(back) == set(state)
    for k in state:
        assert torch.equal(back[k], state[k])
    assert s.load_resume("m1", back_ck)["optim"] == {"lr": 0.1}
    assert [e.name for e in s.list()] == ["m1"] and s.list()[0].ok


def test_save_replaces_files_and_keeps_best_weights(home):
    s = Store(home)
    ck, state = factories.checkpoint("m")
    s.save("m", ck, state, resume={"step": 1, "model": {}})
    ck.step = 2
    s.save("m", ck, None, resume={"step": 2, "model": {}})
    assert all(torch.equal(s.load_weights("m")[k], v) for k, v in state.items())
    assert s.load_resume("m", s.read("m"))["step"] == 2
    files = sorted(p.name for p in s.path("m").iterdir() if not p.name.startswith("."))
    assert len(files) == 3 and "meta.json" in files  # old resume file removed


def test_first_save_needs_weights_and_leaves_no_folder_when_it_fails(home):
    s = Store(home)
    ck, _ = factories.checkpoint("m")
    with pytest.raises(StoreError, match="needs weights"):
        s.save("m", ck, None)
    assert not s.exists("m") and s.list() == []
    assert not [p for p in s.root.iterdir() if p.name.startswith(".new-")]


def test_damaged_entries_are_listed_with_a_reason_and_do_not_break_others(home):
    s = Store(home)
    for n in ("good", "badjson", "nofile", "garbage", "shape"):
        factories.save(s, n)
    (s.path("badjson") / "meta.json").write_text("{not json")
    w = s.read("nofile").files.weights
    (s.path("nofile") / w).unlink()
    g = s.read("garbage").files.weights
    (s.path("garbage") / g).write_bytes(b"\x00garbage" * 10)
    meta = json.loads((s.path("shape") / "meta.json").read_text())
    meta["model"]["hidden"] = 10 ** 4  # the weights file's header says otherwise: nothing is allocated
    (s.path("shape") / "meta.json").write_text(json.dumps(meta))
    (s.root / "empty").mkdir()
    entries = {e.name: e for e in s.list()}
    assert entries["good"].ok
    assert not entries["badjson"].ok and "not valid JSON" in entries["badjson"].reason
    assert not entries["nofile"].ok and "missing" in entries["nofile"].reason
    assert not entries["garbage"].ok and "unreadable" in entries["garbage"].reason
    assert not entries["shape"].ok and "shape" in entries["shape"].reason
    assert not entries["empty"].ok and "meta.json is missing" in entries["empty"].reason
    with pytest.raises(StoreError, match="damaged"):
        s.load_weights("garbage")


@pytest.mark.parametrize("bad", ["..", "../x", "a/b", "/etc", "a\\b", ".hidden", "-x", "", "a" * 65, "a..b", "x\x00"])
def test_bad_names_are_refused(home, bad):
    with pytest.raises(StoreError, match="invalid model name"):
        validate_name(bad)
    with pytest.raises(StoreError):
        Store(home).path(bad)


def test_rename_and_delete(home):
    s = Store(home)
    factories.save(s, "a")
    factories.save(s, "b")
    with pytest.raises(StoreError, match="exists already"):
        s.rename("a", "b")
    s.rename("a", "c")
    assert s.read("c").name == "c" and not s.exists("a")
    assert json.loads((s.path("c") / "meta.json").read_text())["name"] == "c"
    s.delete("c")
    assert [e.name for e in s.list()] == ["b"]
    with pytest.raises(StoreError, match="no model named"):
        s.delete("c")
    with pytest.raises(StoreError, match="no model named 'zz'"):
        s.read("zz")


def test_lock_is_exclusive_and_taken_before_the_folder_exists(home):
    s = Store(home)
    with s.lock("m"):
        assert not s.exists("m")  # the lock lives apart from the model folder
        with pytest.raises(StoreError, match="in use by another"):
            with s.lock("m"):
                pass
    with s.lock("m"):
        pass


def test_the_lock_file_is_never_opened_through_a_symbolic_link(home, tmp_path):
    s = Store(home)
    (s.root / ".locks").mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    (s.root / ".locks" / "m.lock").symlink_to(outside)
    with pytest.raises(StoreError, match="cannot lock"):
        with s.lock("m"):
            pass
    assert not outside.exists()


def test_models_cli_lists_json_and_removes(home, capsys):
    from lmcore.cli.main import main

    s = Store(home)
    factories.save(s, "good")
    (s.root / "broken").mkdir()
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["good"]["ok"] and rows["good"]["params"] == s.read("good").params
    assert not rows["broken"]["ok"] and "missing" in rows["broken"]["reason"]
    assert main(["models", "rm", "good"]) == 0
    assert main(["models", "rm", "good"]) == 1
    assert "no model named 'good'" in capsys.readouterr().err
    assert main(["models", "rm", "../x"]) == 1


def test_weights_saved_from_a_compiled_model_load_without_the_prefix(home):
    """torch.compile wraps the module and prefixes parameter names with ``_orig_mod.``."""
    from lmcore.models import build_model

    ck, state = factories.checkpoint("c")
    s = Store(home)
    s.save("c", ck, {f"_orig_mod.{k}": v for k, v in state.items()})
    back = s.load_weights("c")
    fresh = build_model(ck.model)
    fresh.load_state_dict(back)  # strict: every name matches
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())
