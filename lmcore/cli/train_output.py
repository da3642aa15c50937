"""What ``lmcore train`` shows while it runs: the progress of preparation, the events of training (a progress
bar and lines, or JSON lines), the summary at the end; and the signals that stop it."""
from __future__ import annotations

import os
import signal
import sys
import threading

from .output import _out, _v


class OtherRank:
    """The renderer of processes other than rank 0 under torchrun: silent, but for this process's own
    error (one line on standard error)."""

    def __init__(self, rank: int):
        self.rank, self.quiet = rank, False

    def __call__(self, ev):
        pass

    def close(self):
        pass

    def summary(self, result, store) -> int:
        if result.kind == "done":
            return 0
        if not self.quiet:
            print(f"error (process {self.rank}): {_v(result.message)}", file=sys.stderr)
        return 1


class PrepareProgress:
    """A progress bar on stderr while a corpus downloads or is tokenized (nothing when it is cached)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar, self.task, self.what = enabled and sys.stderr.isatty(), None, None, None

    def __call__(self, what: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeRemainingColumn

            self.bar = Progress("[progress.description]{task.description}", BarColumn(), TaskProgressColumn(),
                                TimeRemainingColumn(), transient=True, console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task(what, total=None)
        self.bar.update(self.task, description=what, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class StopSignals:
    """Ctrl+C, SIGTERM and SIGHUP stop training after the current step and save; a second one aborts
    at once (the last saved checkpoint stays: saves are atomic)."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self, stop: threading.Event, quiet: bool, echo: bool = True):
        self.stop, self.quiet, self.old, self.echo = stop, quiet, {}, echo

    def _handle(self, signum, frame):
        if self.stop.is_set():
            os.write(2, b"\naborted: the last saved checkpoint is kept\n")
            os._exit(130)
        self.stop.set()
        name = signal.Signals(signum).name
        if self.echo:  # under torchrun: process 0 only
            os.write(2, f"\n{name}: stopping after this step and saving (again to abort)\n".encode())

    def __enter__(self):
        for n in self.SIGNALS:
            if hasattr(signal, n):
                self.old[n] = signal.signal(getattr(signal, n), self._handle)
        return self

    def __exit__(self, *exc):
        for n, h in self.old.items():
            signal.signal(getattr(signal, n), h)


def fill_words(top1: float | None, top5: float | None, best: str = "") -> str:
    """", fill: top-1 41.5%, top-5 63.0%" (", best fill: ..." with ``best``), or "" when not measured."""
    if top1 is None or top5 is None:
        return ""
    return f", {best}fill: top-1 {100 * top1:.1f}%, top-5 {100 * top5:.1f}%"


class JsonRender:
    def __init__(self, name: str):
        self.name = name

    def __call__(self, ev):
        _out(ev.to_dict())

    def close(self):
        pass

    def summary(self, result, store) -> int:
        ok = result.kind == "done" and result.saved  # stopped before the first step: nothing trained or saved
        d = {"event": "summary", "name": self.name, "ok": ok, "step": result.step}
        if result.kind == "done":
            d.update(reason=result.reason, saved=result.saved, steps_trained=result.steps_trained,
                     best_val_loss=result.best_val_loss, best_val_ppl=result.best_val_ppl,
                     elapsed=round(result.elapsed, 3), tokens_per_s=round(result.tokens_per_s, 1),
                     best_val_fill_top1=result.best_val_fill_top1, best_val_fill_top5=result.best_val_fill_top5,
                     **{k: round(v, 6) for k, v in result.metrics.items()})
            if result.best_val_bleu is not None:  # a pairs model
                d.update(best_val_bleu=result.best_val_bleu, best_val_exact=result.best_val_exact)
        else:
            d["error"] = result.message
        _out(d)
        return 0 if ok else 1


