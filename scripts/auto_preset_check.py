"""Checks ``--preset auto`` against issue 26's two promises, by training (this takes hours at the full
budgets: 2 corpora × 4 budgets × (auto + 3 presets) per architecture; run it on an otherwise idle machine):

- never worse with more time: for every architecture with gradients and each corpus, auto's best
  validation loss does not increase with the budget (within 0.01);
- no worse than a fixed preset: at each budget auto is within 0.01 of the best fixed preset.

    python3 scripts/auto_preset_check.py                         # every family, 1 / 2.2 / 5 / 10 minutes
    python3 scripts/auto_preset_check.py --arch lstm --minutes 0.05 --minutes 0.1 --preset small   # a smoke run
    python3 scripts/auto_preset_check.py --results runs.jsonl ...   # keep each run; a second sitting reuses them

``--results FILE`` appends each finished run to FILE (one JSON line: machine, date, corpus, architecture,
budget, preset, best loss, auto's line) and reads back the runs of this machine already there instead of
training them again, so the full table can be filled over several sittings (delete the file when the rule
changes: auto's rows would be the old rule's).

Corpora come from ../shared/corpora (timemachine.txt, tinyshakespeare.txt) or --corpus PATH. Prints one
markdown table (corpus, architecture, budget, auto's loss and line, each preset's loss) and the failed
checks; exits 1 when a check fails."""
from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import lmcore  # noqa: E402
from lmcore.models import PRESET_NAMES, families  # noqa: E402

TOLERANCE = 0.01
SHARED = ROOT.parent / "shared" / "corpora"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", action="append", help="architectures (default: every one with gradients)")
    p.add_argument("--corpus", action="append", help="corpus paths (default: ../shared/corpora's two)")
    p.add_argument("--minutes", action="append", type=float, help="budgets (default 1, 2.2, 5, 10)")
    p.add_argument("--preset", action="append", choices=PRESET_NAMES, help="fixed presets (default: all)")
    p.add_argument("--home", help="data folder for the runs (default: a temporary one)")
    p.add_argument("--results", help="a JSON-lines file that keeps each run and gives back this machine's")
    return p.parse_args(argv)


def machine() -> str:
    """The CPU (model, cores, threads) the runs are measured on, as the calibration names it."""
    import torch

    from lmcore.training.calibrate import device_key
    return device_key(torch.device("cpu"))


class Results:
    """The runs kept in a JSON-lines file (``--results``): this machine's read back, new ones appended."""

    def __init__(self, path: str | None):
        self.path, self.here, self.kept = path, machine(), {}
        if path and Path(path).exists():
            for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    r = json.loads(line)
                    key = (r["corpus"], r["arch"], float(r["minutes"]), r["preset"])
                    loss = float(r["loss"])
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short (a sitting stopped while writing) or not a run
                if r.get("machine") == self.here:
                    self.kept[key] = (loss, str(r.get("line", "")))

    def get(self, key: tuple) -> tuple[float, str] | None:
        return self.kept.get(key)

    def add(self, key: tuple, loss: float, line: str) -> None:
        if not self.path or not math.isfinite(loss):  # a failed run is tried again next time
            return
        corpus, arch, minutes, preset = key
        row = {"machine": self.here, "date": time.strftime("%Y-%m-%d %H:%M"), "corpus": corpus, "arch": arch,
               "minutes": minutes, "preset": preset, "loss": loss, "line": line}
        with open(self.path, "a+b") as f:
            cut = False
            if f.seek(0, 2) > 0:  # a line a stopped sitting left cut: ended first
                f.seek(-1, 2)
                cut = f.read(1) != b"\n"
            f.write((("\n" if cut else "") + json.dumps(row) + "\n").encode())


def best_loss(home: str, name: str, arch: str, preset: str, corpus: str, minutes: float) -> tuple[float, str]:
    """The best validation loss of one run, and (auto) the line saying what it chose."""
    starts = []
    done = lmcore.train(name, arch=arch, preset=preset, corpus=corpus, minutes=minutes, home=home,
                        on_event=lambda e: starts.append(e) if e.kind == "start" else None)
    if done.kind != "done":
        return float("nan"), getattr(done, "message", "failed")
    return done.best_val_loss, starts[0].auto if starts else ""


def check(rows: list[dict], presets) -> list[str]:
    """The failed checks, one line each."""
    failed = []
    for r in rows:
        fixed = min(r[p] for p in presets)
        if r["auto"] > fixed + TOLERANCE:
            failed.append(f"{r['corpus']} {r['arch']} {r['minutes']:g} min: auto {r['auto']:.3f} > best preset {fixed:.3f}")
    for a, b in zip(rows, rows[1:]):
        if (a["corpus"], a["arch"]) == (b["corpus"], b["arch"]) and b["auto"] > a["auto"] + TOLERANCE:
            failed.append(f"{b['corpus']} {b['arch']}: {b['minutes']:g} min ({b['auto']:.3f}) is worse than "
                          f"{a['minutes']:g} min ({a['auto']:.3f})")
    return failed


def main(argv=None) -> int:
    args = parse(argv)
    archs = args.arch or [a for f in families() if f.trainable for a in f.archs]
    corpora = args.corpus or [str(SHARED / f) for f in ("timemachine.txt", "tinyshakespeare.txt")]
    budgets, presets = sorted(args.minutes or [1, 2.2, 5, 10]), args.preset or list(PRESET_NAMES)
    home = args.home or tempfile.mkdtemp(prefix="auto-check-")
    rows, n, stamp = [], 0, time.strftime("%m%d-%H%M%S")  # run names new in a data folder used before
    results, reused = Results(args.results), 0
    print(f"| corpus | arch | minutes | auto | {' | '.join(presets)} | auto chose |")
    print("|" + "---|" * (5 + len(presets)))
    for corpus in corpora:
        for arch in archs:
            for minutes in budgets:
                row = {"corpus": Path(corpus).stem, "arch": arch, "minutes": minutes}
                for preset in ["auto", *presets]:
                    key = (row["corpus"], arch, float(minutes), preset)
                    kept = results.get(key)
                    if kept is not None:
                        (row[preset], line), reused = kept, reused + 1
                    else:
                        n += 1
                        row[preset], line = best_loss(home, f"check-{stamp}-{n}", arch, preset, corpus, minutes)
                        results.add(key, row[preset], line)
                    row["line"] = line if preset == "auto" else row["line"]
                rows.append(row)
                print(f"| {row['corpus']} | {arch} | {minutes:g} | {row['auto']:.3f} | "
                      + " | ".join(f"{row[p]:.3f}" for p in presets) + f" | {row['line']} |", flush=True)
    if reused:
        print(f"\n{reused} of the runs read back from {args.results} (this machine's, measured before)")
    failed = check(rows, presets)
    print("\n".join(["", "failed:", *failed]) if failed else "\nevery check passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
