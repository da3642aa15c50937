"""A training run's CPU threads: the free cores, shared with this process's other runs, looked at again
while it runs; ``--threads N`` fixes them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from lmcore.errors import ConfigError
from lmcore.training.threads import CHECK_EVERY_S, Sample, ThreadGovernor, check_threads, choose, others_cores, read_sample


@pytest.mark.parametrize("free, runs, most, expect", [
    (2.0, 1, 2, 2),   # alone on a quiet machine: every core
    (1.8, 1, 2, 2),   # a terminal's noise does not cost a thread
    (1.0, 1, 2, 1),   # beside a program that uses one core
    (0.0, 1, 2, 1),   # a full machine: still one
    (2.0, 2, 2, 1),   # two runs in the app share the cores
    (16.0, 1, 8, 8),  # never more than PyTorch's own choice
    (7.0, 2, 8, 3),
])
def test_the_rule_takes_this_runs_share_of_the_free_cores(free, runs, most, expect):
    assert choose(free, runs, most) == expect


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5, "0"])
def test_a_bad_thread_count_is_refused_with_one_line(bad):
    with pytest.raises(ConfigError, match="threads must"):
        check_threads(bad)


def test_auto_and_whole_numbers_are_accepted():
    assert check_threads(None) is None and check_threads("auto") is None
    assert check_threads("3") == 3 and check_threads(1) == 1


class FakeMachine:
    """Other processes' load, set by the test; wall clock moved by the test."""

    def __init__(self):
        self.now, self.busy, self.others = 0.0, 0.0, 0.0

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.busy += self.others * seconds

    def sample(self) -> Sample:
        return Sample(self.now, self.busy, 0.0)


def in_a_thread(fn):
    """Thread counts are per thread: run the governor where the test cannot disturb the main thread."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_run_gives_up_a_thread_when_another_program_starts_and_takes_it_back_after():
    m = FakeMachine()

    def scenario():
        gov = ThreadGovernor(most=2, meter=m.sample, clock=lambda: m.now, sleep=m.advance)
        seen = [gov.start()]  # the first look waits out its short window on the fake clock
        m.others = 1.0  # a program starts using one core
        m.advance(CHECK_EVERY_S / 2)
        gov.tick()
        seen.append(torch.get_num_threads())  # not looked again yet
        m.advance(CHECK_EVERY_S)
        gov.tick()
        seen.append(torch.get_num_threads())
        note = gov.note
        m.others = 0.0
        m.advance(CHECK_EVERY_S)
        gov.tick()
        seen.append(torch.get_num_threads())
        before_close = torch.get_num_threads()
        torch.set_num_threads(2)
        gov.close()
        return seen, note, before_close

    seen, note, _ = in_a_thread(scenario)
    assert seen == [2, 2, 1, 2]
    assert note == "1 of 2 threads: other processes use 1.0 of 2 cores"


def test_runs_of_one_process_share_the_cores():
    m = FakeMachine()

    def scenario():
        first = ThreadGovernor(most=2, meter=m.sample, clock=lambda: m.now, sleep=m.advance)
        second = ThreadGovernor(most=2, meter=m.sample, clock=lambda: m.now, sleep=m.advance)
        try:
            alone = first.start()
            both = second.start()
            return alone, both, second.note
        finally:
            second.close()
            first.close()

    alone, both, note = in_a_thread(scenario)
    assert (alone, both) == (2, 1)
    assert note == "1 of 2 threads: 2 cores free, shared by 2 runs here"


def test_closing_gives_the_thread_its_count_back_and_fixed_counts_are_kept():
    def scenario():
        torch.set_num_threads(2)
        gov = ThreadGovernor(1)
        during = gov.start()
        inside = torch.get_num_threads()
        gov.tick()
        gov.close()
        return during, inside, torch.get_num_threads(), gov.note

    assert in_a_thread(scenario) == (1, 1, 2, "1 thread (fixed by --threads)")


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="the kernel's CPU counters (/proc/stat) are Linux's")
def test_the_meter_counts_another_process_and_not_this_one():
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        def burnt() -> float:
            fields = Path(f"/proc/{burner.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        a, b0 = read_sample(), burnt()
        deadline = time.monotonic() + 60
        while burnt() - b0 < 0.5 and time.monotonic() < deadline:
            sum(i * i for i in range(20_000))  # this process works too: it must not count as others
        b, b1 = read_sample(), burnt()
    finally:
        burner.kill()
        burner.wait()
    assert b1 - b0 >= 0.5
    others = others_cores(a, b) * (b.wall - a.wall)
    assert others >= (b1 - b0) - 0.1  # the burner's CPU seconds (jiffies are 10 ms)
    assert b.own > a.own


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lmcore", "--home", str(home), *args],
                          capture_output=True, text=True, timeout=300)


def test_threads_option_in_the_cli(tmp_path):
    bad = run_cli(tmp_path, "train", "m", "--arch", "lstm", "--preset", "tiny", "--corpus", "pythondocs",
                  "--steps", "2", "--threads", "0")
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines() == [
        "error: threads must be at least 1 (got 0); auto chooses from the free cores"]
    assert not (tmp_path / "models" / "m").exists()
    ok = run_cli(tmp_path, "train", "m", "--arch", "lstm", "--preset", "tiny", "--corpus", "pythondocs",
                 "--steps", "2", "--threads", "1", "--json")
    assert ok.returncode == 0, ok.stderr
    start = json.loads(ok.stdout.splitlines()[0])
    assert start["device"] == "cpu (1 thread)"
    assert start["threads"] == "1 thread (fixed by --threads)"
