"""The tokens/s a model lists (`lmcore models`, the picker, a reopened training panel) is its run's own:
the tokens the run trained over the seconds it ran, not the last logging interval's (which an evaluation
or a busy moment can make several times slower)."""
from __future__ import annotations

import dataclasses
import json

import pytest

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


def test_step_events_carry_the_runs_own_rate_beside_the_last_intervals(tmp_path):
    seen = []
    done = lmcore.train("m", arch="lstm", preset="tiny", corpus="pythondocs", home=tmp_path, steps=20,
                        eval_every=10, log_every=5, batch_size=8, seq_len=16, sample_tokens=0, threads=1,
                        on_event=seen.append)
    steps = [e for e in seen if e.kind == "step"]
    assert steps and all(e.run_tokens_per_s > 0 and e.tokens_per_s > 0 for e in steps)
    last = steps[-1]
    assert last.step == 20
    # the intervals' seconds add up to the run's: its rate is all its tokens over all of them
    seconds = sum((e.step - prev) * 8 * 16 / e.tokens_per_s for prev, e in zip([0] + [e.step for e in steps], steps))
    assert last.run_tokens_per_s == pytest.approx(20 * 8 * 16 / seconds, rel=1e-6)
    assert done.tokens_per_s <= last.run_tokens_per_s  # the same run's rate, measured later (the last evaluation in it)


async def test_the_picker_shows_a_live_runs_own_rate_not_the_last_intervals(tmp_path):
    from tui.app import create_app

    from .tui_helpers import ScriptedTrainer, fixed_entry, wait_for

    class SlowLastInterval(ScriptedTrainer):  # the interval that held an evaluation: 761 tokens/s, 3,583 over the run
        def __init__(self, *a):
            super().__init__(*a)
            emit = self.on_event
            self.on_event = lambda e: emit(dataclasses.replace(e, tokens_per_s=761.0, run_tokens_per_s=3583.0)
                                           if e.kind == "step" else e)

    fixed_entry(lmcore.Store(tmp_path), "m")
    app = create_app(tmp_path, trainer_factory=SlowLastInterval)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            detail = app.screen.query_one("#picker-detail")
            app.runs.start(lmcore.RunSpec.continued("m"))
            await wait_for(pilot, lambda: "training: step 600" in str(detail.render()))
            assert "3,583 tokens/s" in str(detail.render()) and "761" not in str(detail.render())
    finally:
        app.runs.stop_all()
