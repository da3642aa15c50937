"""The instant command line: `lmcore --version`, `--help`, `models` (also --json), `corpora` and
`models show` read files and print them without importing torch, numpy, safetensors or tokenizers (the
start-up figures are `lmcore bench --startup`'s, not a test's); `import lmcore` is cheap and keeps its
whole API; the torch-free readers (a model's tensor shapes from its config, a safetensors header) agree
with torch and with the safetensors library."""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings, strategies as st

import lmcore
from lmcore import Store
from lmcore.models import ARCHS, build_model, family, preset_config
from lmcore.store.safetensors_header import HeaderError, read as read_header

from . import factories

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "safetensors", "tokenizers", "requests", "textual")

# runs lmcore's command line as the `lmcore` command does, then writes which heavy modules it loaded
PROBE = """
import json, os, runpy, sys
sys.argv = ["lmcore", *sys.argv[1:]]
try:
    runpy.run_module("lmcore", run_name="__main__", alter_sys=True)
    code = 0
except SystemExit as exc:
    code = exc.code
finally:
    with open(os.environ["PROBE_OUT"], "w") as f:
        json.dump(sorted(m for m in json.loads(os.environ["PROBE_HEAVY"]) if m in sys.modules), f)
sys.exit(code)
"""


def probe(tmp_path: Path, home: Path, *argv: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    out = tmp_path / "loaded.json"
    env = dict(os.environ, LMPLAY_HOME=str(home), PROBE_OUT=str(out), PROBE_HEAVY=json.dumps(HEAVY), COLUMNS="100")
    r = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL)
    return r, json.loads(out.read_text())


@pytest.fixture(scope="module")
def store_home(tmp_path_factory) -> Path:
    """A tiny LSTM, a tiny n-gram, a model whose meta.json is cut short, and one whose config does not fit
    its weights file (hidden 10,000 in meta.json)."""
    home = tmp_path_factory.mktemp("startup") / "home"
    store = Store(home)
    factories.save(store, "tiny", "lstm")
    ck, _ = factories.checkpoint("counts", "ngram")
    store.save("counts", ck, build_model(ck.model).state_dict())
    factories.save(store, "wrong-shape", "gru")
    meta = json.loads((store.path("wrong-shape") / "meta.json").read_text("utf-8"))
    meta["model"]["hidden"] = 10_000
    (store.path("wrong-shape") / "meta.json").write_text(json.dumps(meta), "utf-8")
    (store.root / "cut").mkdir()
    (store.root / "cut" / "meta.json").write_text('{"name": "cu', "utf-8")
    return home


def test_version_is_the_installed_distributions_and_loads_nothing_heavy(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "--version")
    assert r.returncode == 0 and r.stdout == f"lmplay {importlib.metadata.version('lmplay')}\n"
    assert lmcore.__version__ == importlib.metadata.version("lmplay")
    assert loaded == []


def test_help_loads_nothing_heavy(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "--help")
    assert r.returncode == 0 and "Train small language models" in r.stdout
    assert all(c in r.stdout for c in ("corpora", "models", "train", "generate", "export", "bench"))
    assert loaded == []


def test_models_lists_usable_and_damaged_models_without_torch(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "models")
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.strip()}
    assert "lstm/fused" in rows["tiny"] and "ngram" in rows["counts"]
    assert "damaged" in rows["cut"] and "damaged" in rows["wrong-shape"]
    assert loaded == []


def test_models_json_says_which_are_damaged_and_why_without_torch(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "models", "--json")
    assert r.returncode == 0, r.stderr
    entries = {e["name"]: e for e in map(json.loads, r.stdout.splitlines())}
    assert set(entries) == {"tiny", "counts", "cut", "wrong-shape"}
    assert entries["tiny"]["ok"] and entries["tiny"]["arch"] == "lstm" and entries["tiny"]["params"] > 0
    assert entries["counts"]["ok"] and entries["counts"]["arch"] == "ngram"
    assert not entries["cut"]["ok"] and "meta.json" in entries["cut"]["reason"]
    assert not entries["wrong-shape"]["ok"] and "shape" in entries["wrong-shape"]["reason"]
    assert loaded == []


