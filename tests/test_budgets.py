"""Comparisons show each model's budget (training time, tokens seen, parameters) and warn in one line
when the budgets differ by more than 2x: the ranking (`lmcore models --corpus`, table and --json),
`lmcore compare` and the app's compare screen."""
import json

import pytest

import lmcore
from lmcore.cli.main import main

from . import factories


def save(store, name: str, arch: str, seconds: float, step: int = 10) -> None:
    ck, state = factories.checkpoint(name, arch, step=step)
    ck.elapsed = seconds
    store.save(name, ck, state)


@pytest.fixture
def three_x(home):
    store = lmcore.Store(home)
    save(store, "lstm-5m", "lstm", 300.0)
    save(store, "rnn-90s", "rnn", 90.0)
    return store


@pytest.fixture
def one_and_a_half_x(home):
    store = lmcore.Store(home)
    save(store, "lstm-a", "lstm", 150.0)
    save(store, "rnn-b", "rnn", 100.0)
    return store


def _run(capsys, *argv) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_the_warning_names_both_models_and_the_ratio():
    a = lmcore.Budget("lstm-5m", 300.0, 48_000, 10_000)
    b = lmcore.Budget("rnn-90s", 90.0, 48_000, 2_000)
    assert lmcore.budgets_differ([a, b]) == ("⚠ budgets differ: lstm-5m trained 5.0 min, rnn-90s 1.5 min "
                                             "(3.3x) — compare at equal budgets")
    assert lmcore.budgets_differ([a, lmcore.Budget("x", 200.0, 48_000, 1)]) is None
    more = lmcore.Budget("rnn-long", 300.0, 480_000, 2_000)  # the same time, 10x the tokens
    assert "rnn-long saw 480k tokens, lstm-5m 48k (10.0x)" in lmcore.budgets_differ([a, more])
    counted = lmcore.Budget("ngram", 0.5, 90, 10, trained=False)  # counts, does not train: no budget to match
    assert lmcore.budgets_differ([a, counted]) is None
    assert lmcore.budgets_differ([a]) is None and lmcore.budgets_differ([]) is None


def test_a_checkpoint_knows_its_budget(three_x):
    ck = three_x.read("lstm-5m")
    b = lmcore.model_budget(ck)
    assert b.seconds == 300.0 and b.params == ck.params
    assert b.tokens == 10 * ck.train.batch_size * ck.train.seq_len == ck.summary()["tokens_seen"]
    assert b.describe().startswith("5.0 min · ")


def test_the_ranking_warns_at_3x(three_x, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = _run(capsys, "models", "--corpus", "timemachine")
    assert "⚠ budgets differ: lstm-5m trained 5.0 min, rnn-90s 1.5 min (3.3x) — compare at equal budgets" in out
    assert "seen" in out and "5:00" in out and "1:30" in out
    rows = [json.loads(line) for line in _run(capsys, "models", "--corpus", "timemachine", "--json").splitlines()]
    assert {r["name"] for r in rows} == {"lstm-5m", "rnn-90s"}
    assert all("(3.3x)" in r["budget_warning"] for r in rows)
    assert all(r["tokens_seen"] > 0 and r["elapsed"] in (300.0, 90.0) for r in rows)


def test_the_ranking_says_nothing_at_1_5x(one_and_a_half_x, capsys):
    assert "budgets differ" not in _run(capsys, "models", "--corpus", "timemachine")
    rows = [json.loads(line) for line in _run(capsys, "models", "--corpus", "timemachine", "--json").splitlines()]
    assert [r["budget_warning"] for r in rows] == [None, None]


def test_compare_shows_each_budget_and_warns_at_3x(three_x, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = _run(capsys, "compare", "lstm-5m", "rnn-90s", "--text", "abc abc abc")
    assert "5.0 min" in out and "1.5 min" in out and "budgets differ" in out and "(3.3x)" in out
    lines = [json.loads(x) for x in _run(capsys, "compare", "lstm-5m", "rnn-90s", "--text", "abc abc",
                                         "--json").splitlines()]
    last = lines[-1]
    assert last["event"] == "budgets" and "(3.3x)" in last["warning"]
    assert last["models"]["lstm-5m"]["seconds"] == 300.0
    summaries = [x for x in lines if x.get("event") == "summary"]
    assert [s["budget"]["seconds"] for s in summaries] == [300.0, 90.0]
    out = _run(capsys, "compare", "lstm-5m", "rnn-90s", "--prompt", "ab", "--length", "3")
    assert "⚠ budgets differ" in out and "5.0 min ·" in out


def test_compare_says_nothing_at_1_5x(one_and_a_half_x, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = _run(capsys, "compare", "lstm-a", "rnn-b", "--text", "abc abc abc")
    assert "2.5 min" in out and "budgets differ" not in out
    last = json.loads(_run(capsys, "compare", "lstm-a", "rnn-b", "--text", "abc", "--json").splitlines()[-1])
    assert last["event"] == "budgets" and last["warning"] is None
