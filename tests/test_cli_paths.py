"""The command line's everyday paths, each through the real ``lmcore`` entry point: rename then use the
new name, a prompt from standard input, stop strings, unknown prompt characters, files to score or
inspect, and changing a model while it trains."""
import io
import json
import sys
import threading


import lmcore
from lmcore import Store
from lmcore.cli.main import main

from . import factories


def _run(capsys, *argv) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return rc, out, err


def _refused(capsys, *argv, match: str) -> str:
    """The command fails with one line on standard error that says ``match``."""
    rc, out, err = _run(capsys, *argv)
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and match in lines[0], (rc, err)
    return lines[0]


def _continuation(capsys, name: str, *extra) -> str:
    """What ``generate`` prints for ``name`` after the prompt (seeded, greedy-free sampling)."""
    rc, out, err = _run(capsys, "generate", name, "--length", "30", "--seed", "3", "--no-echo", *extra)
    assert rc == 0, err
    return out


# ---------------------------------------------------------------------------- rename, then use it
def test_a_renamed_model_is_shown_and_generates_under_its_new_name_only(capsys):
    factories.save(Store(), "old")
    before = _continuation(capsys, "old", "--prompt", "abc")
    rc, out, _ = _run(capsys, "models", "rename", "old", "new")
    assert rc == 0 and out.strip() == "renamed 'old' to 'new'"
    rc, out, _ = _run(capsys, "models", "show", "new")
    shown = dict(line.split(None, 1) for line in out.splitlines() if line.strip() and not line.startswith(" "))
    assert rc == 0 and shown["name"] == "new" and shown["arch"] == "lstm" and shown["step"] == "1"
    rc, out, _ = _run(capsys, "models", "show", "new", "--json")
    assert rc == 0 and json.loads(out)["name"] == "new"
    assert _continuation(capsys, "new", "--prompt", "abc") == before  # the same weights under the new name
    _refused(capsys, "models", "show", "old", match="no model named 'old' (saved models: new)")
    _refused(capsys, "generate", "old", "--prompt", "abc", match="no model named 'old'")
    rc, out, _ = _run(capsys, "models", "--json")
    assert [json.loads(line)["name"] for line in out.splitlines()] == ["new"]