def test_corpora_lists_the_registry_without_torch(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "corpora")
    assert r.returncode == 0, r.stderr
    assert all(name in r.stdout for name in ("pythondocs", "timemachine", "tinyshakespeare"))
    assert loaded == []


def test_models_show_prints_a_models_metadata_without_torch(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "models", "show", "tiny")
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())
    assert fields["arch"] == "lstm" and fields["preset"] == "tiny"
    assert loaded == []
    r, loaded = probe(tmp_path, store_home, "models", "show", "tiny", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["model"]["arch"] == "lstm"
    assert loaded == []


def test_models_show_of_a_damaged_model_is_one_line_without_torch(tmp_path, store_home):
    r, loaded = probe(tmp_path, store_home, "models", "show", "wrong-shape")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("error: model 'wrong-shape' is damaged") and len(r.stderr.splitlines()) == 1
    assert loaded == []


# ---------------------------------------------------------------- import lmcore

def test_import_lmcore_is_cheap_and_keeps_its_whole_api(tmp_path):
    code = """
import json, sys
import lmcore
cheap = "torch" not in sys.modules and "numpy" not in sys.modules
listed = set(lmcore.__all__) <= set(dir(lmcore))
from lmcore.training.trainer import Trainer  # the submodule named like the function: lmcore.train stays the function
train_is_function = callable(lmcore.train) and lmcore.train.__module__ == "lmcore.training.trainer"
from lmcore import *
star = all(name in globals() for name in lmcore.__all__)
print(json.dumps([cheap, listed, train_is_function, star, lmcore.Trainer is Trainer]))
"""
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [True, True, True, True, True]
    with pytest.raises(AttributeError, match="no attribute 'nothing_like_this'"):
        lmcore.nothing_like_this  # noqa: B018


# ---------------------------------------------------------------- the torch-free readers agree with torch

VARIANTS = [{}, {"num_layers": 1}, {"num_layers": 3, "hidden": 24}]
RECURRENT_VARIANTS = [{"impl": "scratch"}, {"bidirectional": True, "num_layers": 2}, {"input": "onehot"},
                      {"embed": 0}, {"embed": 8, "hidden": 12}, {"impl": "scratch", "bidirectional": True}]
TRANSFORMER_VARIANTS = [{"pos": "rotary"}, {"pos": "learned", "context": 7}, {"tie_weights": False},
                        {"heads": 1, "hidden": 8}]


@pytest.mark.parametrize("arch,overrides", [(a, v) for a in ARCHS for v in VARIANTS
                                            if set(v) <= set(family(a).option_names())]
                         + [(a, v) for a in ("rnn", "gru", "lstm") for v in RECURRENT_VARIANTS]
                         + [("transformer", v) for v in TRANSFORMER_VARIANTS]
                         + [("ngram", {"order": 1}), ("ngram", {"order": 5})])
def test_shapes_from_the_config_are_the_built_models(arch, overrides):
    config = preset_config(arch, "tiny", vocab_size=11, **overrides)
    with torch.device("meta"):
        built = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    assert config.family.shapes(config) == built


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> bytes:
    """A real weights file of the store (a transformer: its tied weights are saved as an alias)."""
    home = tmp_path_factory.mktemp("weights") / "home"
    ck = factories.save(Store(home), "t", "transformer")
    return (Store(home).path("t") / ck.files.weights).read_bytes()


def library_reads(path: Path):
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, f.metadata() or {}
    except Exception:  # noqa: BLE001 - any refusal
        return None


def ours(path: Path):
    try:
        with open(path, "rb") as f:
            return read_header(f)
    except HeaderError:
        return None


def test_header_reader_reads_what_the_library_reads(weights_file, tmp_path):
    p = tmp_path / "w.safetensors"
    p.write_bytes(weights_file)
    got = ours(p)
    assert got is not None and got == library_reads(p)
    assert got[1]["aliases"] == json.dumps({"lm_head.weight": "wte.weight"})


@settings(max_examples=150)
@given(data=st.data())
def test_header_reader_refuses_what_the_library_refuses(weights_file, tmp_path_factory, data):
    """Damage anywhere in the header (or its length, or the file's length): both read it, or neither."""
    n = int.from_bytes(weights_file[:8], "little")
    raw = bytearray(weights_file)
    kind = data.draw(st.sampled_from(["byte", "cut", "grow", "header"]), label="kind")
    if kind == "byte":
        i = data.draw(st.integers(0, 8 + n - 1), label="at")
        raw[i] = data.draw(st.integers(0, 255), label="value")
    elif kind == "cut":
        del raw[data.draw(st.integers(0, len(raw) - 1), label="keep"):]
    elif kind == "grow":
        raw += bytes(data.draw(st.integers(1, 16), label="more"))
    else:  # a JSON edit that stays valid JSON
        header = json.loads(raw[8:8 + n])
        name = data.draw(st.sampled_from(sorted(header)), label="entry")
        field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra"]), label="field")
        value = data.draw(st.one_of(st.sampled_from(["F32", "F16", "I64", "BOOL", "F4", "XX"]),
                                    st.lists(st.integers(-2, 70000), max_size=3), st.none(),
                                    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)),
                          label="value")
        if name == "__metadata__" or field == "extra":
            header[name] = value
        else:
            header[name][field] = value
        text = json.dumps(header).encode("utf-8")
        raw = bytearray(len(text).to_bytes(8, "little") + text + raw[8 + n:])
    p = tmp_path_factory.mktemp("damaged") / "w.safetensors"
    p.write_bytes(bytes(raw))
    assert ours(p) == library_reads(p)


