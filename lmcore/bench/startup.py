"""``lmcore bench --startup [--runs N] [--json]``: how long the command line and the app take to start.

Each command runs ``--runs`` times (default 7), the commands taking turns, each time as a new process
(``python3 -m lmcore ...``: it imports what the ``lmcore`` command does) on a temporary data folder that
holds one tiny trained model and one damaged model; the figure is the median wall time from starting
the process to its exit. ``lmplay`` runs in an 80x24 pseudo-terminal: its figure is the time until the
picker shows the saved model's name (then ctrl+q quits it). The commands import the ``lmcore`` and
``tui`` beside this file, so a checkout measures its own code; to measure an earlier commit, copy this
file into a worktree of it (``git worktree add /tmp/before <commit>``) and run
``python3 -m lmcore.bench.startup`` there."""
from __future__ import annotations

import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError, LmError

MODEL = "bench-tiny"
COMMANDS = (("--version",), ("--help",), ("models",), ("models", "--json"), ("corpora",),
            ("models", "show", MODEL))
ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|[@-Z\\-_])")


def prepare_home(home: Path) -> None:
    """One tiny trained model and one damaged model (meta.json cut short)."""
    from ..training.trainer import train

    done = train(MODEL, preset="tiny", corpus="pythondocs", steps=5, eval_every=5, home=home)
    if done.kind != "done":
        raise LmError(f"could not train the tiny model to start with: {done.message}")
    broken = home / "models" / "bench-damaged"
    broken.mkdir(parents=True)
    (broken / "meta.json").write_text('{"name": "bench-dam', "utf-8")


def _env(home: Path) -> dict:
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds this lmcore (and tui)
    env = dict(os.environ, LMPLAY_HOME=str(home), COLUMNS="80", LINES="24", TERM="xterm-256color")
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def time_command(args: tuple[str, ...], home: Path, cwd: Path) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "lmcore", *args], env=_env(home), cwd=cwd,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t0
    if r.returncode != 0:
        raise LmError(f"`lmcore {' '.join(args)}` failed: {r.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    return elapsed


def time_picker(home: Path, cwd: Path, timeout: float = 60.0) -> float:
    """Seconds from starting ``lmplay`` in an 80x24 pseudo-terminal to the picker showing the model."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "tui"], stdin=slave, stdout=slave, stderr=slave,
                            env=_env(home), cwd=cwd, start_new_session=True)
    os.close(slave)
    seen, elapsed = b"", None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the app exited
                    break
                if MODEL in ANSI.sub("", seen.decode("utf-8", "replace")):
                    elapsed = time.perf_counter() - t0
                    break
            elif proc.poll() is not None:
                break
        if elapsed is not None:
            os.write(master, b"\x11")  # ctrl+q
            _drain_until_exit(master, proc, 30.0)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    if elapsed is None:
        tail = ANSI.sub("", seen.decode("utf-8", "replace"))[-300:]
        raise LmError(f"lmplay did not show its picker in {timeout:.0f} s: {tail!r}")
    return elapsed


def _drain_until_exit(master: int, proc, timeout: float) -> None:
    t0 = time.perf_counter()
    while proc.poll() is None and time.perf_counter() - t0 < timeout:
        if select.select([master], [], [], 0.05)[0]:
            try:
                os.read(master, 65536)
            except OSError:
                break


def measure(runs: int, picker: bool = True) -> dict:
    """Median seconds of each command (and of ``lmplay`` to its picker) over ``runs`` runs, interleaved."""
    with tempfile.TemporaryDirectory(prefix="lmcore-startup-") as tmp:
        home, cwd = Path(tmp) / "home", Path(tmp)
        prepare_home(home)
        times: dict[str, list[float]] = {"lmcore " + " ".join(c): [] for c in COMMANDS}
        if picker:
            times["lmplay (to the picker)"] = []
        for _ in range(runs):
            for c in COMMANDS:
                times["lmcore " + " ".join(c)].append(time_command(c, home, cwd))
            if picker:
                times["lmplay (to the picker)"].append(time_picker(home, cwd))
    return {k: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3), "max_s": round(max(v), 3)}
            for k, v in times.items()}


def _load_line() -> str:
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"
    except OSError:
        return f"{os.cpu_count()} cores"


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python3 -m lmcore.bench.startup", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--no-picker", action="store_true", help="only the lmcore commands")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        return run(args.runs, not args.no_picker, args.json)
    except LmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(runs: int, picker: bool, as_json: bool) -> int:
    from ..safe_text import strict_json

    if runs < 1:
        raise ConfigError(f"--runs must be at least 1 (got {runs})")
    before = _load_line()
    rows = measure(runs, picker)
    after = _load_line()
    if as_json:
        print(strict_json({"runs": runs, "load_before": before, "load_after": after, "commands": rows}))
        return 0
    print(f"start-up, median of {runs} runs (from {before}; after: {after}):")
    width = max(map(len, rows))
    for k, v in rows.items():
        print(f"  {k:{width}s}  {v['median_s']:6.3f} s   (min {v['min_s']:.3f}, max {v['max_s']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
