"""The tokens/s a model lists (`lmcore models`, the picker, a reopened training panel) is its run's own:
the tokens the run trained over the seconds it ran, not the last logging interval's (which an evaluation
or a busy moment can make several times slower)."""
from __future__ import annotations

import json

import lmcore
from lmcore.cli.main import main


def test_the_listed_rate_is_the_runs_tokens_over_the_runs_time(tmp_path, capsys):
    done = lmcore.train("m", arch="lstm", preset="tiny", corpus="pythondocs", home=tmp_path, steps=30,
                        eval_every=10, batch_size=8, seq_len=16, sample_tokens=0, threads=1)
    assert done.kind == "done" and done.steps_trained == 30
    assert main(["--home", str(tmp_path), "models", "show", "m", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert main(["--home", str(tmp_path), "models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out.splitlines()[0])
    last = shown["history"][-1]
    assert last["step"] == 30
    run_seconds = last["elapsed"] - shown["run_start_elapsed"]  # each kept to the millisecond: +-0.001 s
    tokens = (30 - shown["run_start_step"]) * 8 * 16
    assert listed["tokens_per_s"] == last["tokens_per_s"]
    assert tokens / (run_seconds + 0.001) - 0.1 <= listed["tokens_per_s"] <= tokens / max(run_seconds - 0.001, 1e-9) + 0.1