# ---------------------------------------------------------------------------- generate's options
def _stdin(monkeypatch, data: bytes) -> None:
    """Standard input as a pipe gives it: bytes, read through a strict UTF-8 text layer."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="strict"))


def test_prompt_dash_reads_the_prompt_from_standard_input(capsys, monkeypatch):
    factories.save(Store(), "g")
    given = _continuation(capsys, "g", "--prompt", "bad cafe\n")
    _stdin(monkeypatch, b"bad cafe\n")
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "-", "--length", "30", "--seed", "3")
    assert rc == 0 and out == "bad cafe\n" + given  # the prompt echoed, then the same continuation
    _stdin(monkeypatch, b"bad cafe\n")
    rc, out, _ = _run(capsys, "generate", "g", "--prompt", "-", "--length", "3", "--json")
    prompt = [r for r in map(json.loads, out.splitlines()) if r.get("event") == "prompt"][0]
    assert rc == 0 and prompt["tokens"] == len("bad cafe\n") and prompt["unknown"] == []


def test_a_prompt_on_standard_input_that_is_not_utf8_or_endless_is_one_line(capsys, monkeypatch):
    factories.save(Store(), "g")
    _stdin(monkeypatch, b"bad \xe9cafe")  # latin-1 bytes: shown as U+FFFD, as --file texts are
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "-", "--length", "3", "--seed", "3")
    assert rc == 0 and out.startswith("bad \ufffdcafe") and "mapped to <unk>: '\ufffd'" in err
    _stdin(monkeypatch, b"abc " * (2 ** 21 + 1))  # as `yes abc | lmcore generate g --prompt -` never ends
    _refused(capsys, "generate", "g", "--prompt", "-", match="standard input is over 8 MB")


def test_stop_ends_the_output_at_the_token_that_completes_the_stop_text(capsys):
    factories.save(Store(), "g")
    free = _continuation(capsys, "g", "--prompt", "abc").rstrip("\n")
    stop = next(s for s in ("ab", "ba", "a", "b", "c", "d", "e", " ") if s in free[1:])  # not at once
    want = free[: free.index(stop) + len(stop)]
    out = _continuation(capsys, "g", "--prompt", "abc", "--stop", stop).rstrip("\n")
    assert out == want and len(out) < len(free)
    # repeatable: the first of them to appear ends it
    other = "hh" if "hh" not in want else "gg"
    assert _continuation(capsys, "g", "--prompt", "abc", "--stop", other, "--stop", stop).rstrip("\n") == want


def test_unknown_drop_leaves_out_prompt_characters_the_model_never_saw(capsys):
    factories.save(Store(), "g")
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "cab z☃", "--length", "30", "--seed", "3",
                        "--no-echo", "--unknown", "drop")
    assert rc == 0 and out == _continuation(capsys, "g", "--prompt", "cab ")  # as if they were not typed
    assert err.strip() == "note: 2 prompt token(s) not in the model's vocabulary were dropped: 'z', '☃'"
    rc, out, err = _run(capsys, "generate", "g", "--prompt", "cab z☃", "--length", "30", "--seed", "3",
                        "--no-echo")  # the default maps them to <unk> instead, and says so
    assert rc == 0 and "were mapped to <unk>: 'z', '☃'" in err
    rc, out, _ = _run(capsys, "generate", "g", "--prompt", "cab z☃", "--length", "1", "--unknown", "drop", "--json")
    prompt = [r for r in map(json.loads, out.splitlines()) if r.get("event") == "prompt"][0]
    assert prompt == {"event": "prompt", "tokens": 4, "unknown": ["z", "☃"], "policy": "drop", "truncated": 0}


# ---------------------------------------------------------------------------- texts from files
def test_compare_file_scores_the_file_as_text_does(capsys, tmp_path):
    for name in ("a", "b"):
        factories.save(Store(), name, val_loss=1.0 if name == "a" else 2.0)
    text = "bad cafe\nfed a bee\n"
    f = tmp_path / "text.txt"
    f.write_text(text, "utf-8")
    rc, out, _ = _run(capsys, "compare", "a", "b", "--file", str(f), "--json")
    by_file = [json.loads(line) for line in out.splitlines()]
    rc2, out, _ = _run(capsys, "compare", "a", "b", "--text", text, "--json")
    assert rc == rc2 == 0 and by_file == [json.loads(line) for line in out.splitlines()]
    summaries = {r["model"]: r for r in by_file if r.get("event") == "summary"}
    assert set(summaries) == {"a", "b"} and all(s["tokens"] == len(text) - 1 for s in summaries.values())
    rc, out, _ = _run(capsys, "compare", "a", "b", "--file", str(f))
    assert rc == 0 and "the same text under each model" in out and "fed a bee" in out
    _refused(capsys, "compare", "a", "b", "--file", str(tmp_path / "nope.txt"), match="cannot read")
    (tmp_path / "bin").write_bytes(b"\x00\x01\x02" * 100)
    _refused(capsys, "compare", "a", "b", "--file", str(tmp_path / "bin"), match="is not a text file")


def test_inspect_file_looks_at_the_file_as_text_does(capsys, tmp_path):
    factories.save(Store(), "g")
    text = "bad cafe\nfed a bee\n"
    f = tmp_path / "text.txt"
    f.write_text(text, "utf-8")
    rc, out, _ = _run(capsys, "inspect", "surprisal", "g", "--file", str(f), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    rc2, out, _ = _run(capsys, "inspect", "surprisal", "g", "--text", text, "--json")
    assert rc == rc2 == 0 and rows == [json.loads(line) for line in out.splitlines()]
    assert "".join(r["token"] for r in rows[:-1]) == text[1:] and rows[-1]["tokens"] == len(text) - 1
    rc, out, _ = _run(capsys, "inspect", "neurons", "g", "--file", str(f), "--json")
    assert rc == 0 and out.strip()
    _refused(capsys, "inspect", "surprisal", "g", "--file", str(f), "--text", "x", match="not both")
    _refused(capsys, "inspect", "surprisal", "g", "--file", str(tmp_path), match="cannot read")


# ---------------------------------------------------------------------------- a model that trains
class _HeldRun:
    """``lmcore.train`` in a thread (as another process would: it holds the model's lock), held at its
    start event, before its first step, until ``go`` is called."""

    def __init__(self, prose, name: str, **options):
        self.started, self.let_go, self.result = threading.Event(), threading.Event(), []

        def on_event(e):
            if e.kind == "start":
                self.started.set()
                self.let_go.wait(60)

        self.thread = threading.Thread(target=lambda: self.result.append(lmcore.train(
            name, corpus=str(prose), on_event=on_event, **options)))
        self.thread.start()
        assert self.started.wait(60), "the run did not start"

    def go(self):
        self.let_go.set()
        self.thread.join(60)
        return self.result[0]


def test_rm_and_rename_of_a_model_training_elsewhere_are_refused_and_lose_nothing(prose, capsys):
    lmcore.train("m", arch="lstm", preset="tiny", corpus=str(prose), steps=2, eval_every=2)
    run = _HeldRun(prose, "m", resume=True, steps=2, eval_every=2)
    try:
        _refused(capsys, "models", "rm", "m", match="in use by another lmplay process")
        _refused(capsys, "models", "rename", "m", "n", match="in use by another lmplay process")
    finally:
        done = run.go()
    assert done.kind == "done" and done.saved and Store().read("m").step == 4  # the run went on and saved
    assert [e.name for e in Store().list()] == ["m"]


def test_a_new_model_training_before_its_first_checkpoint_is_in_use_not_missing(prose, capsys):
    factories.save(Store(), "other")
    run = _HeldRun(prose, "fresh", arch="lstm", preset="tiny", steps=2, eval_every=2)
    try:
        assert not Store().exists("fresh")  # nothing of it is saved yet
        _refused(capsys, "models", "rm", "fresh", match="'fresh' is in use by another lmplay process")
        _refused(capsys, "models", "rename", "other", "fresh", match="'fresh' is in use by another lmplay process")
    finally:
        done = run.go()
    assert done.saved and Store().read("fresh").model.arch == "lstm" and Store().read("other").step == 1
    _refused(capsys, "models", "rm", "nosuch", match="no model named 'nosuch'")
