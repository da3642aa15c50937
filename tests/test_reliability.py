"""Faults and hostile input: kills, damage, locks, full disks, Ctrl+C, malicious pickles."""
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lmcore
from lmcore.data import corpus
from lmcore.errors import CorpusError, StoreError
from lmcore.store.model_store import Store

from .waiting import DEADLINE

ROOT = Path(__file__).resolve().parents[1]

WRITER = r"""
import sys, torch
from lmcore.store.model_store import Store
from tests import factories
store = Store(sys.argv[1])
step = int(sys.argv[2])
ck, state = factories.checkpoint("m", "lstm", hidden=256)  # ~1 MB of weights
print("ready", flush=True)
while True:
    step += 1
    ck.step = step
    state = {k: torch.full_like(v, float(step)) for k, v in state.items()}  # every value = the step
    store.save("m", ck, state, resume={"step": step, "model": {}})
    print("saved", flush=True)
"""


def test_sigkill_during_checkpoint_writes_never_leaves_the_store_unreadable(tmp_path):
    home = tmp_path / "home"
    rng = random.Random(0)
    step = 0
    for _ in range(12):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(home), str(step)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        for _ in range(rng.randint(1, 4)):  # writes are back to back: the kill lands in the next one
            assert p.stdout.readline().strip() == "saved"
        p.send_signal(signal.SIGKILL)
        p.wait()
        store = Store(home)
        if not store.exists("m"):
            continue
        entry = store.check("m")
        assert entry.ok, entry.reason
        ck = store.read("m")
        assert all(torch.all(w == ck.step) for w in store.load_weights("m", ck).values())  # they belong together
        assert store.load_resume("m", ck)["step"] == ck.step
        step = ck.step
    assert step > 0


def test_sigkill_of_a_real_training_run_then_resume(home, tm_slice):
    """`lmcore train` saving at every step (--eval-every 1) is killed after a random number of saves, so
    mid-way through the next one; each time the model loads and training resumes from its last good
    checkpoint."""
    rng = random.Random(1)
    args = [sys.executable, "-m", "lmcore", "train", "k", "--arch", "gru", "--preset", "tiny",
            "--corpus", str(tm_slice), "--steps", "100000", "--eval-every", "1", "--json"]
    last = 0
    for i in range(4):
        p = subprocess.Popen(args + (["--resume"] if i else []), cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        evals = rng.randint(1, 4)  # saves are back to back (--eval-every 1): the kill lands in one
        for line in p.stdout:
            evals -= json.loads(line)["event"] == "eval"
            if not evals:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        s = Store()
        assert s.check("k").ok, s.check("k").reason
        ck = s.read("k")
        assert ck.step >= last and s.load_resume("k", ck)["step"] == ck.step
        last = ck.step
        assert lmcore.Generator.from_store(s, "k").complete("The", lmcore.SamplingSettings(max_tokens=3, seed=0))
    assert last > 0


def test_truncated_weights_are_listed_as_damaged_and_others_unaffected(home, tm_slice):
    lmcore.train("a", arch="ngram", preset="tiny", corpus=str(tm_slice))
    lmcore.train("b", arch="ngram", preset="tiny", corpus=str(tm_slice))
    s = Store()
    w = s.path("a") / s.read("a").files.weights
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    entries = {e.name: e for e in s.list()}
    assert not entries["a"].ok and "unreadable" in entries["a"].reason and entries["b"].ok
    with pytest.raises(StoreError, match="damaged"):
        lmcore.Generator.from_store(s, "a")
    assert lmcore.Generator.from_store(s, "b").complete("The", lmcore.SamplingSettings(max_tokens=3, seed=0))


def test_a_second_trainer_on_the_same_model_is_refused(home, tm_slice):
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(tm_slice), steps=5)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from lmcore.store.model_store import Store\n"
         "with Store(sys.argv[1]).lock('m'):\n    print('locked', flush=True); sys.stdin.read()", str(home)],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # held until the test ends it
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="in use by another lmplay process"):
            lmcore.train("m", resume=True, steps=10)
        with pytest.raises(StoreError, match="in use"):
            Store().delete("m")
    finally:
        holder.kill()
        holder.wait()
    assert lmcore.train("m", resume=True, steps=5).step == 10


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(home, tm_slice, monkeypatch):
    lmcore.train("m", arch="gru", preset="tiny", corpus=str(tm_slice), steps=10, eval_every=10)
    good = Store().read("m")
    import errno

    from safetensors import torch as st

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as mp:
        mp.setattr(st, "save_file", full)
        mp.setattr(torch, "save", full)
        r = lmcore.train("m", resume=True, steps=30, eval_every=5)
    assert r.kind == "failed" and "No space left on device" in r.message and "--resume" in r.message
    ck = Store().read("m")
    assert ck.step == good.step == 10 and Store().check("m").ok
    assert not [p for p in Store().path("m").iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_saves_and_exits_cleanly_then_resumes(home, tm_slice):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "lmcore", "train", "c", "--arch", "lstm", "--preset", "tiny",
                          "--corpus", str(tm_slice), "--steps", "100000", "--json"],
                         cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if json.loads(line)["event"] == "step":
            break
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=DEADLINE)
    assert p.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["event"] == "summary" and summary["reason"] == "stopped"
    assert "stopping after this step" in err and "Traceback" not in err
    step = Store().read("c").step
    assert step == summary["step"] > 0
    assert lmcore.train("c", resume=True, steps=5).step == step + 5  # 5 more


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['EVIL_MARKER']}",))


