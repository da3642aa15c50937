"""Speed of the app, measured the way a user meets it: ``python3 -m tui.bench [--tokens N] [--json]``.

- generation: characters per second streamed into the Generate tab at 80x24 (colouring off and on),
  against the same model generating headless (``Generator.stream``), median of three runs each;
- key press to screen: from a key event reaching the app to the widget it changes showing the change,
  while the app trains a model and while it generates (the median and the worst of 20 presses).

It runs the real app headless (Textual's test driver) on a temporary data folder, with a model of the
default architecture (an LSTM) and the ``small`` preset trained for a few steps on the built-in corpus.
Keys are sent to the driver directly: Pilot.press waits for the whole process to be idle, which never
happens while a model trains."""
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lmcore
from textual import events
from textual.widgets import Input, Static

from .app import create_app
from .screens.model import ModelScreen


async def _until(predicate, timeout: float = 120.0, step: float = 0.001) -> float:
    """Wait for ``predicate`` (cheap: it runs in the app's thread, every ``step`` seconds)."""
    t0 = time.perf_counter()
    while not predicate():
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError("the app did not get there in time")
        await asyncio.sleep(step)
    return time.perf_counter() - t0


def _key(app, key: str) -> None:
    app._driver.send_message(events.Key(key, None))  # as a terminal would deliver it


async def _press_latency(app, key: str, changed) -> float:
    """Seconds from the key event to ``changed()`` being true."""
    t0 = time.perf_counter()
    _key(app, key)
    await _until(changed)
    return time.perf_counter() - t0


def _headless_rate(home: Path, name: str, n: int) -> float:
    gen = lmcore.Generator.from_store(lmcore.Store(home), name)
    s = lmcore.SamplingSettings(temperature=0.8, max_tokens=n, seed=1)
    gen.complete("The ", lmcore.SamplingSettings(max_tokens=20, seed=0))  # warm-up
    t0 = time.perf_counter()
    text = gen.complete("The ", s)
    return len(text) / (time.perf_counter() - t0)


async def _app_generation(home: Path, n: int, colour: bool) -> float:
    app = create_app(home)
    done = asyncio.Event()  # set by the app's own message: the measurement does not poll the app

    def hook(message) -> None:
        if type(message).__name__ == "GenerationFinished":
            done.set()

    async with app.run_test(size=(80, 24), message_hook=hook) as pilot:
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, ModelScreen))
        gen = app.screen.generation
        gen.query_one("#set-max_tokens", Input).value = str(n)
        gen.query_one("#set-seed", Input).value = "1"
        if gen.colour != colour:
            gen.query_one("#colour").toggle()
        await pilot.pause()
        for _ in range(2):  # the first run loads the model (cached after): the second is measured
            gen.query_one("#prompt", Input).value = "The "
            done.clear()
            t0 = time.perf_counter()
            _key(app, "enter")
            await asyncio.wait_for(done.wait(), 300)
            elapsed = time.perf_counter() - t0
            await pilot.pause()
        chars = len(gen.query("Continuation").last().plain)
    return chars / elapsed


async def _latencies(home: Path, presses: int) -> dict:
    """ctrl+up (temperature) while generating; t (the chart's x axis) while training."""
    app = create_app(home)
    out = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await _until(lambda: isinstance(app.screen, ModelScreen))
        screen = app.screen
        gen = screen.generation
        gen.query_one("#set-max_tokens", Input).value = "1000000"
        gen.query_one("#prompt", Input).value = "The "
        _key(app, "enter")
        await _until(lambda: gen.generating and gen.query("Continuation") and gen.query("Continuation").last().tokens)
        label = gen.query_one("#temp-value", Static)
        lat = []
        for i in range(presses):
            before = str(label.render())
            lat.append(await _press_latency(app, "ctrl+up" if i % 2 == 0 else "ctrl+down",
                                            lambda: str(label.render()) != before))
            await asyncio.sleep(0.05)
        out["generating"] = lat
        gen.stop_event.set()
        await _until(lambda: not gen.generating)
        screen.action_show_tab("train")
        panel = screen.training
        panel.query_one("#steps", Input).value = "100000"
        _key(app, "s")
        chart = panel.query_one("PerplexityChart")
        await _until(lambda: len(chart.train) >= 2)
        lat = []
        for _ in range(presses):
            before = chart.by_time
            lat.append(await _press_latency(app, "t", lambda: chart.by_time != before))
            await asyncio.sleep(0.05)
        out["training"] = lat
        await app.quit_and_wait()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m tui.bench", description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=2000, help="characters generated per run")
    p.add_argument("--presses", type=int, default=20)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        lmcore.train("bench-model", preset="small", corpus="pythondocs", steps=5, eval_every=5, home=home)
        arch = lmcore.Store(home).read("bench-model").model.arch  # the default architecture
        headless = statistics.median(_headless_rate(home, "bench-model", args.tokens) for _ in range(3))
        plain = statistics.median(asyncio.run(_app_generation(home, args.tokens, False)) for _ in range(3))
        coloured = statistics.median(asyncio.run(_app_generation(home, args.tokens, True)) for _ in range(3))
        lat = asyncio.run(_latencies(home, args.presses))
    rows = {
        "generate_chars_per_s": {"headless": round(headless), "app": round(plain), "app_coloured": round(coloured),
                                 "app_vs_headless": round(plain / headless, 3),
                                 "coloured_vs_plain_time": round(plain / coloured, 3)},
        "key_to_screen_ms": {k: {"median": round(statistics.median(v) * 1000, 1), "max": round(max(v) * 1000, 1)}
                             for k, v in lat.items()},
    }
    if args.json:
        print(lmcore.strict_json(rows))
    else:
        g = rows["generate_chars_per_s"]
        print(f"generation, {arch} small, {args.tokens} chars at 80x24: headless {g['headless']:,}/s, "
              f"app {g['app']:,}/s ({g['app_vs_headless']:.2f}x), coloured {g['app_coloured']:,}/s "
              f"(takes {g['coloured_vs_plain_time']:.2f}x the plain time)")
        for k, v in rows["key_to_screen_ms"].items():
            print(f"key press to screen while {k}: median {v['median']} ms, worst {v['max']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
