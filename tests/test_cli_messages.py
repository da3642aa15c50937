"""Messages that say what is actually wrong: a text that is not in the encoding given, option values out
of range (NaN and infinities included), and a run that stopped before it trained anything."""
import json
import math
import os
import signal

import pytest

import lmcore
from lmcore import Store
from lmcore.cli.main import main

TINY = ["--arch", "lstm", "--preset", "tiny"]


def _refused(capfd, *argv, match: str) -> str:
    """The command fails with one line on standard error that says ``match``; it is returned."""
    rc = main(list(argv))
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert rc == 1 and len(lines) == 1 and match in lines[0] and "Traceback" not in err, (rc, err)
    return lines[0]


# ---------------------------------------------------------------------------- encodings
@pytest.mark.parametrize("encoding, data, match", [
    ("utf-16", "a text\n".encode("utf-16") * 40 + b"x", "ends in the middle of a utf-16 character"),
    ("utf-16-le", "a text\n".encode("utf-16-le") * 40 + b"x", "ends in the middle of a utf-16-le character"),
    ("utf-32", "a text\n".encode("utf-32") * 40 + b"xy", "ends in the middle of a utf-32 character"),
    ("ascii", "a text, café\n".encode("utf-8") * 40, "is not ascii text (ordinal not in range(128): byte 0xc3"),
    ("cp1252", b"a text \x81\n" * 40, "is not cp1252 text"),
    ("utf-16", "a text\n".encode("utf-16-le") * 40, "does not start with the byte-order mark that utf-16 needs: "
                                                     "pass --encoding utf-16-le or utf-16-be"),
    ("utf-32", "a text\n".encode("utf-32-le") * 40, "pass --encoding utf-32-le or utf-32-be"),
], ids=["utf-16", "utf-16-le", "utf-32", "ascii", "cp1252", "utf-16-no-bom", "utf-32-no-bom"])
def test_a_file_not_in_the_encoding_given_says_what_is_wrong_not_latin_1(tmp_path, capfd, encoding, data, match):
    f = tmp_path / "text.txt"
    f.write_bytes(data)
    for argv in (["corpora", "info", str(f), "--encoding", encoding],
                 ["train", "e", *TINY, "--corpus", str(f), "--encoding", encoding, "--steps", "2"]):
        line = _refused(capfd, *argv, match=match)
        assert "latin-1" not in line
    assert not Store().exists("e")


def test_a_utf8_file_cut_in_the_middle_of_a_character_says_so(tmp_path, capfd):
    f = tmp_path / "cut.txt"
    f.write_bytes("a text, café\n".encode("utf-8") * 40 + "é".encode("utf-8")[:1])
    line = _refused(capfd, "corpora", "info", str(f), match="ends in the middle of a utf-8 character")
    assert "cut short" in line and f"at offset {f.stat().st_size - 1:,}" in line
    latin = tmp_path / "latin.txt"  # a legacy encoding is still told to pass its encoding
    latin.write_bytes("a text, café\n".encode("latin-1") * 40)
    _refused(capfd, "corpora", "info", str(latin), match="is not UTF-8 text (byte 0xe9 at offset 11): pass its "
                                                         "encoding, e.g. --encoding latin-1")


# ---------------------------------------------------------------------------- option values
@pytest.mark.parametrize("argv, match", [
    (["--arch", "ngram", "--epsilon", "nan"], "epsilon (the n-gram's smoothing) must be a number > 0 and at most 1e30 (got nan)"),
    (["--arch", "ngram", "--epsilon", "inf"], "epsilon (the n-gram's smoothing) must be a number > 0 and at most 1e30 (got inf)"),
    (["--arch", "ngram", "--epsilon=-inf"], "epsilon (the n-gram's smoothing) must be a number > 0"),
    (["--arch", "ngram", "--epsilon", "1e300"], "epsilon (the n-gram's smoothing) must be a number > 0"),
    (["--arch", "lstm", "--preset", "tiny", "--lr", "1e300"], "learning rate must be a number > 0 and at most 1,000 (got 1e+300)"),
    (["--arch", "lstm", "--preset", "tiny", "--lr", "nan"], "learning rate must be a number > 0 and at most 1,000 (got nan)"),
])
def test_float_options_out_of_range_are_refused_before_anything_runs(prose, capfd, argv, match):
    line = _refused(capfd, "train", "f", *argv, "--corpus", str(prose), "--steps", "2", match=match)
    assert "not a number (NaN" not in line and "RuntimeError" not in line and not Store().exists("f")


def test_the_largest_values_allowed_train(prose):
    r = lmcore.train("e", arch="ngram", corpus=str(prose), model_overrides={"epsilon": 1e30})
    assert r.kind == "done" and r.saved  # all smoothing: about uniform, and a number
    assert r.best_val_loss == pytest.approx(math.log(len(Store().read("e").vocab)), rel=0.05)
    r = lmcore.train("l", arch="lstm", preset="tiny", corpus=str(prose), steps=1, lr=1000.0)
    assert r.kind == "done" and r.saved and r.step == 1  # a bad rate, but a run: no error inside the optimizer


# ---------------------------------------------------------------------------- a run that did nothing
def _ctrl_c_once_prepared(monkeypatch):
    """Ctrl+C arrives once the run is prepared, before its first step."""
    real = lmcore.Trainer.prepare

    def prepare(self, spec, progress=None):
        out = real(self, spec, progress)
        os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(lmcore.Trainer, "prepare", prepare)


def test_a_run_stopped_before_its_first_step_fails_and_says_nothing_was_saved(prose, capfd, monkeypatch):
    _ctrl_c_once_prepared(monkeypatch)
    rc = main(["train", "s", *TINY, "--corpus", str(prose), "--steps", "5"])
    out, err = capfd.readouterr()
    assert rc == 1 and err.strip().splitlines()[-1] == "stopped before the first step: nothing was trained or saved"
    assert "saved as" not in out and not Store().exists("s")
    rc = main(["train", "s", *TINY, "--corpus", str(prose), "--steps", "5", "--json"])
    out, _ = capfd.readouterr()
    summary = json.loads(out.splitlines()[-1])
    assert rc == 1 and summary["event"] == "summary" and summary["ok"] is False and summary["saved"] is False


def test_a_continued_run_stopped_before_its_first_step_keeps_the_model_and_fails(prose, capfd, monkeypatch):
    lmcore.train("c", arch="lstm", preset="tiny", corpus=str(prose), steps=2, eval_every=2)
    _ctrl_c_once_prepared(monkeypatch)
    rc = main(["train", "c", "--resume", "--steps", "3"])
    _, err = capfd.readouterr()
    assert rc == 1 and "nothing was trained or saved" in err and Store().read("c").step == 2
