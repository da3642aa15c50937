"""How many CPU threads a training run uses: the cores that are free, looked at again while it runs.

PyTorch's CPU kernels share each operation among OpenMP threads that spin while they wait for each other.
A run that takes every core while something else also computes makes those threads wait for a core that
is busy elsewhere. Measured on the 2-core CPU (`lmcore train m --arch lstm --preset small --corpus
timemachine`): 35,000 tokens/s alone, about 3,000 each for two such runs at once, and a transformer beside
a program using one core ran at 1,052 tokens/s with two threads against 13,300 with one.

So a run takes the cores that other processes leave free (from the kernel's per-CPU counters, less this
process's own use), shares them with the other runs of this process (the app trains several models in
one process), and looks again every :data:`CHECK_EVERY_S` seconds: a run that starts alone may not stay
alone, and one that started beside another gets the cores back when it ends. ``threads=N`` fixes the
number instead. Where the kernel's counters cannot be read (not Linux) the run keeps PyTorch's default."""
from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .spec import check_threads

CHECK_EVERY_S = 3.0  # how often a running training looks at the machine again
FIRST_LOOK_S = 0.2  # the shortest window the first choice is made over
PROC_STAT = "/proc/stat"

_DEFAULT_THREADS = torch.get_num_threads()  # PyTorch's choice at start-up: one per physical core
_runs_here: set[int] = set()  # the governors of this process's running trainings
_runs_lock = threading.Lock()


def choose(free_cores: float, runs_here: int, most: int) -> int:
    """The rule: this run's share of the free cores, rounded down unless it is within a quarter of a
    core of the next whole one (noise from the terminal or the system), between 1 and ``most``."""
    share = max(0.0, free_cores) / max(1, runs_here)
    return max(1, min(most, math.floor(share + 0.25)))


def _usable_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds (monotonic)
    busy: float  # CPU-seconds any process spent on the CPUs this process may use
    own: float  # CPU-seconds this process spent


def read_sample(cpus: set[int] | None = None) -> Sample | None:
    """The kernel's per-CPU busy time (all but idle and I/O wait) and this process's CPU time, or
    ``None`` where the counters cannot be read."""
    cpus = _usable_cpus() if cpus is None else cpus
    try:
        with open(PROC_STAT, "rb") as f:
            lines = f.read(1 << 20).decode("ascii", "replace").splitlines()
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None
    busy = 0
    for line in lines:
        head, _, rest = line.partition(" ")
        if not head.startswith("cpu") or head == "cpu":
            continue
        try:
            n = int(head[3:])
            fields = [int(v) for v in rest.split()]
        except ValueError:
            continue
        if cpus is not None and n not in cpus:
            continue
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        busy += sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return Sample(time.monotonic(), busy / tick, time.process_time())


def others_cores(a: Sample, b: Sample) -> float:
    """Cores other processes used between two samples."""
    wall = b.wall - a.wall
    if wall <= 0:
        return 0.0
    return max(0.0, ((b.busy - a.busy) - (b.own - a.own)) / wall)


class ThreadGovernor:
    """Sets the calling thread's PyTorch thread count for one training run. Make it before preparing
    (its first look spans the preparation), :meth:`start` it in the thread that trains, call :meth:`tick`
    every step, :meth:`close` at the end (the thread's previous count comes back)."""

    def __init__(self, fixed: int | None = None, *, most: int | None = None,
                 meter: Callable[[], Sample | None] = read_sample, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.fixed = check_threads(fixed)
        self.most = most or _DEFAULT_THREADS
        self.meter, self.clock, self.sleep = meter, clock, sleep
        self.threads = self.fixed or torch.get_num_threads()
        self.note = ""
        self._last = meter() if self.fixed is None else None
        self._next_look = math.inf
        self._before: int | None = None

    def start(self) -> int:
        """Choose and set the thread count; returns it (:attr:`note` says why)."""
        self._before = torch.get_num_threads()
        with _runs_lock:
            _runs_here.add(id(self))
        if self.fixed is not None:
            self.note = f"{self.fixed} thread{'s' * (self.fixed > 1)} (fixed by --threads)"
            self._set(self.fixed)
            return self.threads
        if self._last is not None:
            waited = self.clock() - self._last.wall
            if waited < FIRST_LOOK_S:
                self.sleep(FIRST_LOOK_S - waited)
        self._look()
        return self.threads

    def tick(self) -> None:
        if self.clock() >= self._next_look:
            self._look()

    def close(self) -> None:
        with _runs_lock:
            _runs_here.discard(id(self))
        if self._before is not None:
            torch.set_num_threads(self._before)
            self._before = None

    def _look(self) -> None:
        now = self.meter()
        if now is None or self._last is None:  # no counters here: PyTorch's default
            self._next_look = math.inf
            self.note = f"{self.threads} thread{'s' * (self.threads > 1)} (PyTorch's default)"
            return
        others = others_cores(self._last, now)
        with _runs_lock:
            runs = max(1, len(_runs_here))
        n = choose(self.most - others, runs, self.most)
        why = [f"other processes use {others:.1f} of {self.most} cores" if others >= 0.25 else
               f"{self.most} cores free"]
        if runs > 1:
            why.append(f"shared by {runs} runs here")
        self.note = f"{n} of {self.most} threads: {', '.join(why)}"
        self._last, self._next_look = now, self.clock() + CHECK_EVERY_S
        self._set(n)

    def _set(self, n: int) -> None:
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        self.threads = n