# ---------------------------------------------------------------- lmplay

APP_PROBE = """
import asyncio, json, os, sys, threading

seen = {}


class Watch:  # notes the app's state when torch starts to load
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "torch" not in seen:
            app = globals().get("app")
            picker = app is not None and type(app.screen).__name__ == "PickerScreen"
            seen["torch"] = {"picker_drawn": picker and app.screen.query_one("DataTable").row_count > 0,
                             "main_thread": threading.current_thread() is threading.main_thread()}
        return None


sys.meta_path.insert(0, Watch())
from tui.app import create_app


async def main():
    global app
    app = create_app(os.environ["LMPLAY_HOME"])
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(6000):  # until the picker shows the models, then until torch is loaded
            if "torch" in sys.modules and "torch" in seen:
                break
            await asyncio.sleep(0.01)
        seen["rows"] = sorted(str(k.value) for k in app.screen.query_one("DataTable").rows)
        await app.quit_and_wait()


asyncio.run(main())
print(json.dumps(seen))
"""


def test_lmplay_draws_its_picker_before_loading_torch_then_loads_it_in_a_thread(store_home):
    env = dict(os.environ, LMPLAY_HOME=str(store_home))
    r = subprocess.run([sys.executable, "-c", APP_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    seen = json.loads(r.stdout.splitlines()[-1])
    assert seen["rows"] == ["counts", "cut", "tiny", "wrong-shape"]
    assert seen["torch"] == {"picker_drawn": True, "main_thread": False}


# ---------------------------------------------------------------- the benchmark (its figures are not checked)

def test_bench_startup_reports_each_command_and_the_picker(tmp_path):
    pytest.importorskip("pty")
    r = subprocess.run([sys.executable, "-m", "lmcore", "bench", "--startup", "--runs", "1", "--json"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    assert out["runs"] == 1 and list(out["commands"]) == [
        "lmcore --version", "lmcore --help", "lmcore models", "lmcore models --json", "lmcore corpora",
        "lmcore models show bench-tiny", "lmplay (to the picker)"]
    assert all(0 < v["min_s"] <= v["median_s"] <= v["max_s"] for v in out["commands"].values())
    r = subprocess.run([sys.executable, "-m", "lmcore", "bench", "--startup", "--runs", "0"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr == "error: --runs must be at least 1 (got 0)\n"
