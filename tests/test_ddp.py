"""Training one model on several processes: ``torchrun -m lmcore train`` with DistributedDataParallel (gloo
on the CPU, two processes). Each test starts a real torchrun; the single-process runs they are compared with
run here, in this process, through the same command line."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from lmcore.cli.main import main
from lmcore.data.batching import BatchStream
from lmcore.errors import ConfigError
from lmcore.store.model_store import Store

from .waiting import DEADLINE


def _gloo() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_gloo_available()


needs_gloo = pytest.mark.skipif(not _gloo(), reason="torch.distributed with gloo is not available in this PyTorch")

TINY = ["--preset", "tiny", "--batch", "4", "--seq-len", "16", "--device", "cpu", "--eval-tokens", "400"]


@pytest.fixture
def text(tmp_path, prose_text) -> Path:
    p = tmp_path / "text.txt"
    p.write_text(prose_text[:20_000], "utf-8")
    return p


def _env(home: Path) -> dict:
    return dict(os.environ, LMPLAY_HOME=str(home), OMP_NUM_THREADS="1")


def _torchrun(*args: str, n: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={n}", "-m", "lmcore",
            *args]


def _run_ranks(home: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(_torchrun(*args), env=_env(home), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _run_one(home: Path, capsys, *args: str) -> list[dict]:
    """One process, here: the events of ``lmcore --home HOME … --json``."""
    capsys.readouterr()
    assert main(["--home", str(home), *args, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _latest(home: Path) -> tuple[dict, dict]:
    """The latest weights and the resume state of model m."""
    store = Store(home)
    rs = store.load_resume("m", store.read("m"))
    return rs["model"], rs


def _assert_close(a: dict, b: dict, atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=0, msg=lambda m: f"{k}: {m}")


def test_each_rank_reads_its_rows_of_the_global_batch():
    ids = torch.arange(6_000) % 97
    for sampling in ("random", "sequential"):
        whole = BatchStream(ids, 4, 8, sampling, seed=3).iterate(7)
        parts = [BatchStream(ids, 4, 8, sampling, seed=3, rank=r, world=2).iterate(7) for r in range(2)]
        for _ in range(3):
            x, y, new = next(whole)
            mine = [next(p) for p in parts]
            assert torch.equal(torch.cat([m[0] for m in mine]), x)
            assert torch.equal(torch.cat([m[1] for m in mine]), y)
    with pytest.raises(ConfigError, match="use a --batch divisible by 2"):
        BatchStream(ids, 5, 8, "random", rank=0, world=2)


@needs_gloo
def test_one_step_on_two_processes_equals_one_process_on_the_whole_batch(tmp_path, text, capsys):
    """Each rank trains on 2 of the 4 rows; DDP averages the gradients: the same step as one process. (SGD:
    AdamW's first step, lr * g / (|g| + eps), turns the last bit of a near-zero gradient into a visible one.)"""
    args = ["train", "m", "--arch", "transformer", *TINY, "--corpus", str(text), "--steps", "1", "--optimizer", "sgd",
            "--lr", "1"]
    _run_ranks(tmp_path / "two", *args)
    _run_one(tmp_path / "one", capsys, *args)
    (two, _), (one, _) = _latest(tmp_path / "two"), _latest(tmp_path / "one")
    _assert_close(two, one, atol=1e-5)
    assert Store(tmp_path / "two").read("m").device.startswith("2 x cpu")


@needs_gloo
def test_a_run_continues_on_another_number_of_processes(tmp_path, text, capsys):
    """An LSTM carries its state between batches: the saved state holds every rank's rows, so 2 steps on
    two processes then 2 on one, or 2 on one then 2 on two, give what 2 + 2 on one process give."""
    args = ["train", "m", "--arch", "lstm", *TINY, "--corpus", str(text), "--steps", "2"]
    _run_ranks(tmp_path / "two_one", *args)
    _run_one(tmp_path / "one_one", capsys, *args)
    shutil.copytree(tmp_path / "one_one", tmp_path / "one_two")

    (two, rs_two), (one, rs_one) = _latest(tmp_path / "two_one"), _latest(tmp_path / "one_one")
    _assert_close(two, one, atol=1e-5)
    assert rs_two["step"] == rs_one["step"] == 2
    assert rs_two["carry"][0].shape == (1, 4, 64)  # (layers, the whole batch, hidden)
    for a, b in zip(rs_two["carry"], rs_one["carry"]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)

    more = ["train", "m", "--resume", "--steps", "2"]
    events = _run_one(tmp_path / "two_one", capsys, *more)
    assert events[0]["event"] == "start" and events[0]["step"] == 2
    assert events[-1]["step"] == 4 and events[-1]["ok"]
    _run_one(tmp_path / "one_one", capsys, *more)
    out = _run_ranks(tmp_path / "one_two", *more, "--json").stdout
    assert [json.loads(line)["step"] for line in out.splitlines() if '"summary"' in line] == [4]

    ref, _ = _latest(tmp_path / "one_one")
    for home in ("two_one", "one_two"):
        got, rs = _latest(tmp_path / home)
        assert rs["step"] == 4
        _assert_close(got, ref, atol=1e-4)


@needs_gloo
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_torchrun_stops_every_process_and_saves_once(tmp_path, text, capsys, sig):
    home = tmp_path / "home"
    err = (tmp_path / "stderr.txt").open("w+")
    cmd = _torchrun("train", "m", "--arch", "lstm", *TINY, "--corpus", str(text), "--steps", "100000",
                    "--eval-every", "100000", "--json")
    proc = subprocess.Popen(cmd, env=_env(home), stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        lines = []
        for line in proc.stdout:  # until rank 0 reports its first steps
            lines.append(line)
            if '"event": "step"' in line:
                break
        assert lines and '"event": "step"' in lines[-1], (lines, err.seek(0), err.read()[-3000:])
        proc.send_signal(sig)
        rest: list[str] = []
        reader = threading.Thread(target=lambda: rest.extend(proc.stdout), daemon=True)
        reader.start()
        proc.wait(timeout=DEADLINE)  # every process ends: a hang fails here, a slow machine does not
        reader.join(DEADLINE)
        lines += rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err.seek(0)
    stderr = err.read()
    events = [json.loads(line) for line in lines]
    evals = [e for e in events if e["event"] == "eval"]
    done = [e for e in events if e["event"] == "done"]
    assert len(evals) == 1, stderr[-3000:]  # the one save, at the step every process stopped at
    assert done and done[0]["reason"] == "stopped" and done[0]["saved"] and done[0]["step"] == evals[0]["step"] > 0
    assert stderr.count("stopping after this step and saving") == 1  # rank 0 says it; rank 1 is quiet
    store = Store(home)
    ck = store.read("m")
    assert ck.step == done[0]["step"]
    assert len(list(store.path("m").glob("resume-*"))) == 1
    assert not store.is_locked("m")

    after = _run_one(home, capsys, "train", "m", "--resume", "--steps", "2")
    assert after[0]["event"] == "start" and after[0]["step"] == ck.step
    assert after[-1]["ok"] and after[-1]["step"] == ck.step + 2


@needs_gloo
def test_a_batch_that_does_not_split_is_one_clear_line(tmp_path, text):
    proc = subprocess.run(_torchrun("train", "m", "--arch", "lstm", *TINY, "--batch", "5", "--corpus", str(text),
                                    "--steps", "2"),
                          env=_env(tmp_path / "home"), capture_output=True, text=True, timeout=180)
    assert proc.returncode != 0
    msg = "the batch of 5 rows cannot be split evenly across 2 processes: use a --batch divisible by 2"
    assert proc.stderr.count(msg) == 1  # rank 0 says it; rank 1 stops without repeating it
    assert f"{os.sep}lmcore{os.sep}" not in proc.stderr  # no traceback of ours (torchrun adds its own report)
    assert not Store(tmp_path / "home").exists("m")
