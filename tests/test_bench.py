import json

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