def test_malicious_pickles_are_never_executed(home, tm_slice, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(tm_slice), steps=5)
    s = Store()
    ck = s.read("m")
    import pickle

    evil = pickle.dumps({"step": 1, "payload": _Evil()})
    (s.path("m") / ck.files.resume).write_bytes(evil)
    with pytest.raises(StoreError, match="unreadable or unsafe"):
        s.load_resume("m", ck)
    with pytest.raises(StoreError):
        lmcore.train("m", resume=True, steps=10)
    # a weights file replaced by a pickle is refused too: safetensors never unpickles
    (s.path("m") / ck.files.weights).write_bytes(evil)
    assert not s.check("m").ok
    with pytest.raises(StoreError, match="damaged"):
        lmcore.Generator.from_store(s, "m")
    assert not marker.exists()


def test_corpus_names_cannot_escape_the_cache(home):
    for bad in ("../x", "/etc/passwd-corpus", "..", "a/../../b"):
        with pytest.raises(CorpusError, match="unknown corpus"):
            corpus.fetch(bad, home)
    assert not (home / "x.txt").exists()


def test_transformer_sequence_longer_than_its_context_is_refused(tm_slice, capsys):
    from lmcore.cli.main import main

    assert main(["train", "t", "--arch", "transformer", "--preset", "tiny", "--corpus", str(tm_slice),
                 "--seq-len", "64"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "larger than the transformer's context (32)" in err[0]


def test_a_large_corpus_is_encoded_with_bounded_python_memory(tmp_path):
    """A 24 MB file: Python-side memory stays a small multiple of the text (a list of one-character
    strings would need 8 bytes per character for the pointers alone, more than 8x the file)."""
    import tracemalloc

    from lmcore.data.text import Tokenizer, build_vocab, encode

    line = "The Time Traveller (for so it will be convenient to speak of him) was expounding.\n"
    path = tmp_path / "big.txt"
    path.write_text(line * (24_000_000 // len(line)), "utf-8")
    size = path.stat().st_size
    tracemalloc.start()
    try:
        c = lmcore.load_corpus(str(path))
        tok = Tokenizer("char", "raw")
        text = tok.preprocess(c.text)
        vocab = build_vocab(text, tok)
        ids = encode(text, tok, vocab)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ids) == size and ids.dtype == torch.uint8
    assert peak < 5 * size, f"peak Python memory {peak / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
