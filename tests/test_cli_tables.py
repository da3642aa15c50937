"""The CLI's tables of models at 80 columns: a model's name is never cut (it is copied from there into
the next command); the other columns wrap, or each name goes on a line of its own."""
import pytest

import lmcore
from lmcore.cli.main import main

LONG = "lstm-" + "a-really-long-model-name-that-goes-on-and-on-" + "x" * 14  # 64 characters: the longest
assert len(LONG) == 64


@pytest.fixture
def two_models(home, prose, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    lmcore.train(LONG, arch="ngram", preset="tiny", corpus=str(prose), home=home)
    lmcore.train("tf-py", arch="ngram", preset="small", corpus=str(prose), home=home)
    return lmcore.Store(home)


def _lines(capsys, *argv) -> list[str]:
    assert main(list(argv)) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    return lines


def _whole(name: str, lines: list[str]) -> bool:
    return any(name in line.split() for line in lines)


def test_models_at_80_columns_never_cut_a_name(two_models, capsys):
    lines = _lines(capsys, "models")
    text = "\n".join(lines)
    assert _whole(LONG, lines) and _whole("tf-py", lines), text
    assert "…" not in text
    for name in (LONG, "tf-py"):  # every value is still there
        ck = two_models.read(name)
        assert f"{ck.params:,}" in text and f"{ck.best_val_ppl:.3f}" in text


def test_models_with_short_names_stay_a_table(home, prose, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    lmcore.train("ng", arch="ngram", preset="tiny", corpus=str(prose), home=home)
    lines = _lines(capsys, "models")
    header = next(line for line in lines if "name" in line.split())
    assert [w for w in header.split() if w.isalpha()][:4] == ["name", "arch", "params", "corpus"]
    assert _whole("ng", lines) and "…" not in "\n".join(lines)


def test_the_ranking_and_compare_never_cut_a_name(two_models, capsys):
    corpus = two_models.read("tf-py").corpus.name
    lines = _lines(capsys, "models", "--corpus", corpus)
    assert _whole(LONG, lines) and _whole("tf-py", lines), "\n".join(lines)
    lines = _lines(capsys, "compare", LONG, "tf-py", "--text", "The time machine was there.")
    assert _whole(LONG, lines) and _whole("tf-py", lines), "\n".join(lines)
