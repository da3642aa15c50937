"""One owner per run, continue that continues, failed starts that leave nothing, faults and hostile
values: every case through the real ``lmcore`` entry point (in-process ``main`` or a real process)."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lmcore
from lmcore.cli.main import main
from lmcore.store.model_store import Store

from .waiting import DEADLINE, until

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "lstm", "--preset", "tiny"]


def _strict(line: str):
    def no_constants(c):
        raise AssertionError(f"not strict JSON: {c}")

    return json.loads(line, parse_constant=no_constants)


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return rc, out, err


def _one_line_error(capsys, *argv, match: str) -> str:
    rc, out, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc != 0 and len(lines) == 1 and match in lines[0], (rc, err)
    return lines[0]


def _proc(*argv, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "lmcore", *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_event(p, kind: str) -> dict:
    for line in p.stdout:
        ev = _strict(line)
        if ev["event"] == kind:
            return ev
    raise AssertionError(f"no {kind} event: {p.stderr.read()}")


# ---------------------------------------------------------------------------- one owner per run
def test_a_second_process_on_the_same_name_is_refused_and_touches_nothing(prose, capsys):
    p = _proc("train", "same", "--arch", "gru", "--preset", "tiny", "--corpus", str(prose), "--steps", "100000",
              "--eval-every", "5", "--json")
    try:
        _wait_for_event(p, "eval")
        # a new model of that name, and a continue prepared while it trains: both refused at once
        _one_line_error(capsys, "train", "same", "--arch", "ngram", "--corpus", str(prose), match="in use")
        _one_line_error(capsys, "train", "same", "--resume", "--steps", "5", match="in use")
        _one_line_error(capsys, "models", "rm", "same", match="in use")
        _one_line_error(capsys, "models", "rename", "same", "other", match="in use")
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=DEADLINE)
    assert p.returncode == 0, err
    ck = Store().read("same")
    assert ck.model.arch == "gru" and ck.step == _strict(out.splitlines()[-1])["step"]
    _one_line_error(capsys, "train", "same", "--arch", "ngram", "--corpus", str(prose), match="exists already")
    assert Store().read("same").model.arch == "gru"


def test_nothing_appears_in_the_store_before_the_first_checkpoint(prose):
    seen = []

    def on_event(e):
        if e.kind in ("start", "step"):
            seen.append(Store().exists("n"))

    lmcore.train("n", arch="lstm", preset="tiny", corpus=str(prose), steps=8, eval_every=8, log_every=1,
                 on_event=on_event)
    assert seen and not any(seen) and Store().check("n").ok


@pytest.mark.parametrize("argv, match", [
    (["--corpus", "TINYFILE"], "too few for one batch"),
    (["--corpus", "PROSE", "--seq-len", "100000"], "too few for one batch"),
    (["--corpus", "PROSE", "--embed", "-5"], "embed must be between 0"),
    (["--corpus", "PROSE", "--arch", "ngram", "--order", "40"], "order must be between 1 and 10"),
    (["--corpus", "PROSE", "--eval-every", "0"], "eval-every must be at least 1"),
    (["--corpus", "PROSE", "--seed", "-1"], "seed must be between 0"),
    (["--corpus", "PROSE", "--lr", "inf"], "learning rate"),
    (["--corpus", "PROSE", "--minutes", "nan"], "minutes"),
    (["--corpus", "PROSE", "--arch", "transformer", "--bidirectional"], "--bidirectional applies to"),
    (["--corpus", "PROSE", "--arch", "ngram", "--bidirectional"], "--bidirectional applies to"),
    (["--corpus", "/dev/zero"], "not a regular file"),
    (["--corpus", "PROSE", "--device", "nosuch"], "unknown device"),
])
def test_a_failed_start_is_one_line_and_leaves_no_folder(prose, tmp_path, capsys, argv, match):
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("tiny text " * 30)
    argv = [str(prose) if a == "PROSE" else str(tiny) if a == "TINYFILE" else a for a in argv]
    base = ["train", "f", "--preset", "tiny", "--steps", "3"]
    if "--arch" not in argv:
        base += ["--arch", "lstm"]
    _one_line_error(capsys, *base, *argv, match=match)
    assert not Store().exists("f") and not [p for p in Store().root.glob("*") if not p.name.startswith(".")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_one_line_and_leaves_no_folder(prose, capsys):
    _one_line_error(capsys, "train", "g", *TINY, "--corpus", str(prose), "--device", "cuda", match="no CUDA GPU")
    assert not Store().exists("g")


def test_nan_before_the_first_evaluation_says_nothing_was_saved(prose, monkeypatch):
    import torch.nn.functional as F

    real_ce, calls = F.cross_entropy, []

    def poisoned(logits, target, **kw):  # the loss turns NaN at the 3rd training step
        calls.append(1)
        out = real_ce(logits, target, **kw)
        return out * float("nan") if len(calls) >= 3 and "reduction" not in kw else out

    monkeypatch.setattr(F, "cross_entropy", poisoned)
    r = lmcore.train("nan", arch="lstm", preset="tiny", corpus=str(prose), steps=30, eval_every=1000, log_every=1)
    assert r.kind == "failed" and "nothing was saved" in r.message and "kept" not in r.message
    assert not Store().exists("nan")


# ---------------------------------------------------------------------------- continue means continue
def test_continue_means_more_steps_or_minutes_and_a_finished_run_needs_a_budget(prose, capsys):
    rc, out, _ = _run(capsys, "train", "c", *TINY, "--corpus", str(prose), "--steps", "12", "--eval-every", "6")
    assert rc == 0 and "saved as 'c'" in out
    ck = Store().read("c")
    assert ck.step == 12 and ck.budget_reached()
    # nothing left of the run: refused, not a "finished" that trained 0 steps
    _one_line_error(capsys, "train", "c", "--resume", match="finished its run")
    rc, out, _ = _run(capsys, "train", "c", "--resume", "--steps", "8", "--json")
    lines = [_strict(x) for x in out.splitlines()]
    assert rc == 0 and lines[0]["step"] == 12 and lines[0]["steps"] == 20
    assert lines[-1]["step"] == 20 and lines[-1]["steps_trained"] == 8 and lines[-1]["saved"]
    # minutes after a steps run: minutes more (a tiny budget still trains a step and saves it)
    rc, out, _ = _run(capsys, "train", "c", "--resume", "--minutes", "0.00001", "--json")
    summary = _strict(out.splitlines()[-1])
    assert rc == 0 and summary["reason"] == "time" and summary["steps_trained"] >= 1 and summary["saved"]
    assert Store().read("c").step == summary["step"] > 20
    # then steps after a minutes run: steps more
    step = summary["step"]
    assert _run(capsys, "train", "c", "--resume", "--steps", "4")[0] == 0
    assert Store().read("c").step == step + 4


def test_a_tiny_time_budget_trains_and_saves_a_new_model(prose, capsys):
    rc, out, _ = _run(capsys, "train", "t", *TINY, "--corpus", str(prose), "--minutes", "0.00001")
    assert rc == 0 and "saved as 't'" in out and Store().read("t").step >= 1


def test_the_schedule_of_a_new_run_warms_up_again_and_decays_over_its_own_steps(prose):
    events = []
    lmcore.train("s", arch="lstm", preset="tiny", corpus=str(prose), steps=10, warmup=4, lr=1e-2, log_every=1,
                 eval_every=100)
    lmcore.train("s", resume=True, steps=10, log_every=1, on_event=events.append)
    lrs = [e.lr for e in events if e.kind == "step"]
    assert len(lrs) == 10
    assert lrs[0] == pytest.approx(1e-2 / 4) and lrs[3] == pytest.approx(1e-2)  # warmed up again
    assert lrs[-1] < lrs[4] and lrs[-1] >= 1e-3 * 0.999  # cosine down towards min_lr_ratio * lr


def test_options_that_cannot_change_a_saved_model_are_refused(prose, capsys):
    lmcore.train("r", arch="lstm", preset="tiny", corpus=str(prose), steps=3)
    for opt in (["--arch", "gru"], ["--hidden", "8"], ["--tokens", "word"], ["--preset", "base"],
                ["--bidirectional"]):
        _one_line_error(capsys, "train", "r", "--resume", "--steps", "2", *opt, match="cannot change a saved model")
    assert Store().read("r").step == 3


def test_the_corpus_path_is_stored_absolute(prose, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(prose.parent)
    assert _run(capsys, "train", "p", *TINY, "--corpus", prose.name, "--steps", "3")[0] == 0
    assert Store().read("p").corpus.source == str(prose)
    monkeypatch.chdir(tmp_path.parent)
    assert _run(capsys, "train", "p", "--resume", "--steps", "2")[0] == 0


# ---------------------------------------------------------------------------- signals and faults
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_save_and_say_how_to_continue(prose, sig):
    p = _proc("train", "s", *TINY, "--corpus", str(prose), "--steps", "100000")
    try:
        assert until(lambda: Store().exists("s")), "no first checkpoint"
    finally:
        p.send_signal(sig)
        out, err = p.communicate(timeout=DEADLINE)
    assert p.returncode == 0 and "Traceback" not in err, err
    assert f"{signal.Signals(sig).name}: stopping after this step" in err
    assert "continue with: lmcore train s --resume" in out
    assert Store().read("s").step > 0


def test_a_second_ctrl_c_aborts_without_a_traceback_and_keeps_the_store_readable(prose, capsys):
    p = _proc("train", "s2", *TINY, "--corpus", str(prose), "--steps", "100000", "--eval-every", "5", "--json")
    _wait_for_event(p, "eval")  # a checkpoint is saved; the next saves follow every 5 steps
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=DEADLINE)
    assert p.returncode in (0, 130) and "Traceback" not in err, err
    # whatever the abort cut short, the model is listed, loads and generates
    rc, out, _ = _run(capsys, "models", "--json")
    rows = {r["name"]: r for r in map(_strict, out.splitlines())}
    assert rc == 0 and rows["s2"]["ok"] and rows["s2"]["step"] >= 5, rows
    assert Store().check("s2").ok and Store().load_weights("s2")
    rc, out, _ = _run(capsys, "generate", "s2", "--prompt", "The ", "--length", "20", "--seed", "1", "--json")
    assert rc == 0 and sum("token_id" in e for e in map(_strict, out.splitlines())) == 20


def test_a_real_full_disk_keeps_the_previous_checkpoint_and_leaves_no_orphans(prose):
    """Writes beyond 64 KiB fail in the child (RLIMIT_FSIZE: the kernel refuses, as on a full disk)."""
    resource = pytest.importorskip("resource")
    lmcore.train("d", arch="lstm", preset="tiny", corpus=str(prose), steps=6, eval_every=6)
    good = Store().read("d")
    files = sorted(p.name for p in Store().path("d").iterdir())

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    p = _proc("train", "d", "--resume", "--steps", "20", "--eval-every", "2", "--json", preexec_fn=limit)
    out, err = p.communicate(timeout=120)
    lines = [_strict(x) for x in out.splitlines()]
    assert p.returncode == 1 and "Traceback" not in err, err
    failed = next(x for x in lines if x["event"] == "failed")
    assert "could not save model 'd' (File too large)" in failed["message"]
    assert "step 6" in failed["message"] and lines[-1]["event"] == "summary" and not lines[-1]["ok"]
    assert Store().read("d").step == good.step and Store().check("d").ok
    assert sorted(p.name for p in Store().path("d").iterdir()) == files  # no orphan or temporary files


def test_a_data_folder_that_is_a_file_is_one_line(prose, tmp_path, capsys, monkeypatch):
    home = tmp_path / "afile"
    home.write_text("not a folder")
    monkeypatch.setenv("LMPLAY_HOME", str(home))
    _one_line_error(capsys, "train", "x", *TINY, "--corpus", str(prose), "--steps", "2", match="data folder")
    _one_line_error(capsys, "models", "rm", "x", match="no model named")
    _one_line_error(capsys, "models", "rename", "x", "y", match="no model named")
    _one_line_error(capsys, "models", match="data folder")


# ---------------------------------------------------------------------------- sampling and output
def _model(prose, name="g"):
    lmcore.train(name, arch="lstm", preset="tiny", corpus=str(prose), steps=10, eval_every=10)


@pytest.mark.parametrize("opts", [["--temperature", "1e-46"], ["--temperature", "1e-30"],
                                  ["--repetition-penalty", "1e-40"], ["--repetition-penalty", "1e30"]])
def test_extreme_sampling_values_never_degenerate_into_unk(prose, capsys, opts):
    _model(prose)
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "The ", "--length", "40", "--seed", "1", *opts)
    assert rc == 0 and "<unk>" not in out and len(out.rstrip("\n")) == len("The ") + 40


@pytest.mark.parametrize("opts, match", [(["--temperature", "inf"], "temperature must be a finite"),
                                         (["--temperature", "nan"], "temperature must be a finite"),
                                         (["--seed", "-1"], "seed must be"), (["--length", "-3"], "length")])
def test_invalid_sampling_values_are_refused(prose, capsys, opts, match):
    _model(prose)
    _one_line_error(capsys, "generate", "g", "--prompt", "x", *opts, match=match)


def test_a_model_whose_weights_are_nan_is_one_line_not_a_stream_of_unk(prose, capsys):
    _model(prose)
    s = Store()
    ck, state = s.read("g"), s.load_weights("g")
    s.save("g", ck, {k: torch.full_like(v, float("nan")) for k, v in state.items()})
    _one_line_error(capsys, "generate", "g", "--prompt", "x", match="not a number")


def test_json_is_strict_even_when_nothing_was_saved(prose, capsys):
    stop_now = lmcore.train  # a run stopped before its first step has no best loss: null, not Infinity
    import threading

    ev = threading.Event()
    ev.set()
    r = stop_now("j", arch="lstm", preset="tiny", corpus=str(prose), steps=5, stop=ev)
    assert r.kind == "done" and not r.saved and json.loads(lmcore.strict_json(r.to_dict()))["best_val_ppl"] is None
    assert not Store().exists("j")


def test_text_from_model_files_never_reaches_the_terminal_raw(prose, capsys):
    _model(prose)
    s = Store()
    meta_p = s.path("g") / "meta.json"
    meta = json.loads(meta_p.read_text())
    meta["device"] = "cpu\x1b]0;pwned\x07\x1b[2J"
    escape = "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: write the clipboard
    meta["vocab"]["idx_to_token"][-1] = escape
    meta["vocab"]["idx_to_token"][-2] = "\udcff"  # a lone surrogate: not UTF-8
    meta_p.write_text(json.dumps(meta))
    for argv in (["models"], ["models", "show", "g"], ["models", "show", "g", "--json"], ["models", "--json"]):
        rc, out, err = _run(capsys, *argv)
        assert rc == 0 and "\x1b" not in out + err and "\x07" not in out
        out.encode("utf-8")
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "x", "--length", "400", "--temperature", "3",
                        "--seed", "0")
    assert rc == 0 and "\x1b" not in out and "\x07" not in out
    out.encode("utf-8")
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "x", "--length", "400", "--temperature", "3",
                        "--seed", "0", "--json")
    for line in out.splitlines():
        _strict(line)
        line.encode("utf-8")


def test_every_failure_emits_a_failed_event_and_a_summary_in_json(prose, capsys):
    for argv in (["train", "f", *TINY, "--corpus", str(prose), "--seq-len", "100000", "--json"],
                 ["train", "nosuch", "--resume", "--json"]):
        rc, out, err = _run(capsys, *argv)
        lines = [_strict(x) for x in out.splitlines()]
        assert rc == 1 and [x["event"] for x in lines] == ["failed", "summary"]
        assert not lines[-1]["ok"] and lines[-1]["error"] == lines[0]["message"]


def test_symbolic_links_in_the_models_folder_are_damaged_and_never_followed(prose, tmp_path, capsys):
    lmcore.train("real", arch="lstm", preset="tiny", corpus=str(prose), steps=3)
    s = Store()
    victim = tmp_path / "victim"
    import shutil

    shutil.copytree(s.path("real"), victim)
    before = sorted(p.name for p in victim.iterdir())
    (s.root / "evil").symlink_to(victim)
    (s.root / "dangling").symlink_to(tmp_path / "nothing")
    entries = {e.name: e for e in s.list()}
    assert not entries["evil"].ok and "symbolic link" in entries["evil"].reason and entries["real"].ok
    assert not entries["dangling"].ok
    _one_line_error(capsys, "train", "evil", "--resume", "--steps", "2", match="symbolic link")
    _one_line_error(capsys, "generate", "evil", "--prompt", "x", match="symbolic link")
    assert _run(capsys, "models", "rm", "evil")[0] == 0
    assert not (s.root / "evil").exists() and sorted(p.name for p in victim.iterdir()) == before


def test_a_resume_state_from_another_model_is_damage_not_a_full_disk(prose, capsys):
    lmcore.train("a", arch="lstm", preset="tiny", corpus=str(prose), steps=3)
    lmcore.train("b", arch="gru", preset="tiny", corpus=str(prose), steps=3)
    s = Store()
    (s.path("a") / s.read("a").files.resume).write_bytes((s.path("b") / s.read("b").files.resume).read_bytes())
    line = _one_line_error(capsys, "train", "a", "--resume", "--steps", "2", match="resume state does not fit")
    assert "space" not in line and ("Missing key" in line or "size mismatch" in line)


def test_renaming_to_the_same_name_says_so(prose, capsys):
    lmcore.train("c", arch="ngram", preset="tiny", corpus=str(prose))
    _one_line_error(capsys, "models", "rename", "c", "c", match="has that name already")


def test_generate_json_reports_a_failure_on_standard_output(capsys):
    rc, out, err = _run(capsys, "generate", "nosuch", "--prompt", "x", "--json")
    assert rc == 1 and _strict(out.strip())["event"] == "failed" and "no model named" in err


@pytest.mark.parametrize("change", [
    {"files": "x"}, {"format": "2"}, {"files": {"weights": 5}}, {"model": []}, {"params": "lots"},
    {"best_val_loss": "x"}, {"model.hidden": 10 ** 9}, {"model.vocab_size": 10 ** 12},
    {"vocab.idx_to_token": ["<unk>", "a", "b"]}, {"format": 99}, {"train.device": "\x1b[2J"},
])
def test_the_damaged_values_seen_are_listed_as_damaged_and_one_line_everywhere(prose, capsys, change):
    lmcore.train("bad", arch="lstm", preset="tiny", corpus=str(prose), steps=3)
    lmcore.train("fine", arch="ngram", preset="tiny", corpus=str(prose))
    p = Store().path("bad") / "meta.json"
    meta = json.loads(p.read_text())
    for key, value in change.items():
        node, *path = key.split(".")
        if path:
            meta[node][path[0]] = value
        else:
            meta[node] = value
    p.write_text(json.dumps(meta))
    rc, out, _ = _run(capsys, "models", "--json")
    rows = {r["name"]: r for r in map(_strict, out.splitlines())}
    assert rc == 0 and not rows["bad"]["ok"] and rows["fine"]["ok"]
    for argv in (["generate", "bad", "--prompt", "x"], ["train", "bad", "--resume", "--steps", "1"],
                 ["models", "show", "bad"]):
        line = _one_line_error(capsys, *argv, match="damaged")
        assert "\x1b" not in line


def test_a_meta_json_that_is_a_folder_is_damage(prose, capsys):
    lmcore.train("d", arch="ngram", preset="tiny", corpus=str(prose))
    p = Store().path("d") / "meta.json"
    p.unlink()
    p.mkdir()
    entry = Store().check("d")
    assert not entry.ok and "meta.json is a folder, not a regular file" in entry.reason
    _one_line_error(capsys, "generate", "d", "--prompt", "x", match="damaged")
