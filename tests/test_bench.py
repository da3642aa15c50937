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


def test_the_nanogpt_reference_is_its_readmes_cpu_recipe():
    from lmcore.bench.plan import reference_recipe

    arch, recipe = reference_recipe()
    assert arch == "transformer"
    assert {k: recipe["model"][k] for k in ("num_layers", "heads", "hidden", "context", "dropout")} == {
        "num_layers": 4, "heads": 4, "hidden": 128, "context": 64, "dropout": 0.0}
    assert recipe["train"] == {"batch_size": 12, "seq_len": 64, "lr": 1e-3, "warmup": 100, "schedule": "cosine",
                               "min_lr_ratio": 0.1, "weight_decay": 0.1, "clip": 1.0, "eval_every": 250}


def test_bench_nanogpt_row_reports_both_best_losses(capsys, tmp_path, prose_text):
    """`lmcore bench --nanogpt --minutes M`: preset auto and nanoGPT's recipe each trained M minutes on the
    corpus, one row with both best validation losses and their ratio (a tiny budget: no quality asserted)."""
    corpus = tmp_path / "small.txt"
    corpus.write_text(prose_text[:20_000], "utf-8")
    assert main(["bench", "--nanogpt", "--minutes", "0.02", "--json", "--corpus", str(corpus)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["bench"], r["arch"], r["preset"]) for r in rows] == [("quality", "transformer", "auto")]
    r = rows[0]
    assert KEYS <= set(r) and r["unit"] == "best val loss in 0.02 min" and "nanoGPT" in r["against"]
    assert 0 < r["value"] < 10 and 0 < r["reference"] < 10
    assert r["ratio"] == pytest.approx(r["reference"] / r["value"], abs=1e-4)  # losses and ratio to 4 decimals
    # what auto chose and why, as `lmcore train` prints it: its size and the budget it read
    assert r["chose"].startswith(("auto:", "preset auto:")) and "layers ×" in r["chose"] and "0.02 min" in r["chose"]


@pytest.mark.parametrize("argv, says", [
    (["--nanogpt", "--minutes", "0"], "--minutes must be"),
    (["--nanogpt", "--minutes", "nan"], "--minutes must be"),
    (["--minutes", "1"], "give it with --nanogpt"),
    (["--nanogpt", "--shared"], "give one of them"),
    (["--nanogpt", "--arch", "nope"], "unknown architecture 'nope'"),
    (["--nanogpt", "--minutes", "1", "--arch", "ngram"], "trained by counting"),
])
def test_bench_nanogpt_bad_input_is_one_line(argv, says, capsys, tmp_path, prose_text):
    corpus = tmp_path / "small.txt"
    corpus.write_text(prose_text[:5_000], "utf-8")
    assert main(["bench", *argv, "--corpus", str(corpus)]) != 0
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
