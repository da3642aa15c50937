import json

import pytest

from lmcore import ConfigError
from lmcore.bench.plan import default_archs, plan, shared_archs
from lmcore.cli.main import main

from .conftest import TIMEMACHINE

KEYS = {"bench", "arch", "impl", "preset", "device", "value", "unit", "reference", "ratio"}


def test_bench_quick_json_smoke(capsys, monkeypatch):
    """A smoke run of `lmcore bench --quick --arch lstm --json` (no speed is asserted): on The Time Machine
    when ../shared/corpora has it, else on the built-in corpus, so that it never needs the network."""
    import lmcore.bench.speed as bench

    real = bench.Bench.time_to_loss
    monkeypatch.setattr(bench.Bench, "time_to_loss",
                        lambda self, arch, target, limit, **kw: real(self, arch, 3.5, 0.1, **kw))
    corpus = "timemachine" if TIMEMACHINE.is_file() else "pythondocs"
    assert main(["bench", "--quick", "--arch", "lstm", "--json", "--corpus", corpus]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = {(r["bench"], r["impl"]) for r in rows}
    assert {("train", "fused"), ("train", "scratch"), ("memory", "fused"), ("generate", "fused"),
            ("first_char", "fused"), ("time_to_loss", "fused")} <= kinds
    for r in rows:
        assert KEYS <= set(r) and r["device"] == "cpu" and r["arch"] == "lstm"
        assert r["value"] is not None


def test_bench_shared_rows(capsys):
    """`lmcore bench --shared --quick --arch lstm --json`: the rows of a shared CPU, each a measured rate
    beside its reference (no speed is asserted)."""
    corpus = "timemachine" if TIMEMACHINE.is_file() else "pythondocs"
    assert main(["bench", "--shared", "--quick", "--arch", "lstm", "--json", "--corpus", corpus]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["bench"] for r in rows] == ["shared: alone", "shared: two at once", "shared: beside a busy core",
                                          "shared: beside a busy core"]
    for r in rows:
        assert KEYS <= set(r) and r["unit"] == "tokens/s" and r["arch"] == "lstm"
        assert r["value"] > 0 and r["reference"] > 0 and abs(r["ratio"] - r["value"] / r["reference"]) < 0.01


def rows(jobs):
    return [(j.bench, j.arch, j.impl) for j in jobs]


def test_the_plan_of_todays_families():
    """Which rows a run measures is asked of the registry and the families' bench modules: for today's
    families, the rows the bench has always measured (the order follows the families')."""
    archs = default_archs()
    assert archs == ["rnn", "gru", "lstm", "transformer", "mingru", "minlstm", "birnn", "bert"]  # trained by gradients
    assert shared_archs() == ["lstm", "transformer"]
    full = ([("train", a, i) for a in ("rnn", "gru", "lstm") for i in ("fused", "scratch")]
            + [("train", a, "fused") for a in ("transformer", "mingru", "minlstm", "birnn", "bert")]
            + [("generate", a, "fused") for a in archs if a not in ("birnn", "bert")])  # they fill, they do not generate
    assert rows(plan(archs, False, "cpu")) == full + [("time_to_loss", "lstm", "fused"), ("shared", "lstm", "fused")]
    cuda = plan(archs, False, "cuda")
    assert rows(cuda) == full + [("time_to_loss", "lstm", "fused")] * 2 + [("time_to_loss", "transformer", "fused")]
    assert [j.options["target"] for j in cuda if j.bench == "time_to_loss"] == [1.51, 1.45, 1.47]
    quick = [("train", "gru", "fused"), ("train", "lstm", "fused"), ("train", "lstm", "scratch"),
             ("train", "transformer", "fused"), ("generate", "lstm", "fused"), ("generate", "transformer", "fused"),
             ("time_to_loss", "lstm", "fused")]
    assert rows(plan(archs, True, "cpu")) == quick == rows(plan(archs, True, "cuda"))


def test_an_architecture_named_in_a_quick_run_is_measured():
    """`lmcore bench --quick --arch mingru` trains and generates it, though a quick run of every family
    leaves minGRU out; a counted model is not trained; an unknown name is one clear error."""
    assert rows(plan(["mingru", "ngram"], True, "cpu", named=True)) == [
        ("train", "mingru", "fused"), ("generate", "mingru", "fused"), ("generate", "ngram", "fused")]
    assert rows(plan(["mingru"], True, "cpu")) == []
    with pytest.raises(ConfigError, match="unknown architecture 'nope'"):
        plan(["nope"], True, "cpu")
