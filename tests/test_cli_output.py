"""What the command line prints: every ``--json`` line is strict JSON, valid UTF-8 and safe to print to a
terminal (no C1 control or bidirectional override reaches it raw, however hostile the corpus); the text
a view shows is the text that was scored (CRLF line ends are not shown twice)."""
from __future__ import annotations

import json
import re

import pytest

import lmcore
from lmcore.cli.main import main

# what a terminal must never receive raw: C0 (JSON escapes those itself), DEL, C1 (U+009B is a CSI),
# bidirectional embeddings, overrides and isolates, line and paragraph separators
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
HOSTILE = "\x9b31m\u202eevil\u202c \u2066x\u2069\x85\x7f\u2028"


@pytest.fixture
def hostile_models(tmp_path, prose_text, capsys):
    """Two models of a corpus whose every line holds C1 controls and bidi overrides, named after it."""
    p = tmp_path / "ev\x9bil\u202e.txt"
    p.write_text("".join(line + " " + HOSTILE + "\n" for line in prose_text[:20_000].split("\n")), "utf-8")
    assert main(["train", "a", "--arch", "ngram", "--corpus", str(p)]) == 0
    assert main(["train", "b", "--arch", "ngram", "--preset", "tiny", "--corpus", str(p)]) == 0
    capsys.readouterr()
    return p


def _json_lines(capsys, argv) -> list:
    assert main(argv) == 0, argv
    raw = capsys.readouterr().out
    data = raw.encode("utf-8")
    data.decode("utf-8", errors="strict")
    assert not UNSAFE.search(raw.replace("\n", "")), (argv, UNSAFE.findall(raw.replace("\n", ""))[:5])
    lines = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON")) for line in raw.splitlines()]
    assert lines, argv
    return lines


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


@pytest.mark.parametrize("argv", [
    ["generate", "a", "--prompt", "The", "--length", "400", "--seed", "3", "--json"],
    ["compare", "a", "b", "--prompt", "The", "--length", "200", "--seed", "3", "--json"],
    ["compare", "a", "b", "--text", "a line " + HOSTILE + "\nanother " + HOSTILE, "--json"],
    ["inspect", "surprisal", "a", "--text", "a line " + HOSTILE + "\nanother " + HOSTILE, "--json"],
    ["models", "--json"],
    ["models", "show", "a", "--json"],
    ["corpora", "info", "CORPUS", "--json"],
    ["corpora", "zipf", "CORPUS", "--tokens", "char", "--prep", "raw", "--json"],
], ids=["generate", "compare-prompt", "compare-text", "surprisal", "models", "models-show", "corpora-info",
        "corpora-zipf"])
def test_json_output_escapes_what_a_terminal_would_obey(hostile_models, capsys, argv):
    argv = [str(hostile_models) if a == "CORPUS" else a for a in argv]
    lines = _json_lines(capsys, argv)
    text = "".join(_strings(lines))
    assert "\x9b" in text or "\u202e" in text  # the hostile characters are there, escaped, not dropped


def test_strict_json_escapes_controls_and_keeps_other_text_readable():
    line = lmcore.strict_json({"text": "café ☕ " + HOSTILE, "loss": float("nan"), "ppl": float("inf")})
    assert not UNSAFE.search(line) and "café ☕" in line
    assert json.loads(line) == {"text": "café ☕ " + HOSTILE, "loss": None, "ppl": None}


def test_bench_json_rows_are_strict_and_escaped(monkeypatch, capsys):
    from lmcore.bench import speed as bench

    class OneRow:  # stands for a measurement whose rate could not be taken, on a device with an odd name
        def __init__(self, device, quick, corpus, archs, on_row=None):
            self.device, self.on_row, self.rows = device, on_row, []

        def run(self):
            self.rows.append(bench.Row("x", "lstm", "fused", "tiny", "cpu " + HOSTILE, float("nan"), "tokens/s",
                                       None, None, HOSTILE))
            if self.on_row:
                self.on_row(self.rows[-1])
            return self.rows

        def close(self):
            pass

    monkeypatch.setattr(bench, "Bench", OneRow)
    (row,) = _json_lines(capsys, ["bench", "--quick", "--json", "--device", "cpu"])
    assert row["value"] is None and row["device"] == "cpu " + HOSTILE


# ---------------------------------------------------------------------------- shown = scored
CRLF = "The time machine\r\nwas a thing\r\nof the mind.\r\n"


@pytest.fixture
def char_model(prose, capsys):
    assert main(["train", "c", "--arch", "ngram", "--corpus", str(prose)]) == 0
    assert main(["train", "c2", "--arch", "ngram", "--preset", "tiny", "--corpus", str(prose)]) == 0
    assert main(["train", "w", "--arch", "ngram", "--tokens", "word", "--corpus", str(prose)]) == 0
    capsys.readouterr()


def test_surprisal_shows_crlf_text_once(char_model, capsys):
    assert main(["inspect", "surprisal", "c", "--text", CRLF]) == 0
    out = capsys.readouterr().out
    assert out.startswith("The time machine\nwas a thing\nof the mind.\n"), out[:80]
    assert "Thehe" not in out and "\r" not in out


def test_compare_text_shows_crlf_text_once(char_model, capsys):
    assert main(["compare", "c", "c2", "--text", CRLF]) == 0
    out = capsys.readouterr().out
    assert "The time machine\nwas a thing\nof the mind.\n" in out and "Thehe" not in out and "\r" not in out


@pytest.mark.parametrize("name", ["c", "w"])
def test_a_score_holds_the_text_it_scored(char_model, home, name):
    gen = lmcore.Generator.from_store(lmcore.Store(home), name)
    sc = lmcore.score_text(gen, CRLF)
    assert sc.text == gen.tokenizer.join(gen.tokenizer.tokenize(CRLF))
    assert sc.lead + "".join(t.text for t in sc.tokens) == sc.text and sc.lead in ("T", "The")


@pytest.mark.parametrize("argv", [["corpora", "info"], ["corpora", "zipf", "--tokens", "char", "--prep", "raw"]])
def test_human_corpus_output_shows_a_hostile_file_name_and_text_escaped(tmp_path, prose_text, capsys, argv):
    p = tmp_path / "ev\x9bil\u202e.txt"
    p.write_text(prose_text[:3000] + HOSTILE * 50, "utf-8")
    assert main([*argv[:2], str(p), *argv[2:]]) == 0
    out = capsys.readouterr().out
    assert not UNSAFE.search(out.replace("\n", "")), UNSAFE.findall(out.replace("\n", ""))[:5]
    assert "ev\\x9bil\\u202e" in out