class HumanRender:
    def __init__(self, name: str):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=False)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=self.console,
                                 disable=not self.console.is_terminal)
        self.task = None
        self.name = name

    def __call__(self, ev):
        from rich.markup import escape

        p = self.progress
        if ev.kind == "start":
            p.start()
            self.console.print(f"training [bold]{ev.name}[/]: {escape(ev.model or ev.arch)}, {ev.params:,} parameters, "
                               f"vocabulary {ev.vocab_size}, {ev.train_tokens:,} training / {ev.val_tokens:,} "
                               f"validation tokens, on {escape(_v(ev.device))}" +
                               (f", continuing at step {ev.step:,}" if ev.step else "") +
                               (f"; {escape(ev.threads)}" if ev.threads else ""))
            if ev.auto:
                self.console.print(escape(ev.auto))
            total = ev.steps or (ev.minutes * 60 if ev.minutes else None)
            self.by_time = ev.steps is None
            self.t0 = 0.0
            self.task = p.add_task(self.name, total=total, completed=0 if self.by_time else ev.step, info="")
        elif ev.kind == "step":
            eta = f"ETA {int(ev.eta) // 60}:{int(ev.eta) % 60:02d}" if ev.eta is not None else ""
            info = (f"step {ev.step:,}  loss {ev.loss:.4f}  ppl {ev.ppl:.3f}  {ev.tokens_per_s:,.0f} tok/s  "
                    f"lr {ev.lr:.2e}  {eta}")
            p.update(self.task, completed=ev.elapsed if self.by_time else ev.step, info=info)
            if not self.console.is_terminal and ev.step % 100 == 0:
                self.console.print(info)
        elif ev.kind == "eval":
            star = " (best, saved)" if ev.improved else ""
            pairs = (f", BLEU {ev.bleu:.3f} (corpus {ev.corpus_bleu:.3f}), exact match {ev.exact:.1%}"
                     if ev.bleu is not None else "")
            self.console.print(f"step {ev.step:,}: validation loss {ev.val_loss:.4f}, perplexity {ev.val_ppl:.3f}"
                               f"{pairs}{star}")
            if ev.metrics:
                from ..store.checkpoint import OWN_METRICS

                self.console.print("  " + ", ".join(f"{OWN_METRICS.get(k, k)} {v:.4f}" for k, v in ev.metrics.items()))
            if ev.fill_top1 is not None:
                self.console.print("  fill" + fill_words(ev.fill_top1, ev.fill_top5)[len(", fill"):], highlight=False)
            if ev.sample and ev.bleu is not None:  # a pairs model: a validation source and its reply
                self.console.print("  reply: " + repr(ev.sample[:160]), markup=False, highlight=False)
            elif ev.sample:
                self.console.print("  sample: " + repr(ev.sample[:160]), markup=False, highlight=False)
                self.console.print("  greedy: " + repr(ev.greedy[:160]), markup=False, highlight=False)
        elif ev.kind == "failed":
            self.progress.stop()

    def close(self):
        self.progress.stop()

    def summary(self, result, store) -> int:
        if result.kind != "done":
            print(f"error: {_v(result.message)}", file=sys.stderr)
            return 1
        how = result.how
        if not result.saved:  # a failure for a script: this run did nothing
            print(f"{how} before the first step: nothing was trained or saved", file=sys.stderr)
            return 1
        print(f"{how} at step {result.step:,} ({result.steps_trained:,} steps this run): best validation perplexity "
              f"{result.best_val_ppl:.3f} (loss {result.best_val_loss:.4f})"
              f"{fill_words(result.best_val_fill_top1, result.best_val_fill_top5, 'best ')}, "
              f"{result.tokens_per_s:,.0f} tokens/s.")
        if result.best_val_bleu is not None:
            print(f"best validation BLEU {result.best_val_bleu:.3f}, exact match {result.best_val_exact:.1%}.")
        model = store.read(self.name).model if store.check(self.name).ok else None
        use = (f"Fill: lmcore fill {self.name} --text \"… _ …\"" if model is not None and not model.family.can_generate(model)
               else f"Generate: lmcore generate {self.name} --prompt \"…\"")
        print(f"saved as '{self.name}' in {_v(store.root)}. {use}")
        if result.reason == "stopped":
            print(f"continue with: lmcore train {self.name} --resume")
        elif result.steps_trained > 0 and store.check(self.name).ok and store.read(self.name).model_trainable:
            print(f"train more with: lmcore train {self.name} --resume --steps N (or --minutes M)")
        return 0

