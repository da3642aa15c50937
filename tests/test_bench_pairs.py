"""`lmcore bench --arch seq2seq`: the pairs rows exist and have their shape (no speed is asserted): training
tokens/s beside a plain PyTorch loop over the same module and batches, and greedy output characters/s
beside a decoder-only LSTM of the same width, both on the built-in dates pairs."""
import json

from lmcore.bench.plan import default_archs
from lmcore.cli.main import main

from .conftest import TIMEMACHINE

KEYS = {"bench", "arch", "impl", "preset", "device", "value", "unit", "reference", "ratio", "against"}


def test_bench_quick_seq2seq_rows(capsys):
    corpus = "timemachine" if TIMEMACHINE.is_file() else "pythondocs"
    assert main(["bench", "--quick", "--arch", "seq2seq", "--json", "--corpus", corpus]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["bench"], r["arch"], r["unit"]) for r in rows] == [("train", "seq2seq", "tokens/s"),
                                                                   ("greedy", "seq2seq", "chars/s")]
    for r in rows:
        assert KEYS <= set(r) and r["device"] == "cpu" and r["preset"] == "small"
        assert r["value"] > 0 and r["reference"] > 0 and abs(r["ratio"] - r["value"] / r["reference"]) < 0.01
    assert "plain fp32 loop" in rows[0]["against"]
    assert "decoder-only lstm of the same width (hidden 128, num_layers 2, embed 64)" in rows[1]["against"]


def test_a_run_without_arch_leaves_the_pairs_families_out():
    assert not {"seq2seq", "seq2seq-transformer"} & set(default_archs())
