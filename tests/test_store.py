import json

import pytest
import torch

from lmcore.errors import StoreError
from lmcore.store import Store, validate_name


def _meta(step=1):
    return {"model": {"arch": "lstm"}, "files": {}, "step": step, "corpus": {"name": "x", "sha1": "0" * 40},
            "history": [{"step": step, "val_loss": 1.5}]}


def test_round_trip_metadata_tensors_and_tied_weights(home):
    s = Store(home)
    emb = torch.randn(5, 3)
    state = {"a": torch.arange(6, dtype=torch.float32).view(2, 3), "emb": emb, "head": emb, "b": torch.tensor([1.5])}
    s.save("m1", _meta(), state, resume={"step": 1, "optim": {"lr": 0.1}, "rng": torch.get_rng_state()})
    meta = s.read_meta("m1")
    assert meta["name"] == "m1" and meta["history"] == [{"step": 1, "val_loss": 1.5}]
    assert meta["created"] and meta["updated"] and meta["format"] == 1
    back = s.load_weights("m1")
    assert set(back) == set(state)
    for k in state:
        assert torch.equal(back[k], state[k])
    assert s.load_resume("m1")["optim"] == {"lr": 0.1}
    assert [e.name for e in s.list()] == ["m1"] and s.list()[0].ok


def test_save_replaces_files_and_keeps_best_weights(home):
    s = Store(home)
    s.save("m", _meta(1), {"w": torch.ones(2)}, resume={"step": 1})
    s.save("m", _meta(2), None, resume={"step": 2}, keep_weights=True)
    assert torch.equal(s.load_weights("m")["w"], torch.ones(2))
    assert s.load_resume("m")["step"] == 2
    files = sorted(p.name for p in s.path("m").iterdir() if not p.name.startswith("."))
    assert len(files) == 3 and "meta.json" in files  # old resume file removed


def test_damaged_entries_are_listed_with_a_reason_and_do_not_break_others(home):
    s = Store(home)
    for n in ("good", "badjson", "nofile", "garbage"):
        s.save(n, _meta(), {"w": torch.ones(2)})
    (s.path("badjson") / "meta.json").write_text("{not json")
    w = s.read_meta("nofile")["files"]["weights"]
    (s.path("nofile") / w).unlink()
    g = s.read_meta("garbage")["files"]["weights"]
    (s.path("garbage") / g).write_bytes(b"\x00garbage" * 10)
    (s.root / "empty").mkdir()
    entries = {e.name: e for e in s.list()}
    assert entries["good"].ok
    assert not entries["badjson"].ok and "not valid JSON" in entries["badjson"].reason
    assert not entries["nofile"].ok and "missing" in entries["nofile"].reason
    assert not entries["garbage"].ok and "unreadable" in entries["garbage"].reason
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
    s.save("a", _meta(), {"w": torch.ones(1)})
    s.save("b", _meta(), {"w": torch.ones(1)})
    with pytest.raises(StoreError, match="exists already"):
        s.rename("a", "b")
    s.rename("a", "c")
    assert s.read_meta("c")["name"] == "c" and not s.exists("a")
    s.delete("c")
    assert [e.name for e in s.list()] == ["b"]
    with pytest.raises(StoreError, match="no model named"):
        s.delete("c")
    with pytest.raises(StoreError, match="no model named 'zz'"):
        s.read_meta("zz")


def test_lock_is_exclusive(home):
    s = Store(home)
    with s.lock("m"):
        with pytest.raises(StoreError, match="in use by another"):
            with s.lock("m"):
                pass
    with s.lock("m"):
        pass


def test_models_cli_lists_json_and_removes(home, capsys):
    from lmcore.cli import main

    s = Store(home)
    s.save("good", dict(_meta(), params=10), {"w": torch.ones(2)})
    (s.root / "broken").mkdir()
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows["good"]["ok"] and rows["good"]["params"] == 10
    assert not rows["broken"]["ok"] and "missing" in rows["broken"]["reason"]
    assert main(["models", "rm", "good"]) == 0
    assert main(["models", "rm", "good"]) == 1
    assert "no model named 'good'" in capsys.readouterr().err
    assert main(["models", "rm", "../x"]) == 1


def test_weights_saved_from_a_compiled_model_load_without_the_prefix(home):
    """torch.compile wraps the module and prefixes parameter names with ``_orig_mod.``."""
    from lmcore.models import build_model, preset_config

    model = build_model(preset_config("lstm", "tiny", vocab_size=9))
    state = {f"_orig_mod.{k}": v for k, v in model.state_dict().items()}
    s = Store(home)
    s.save("c", {"model": {"arch": "lstm"}, "files": {}}, state)
    back = s.load_weights("c")
    fresh = build_model(preset_config("lstm", "tiny", vocab_size=9))
    fresh.load_state_dict(back)  # strict: every name matches
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in model.state_dict().items())
