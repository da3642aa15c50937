"""The lmplay App and its wiring. ``create_app`` takes the data folder and the trainer / generator
factories, so tests run it on a temporary home with whatever they need."""
from __future__ import annotations

import asyncio
import math
import time
import sys
from functools import partial
from typing import Callable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette, Hit, Hits, Provider

import lmcore
from lmcore import LmError

from .core import Core, cpu_cores
from .lessons import LessonRuns
from .messages import RunEvent, RunFinished, RunPreparing
from .screens.compare import ChooseModelsScreen, CompareScreen
from .screens.dialogs import MIN_SIZE, TooSmallScreen
from .screens.docs import DocScreen, about_text, help_text
from .screens.model import ModelScreen
from .screens.new_model import NewModelScreen
from .screens.picker import PickerScreen
from .textual_fixes import (guard_command_palette_closing, guard_dismiss_of_a_screen_not_on_top,
                            guard_option_list_paging, guard_select_closing, guard_stale_screen_resizes)

guard_option_list_paging()
guard_stale_screen_resizes()
guard_dismiss_of_a_screen_not_on_top()
guard_command_palette_closing()
guard_select_closing()


class LmplayCommands(Provider):
    """The main actions, in the command palette."""

    def _commands(self):
        app = self.app
        cmds = [("New model", "Create a model and train it", app.new_model),
                ("Models", "Back to the model picker", app.show_picker),
                ("Compare models", "Two to four models side by side: one prompt, or one text scored", app.compare_models),
                ("Learn", "The lessons: each chapter's claim as an experiment on your machine", app.show_learn),
                ("Help", "Keys and how things work", app.action_help)]
        # the screen under the palette offers its own (a model screen: train, stop, sampling…)
        cmds += getattr(self.screen, "palette_commands", list)()
        cmds += thread_commands(app)
        for e in app.core.list_models():
            if e.ok:
                cmds.append((f"Open {e.name}", f"{e.summary()['arch']} on {e.summary()['corpus']}",
                             partial(app.open_model, e.name)))
        return cmds

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, about, cb in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), cb, help=about)

    async def discover(self) -> Hits:
        for name, about, cb in self._commands():
            yield Hit(1.0, name, cb, help=about)


def thread_commands(app) -> list[tuple]:
    """"Threads: auto", "Threads: 1" … up to the machine's cores: the CPU threads of the runs the app
    starts from now on (remembered); the current choice is marked."""
    current = app.core.cpu_threads()
    about = "CPU threads of the training runs started from now on (auto: the cores other programs leave free)"
    return [(f"Threads: {'auto' if n is None else n}{' (current)' if n == current else ''}", about,
             partial(app.set_threads, n)) for n in (None, *range(1, cpu_cores() + 1))]


class LmplayApp(App):
    TITLE = "lmplay"
    SUB_TITLE = "train small language models, then play with them"
    CSS_PATH = str(lmcore.assets_dir() / "lmplay.tcss")
    COMMANDS = App.COMMANDS | {LmplayCommands}
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]  # a screen's class: 24 rows pack dialogs tighter
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="quit (training stops and saves)"),
        # in the picker's title line and the palette
        Binding("f1", "help", "Help", show=False, tooltip="this help"),
    ]

    def __init__(self, home=None, trainer_factory: Callable[..., lmcore.Trainer] | None = None,
                 generator_factory: Callable[..., lmcore.Generator] | None = None, opens: object = None) -> None:
        """``opens``: what shows over the picker at start: "learn" (the Learn screen) or a lesson (its screen)."""
        super().__init__()
        self.core = Core(self, home, trainer_factory, generator_factory)
        self.runs = self.core.runs  # the live runs: quitting stops them and waits until each has saved
        self.lessons = LessonRuns(self, self.core)  # the lessons running: their models train one by one
        self.opens = opens
        self.retry_choices: lmcore.RunSpec | None = None  # a failed start's spec, for the next n

    # ------------------------------------------------------------ start-up and settings
    def on_mount(self) -> None:
        theme = self.core.settings.get("theme")
        if theme in self.available_themes:
            self.theme = theme
        self._handle_signals()
        if msg := self.core.settings.problem_message():
            self.notify(msg, title="Settings", severity="warning", timeout=10)
        self.core.cpu_threads()  # a remembered value that is not valid says so now
        self.push_screen(PickerScreen())
        if self.opens == "learn":
            self.show_learn()
        elif self.opens is not None:
            self.open_lesson(*self.opens)
        self.call_after_refresh(self._warm_up)

    def _warm_up(self) -> None:
        """Once the picker is drawn, import torch in a thread: the app starts without waiting for it (the
        picker needs none of it), and opening or training a model finds it loaded."""

        def load() -> None:
            import torch  # noqa: F401

        self.run_worker(load, thread=True, group="warm-up", exit_on_error=False)

    def on_resize(self, event) -> None:
        """Below 80x24 a notice replaces the screen (controls would be cut); it goes when there is room.
        Nothing opens over the notice (``check_action``), so it is always the top screen while shown."""
        small = event.size.width < MIN_SIZE[0] or event.size.height < MIN_SIZE[1]
        top = self.screen_stack[-1] if self.screen_stack else None
        if small and not isinstance(top, TooSmallScreen):
            self.push_screen(TooSmallScreen())
        elif small:
            top.show_size(event.size)
        elif isinstance(top, TooSmallScreen):
            self.pop_screen()

    def action_command_palette(self) -> None:
        """The palette, without Textual's fixed id: opened again while the last one was still being taken
        down (ctrl+p, Esc, ctrl+p in one burst), that id was still taken (DuplicateIds ended the app)."""
        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(CommandPalette())

    def check_action(self, action: str, parameters) -> bool | None:
        """While the too-small notice shows, the app's keys open nothing over it (F1, ctrl+p): only quit."""
        if isinstance(self.screen, TooSmallScreen) and action != "quit":
            return False
        return super().check_action(action, parameters)

    def _handle_signals(self) -> None:
        """SIGTERM (``kill``) and SIGHUP (the terminal closed) stop every run; each saves; then the process
        exits. The handlers are plain signal handlers, not event-loop ones: after a hang-up the loop can
        be blocked writing to a terminal that is gone (Textual's writer queue), and the process must
        still end once the runs have saved."""
        import signal
        import threading

        if self.is_headless or threading.current_thread() is not threading.main_thread():
            return  # tests drive the app in their own process: its signals are theirs
        loop = asyncio.get_running_loop()

        def on_signal(signum, frame) -> None:
            self.runs.stop_all()
            hangup = signum == getattr(signal, "SIGHUP", None)
            threading.Thread(target=self._exit_when_saved, args=(hangup,), daemon=True).start()
            if not hangup:  # the terminal is still there: leave it as it was
                loop.call_soon_threadsafe(self.action_quit)

        for name in ("SIGTERM", "SIGHUP"):
            if hasattr(signal, name):
                try:
                    signal.signal(getattr(signal, name), on_signal)
                except (ValueError, OSError):
                    pass

    def _exit_when_saved(self, hangup: bool) -> None:
        """In a thread: once every run has saved, end the process if the app has not ended by itself."""
        import os

        self.runs.wait_closed(60.0)
        if not hangup:
            time.sleep(10.0)  # a normal quit restores the terminal and exits well before this
        os._exit(0)

    def watch_theme(self, theme: str) -> None:
        core = getattr(self, "core", None)  # None while the App sets its first theme
        if core is not None and theme != core.settings.get("theme"):
            core.remember("theme", theme)

    def set_threads(self, threads: int | None) -> None:
        """The palette's "Threads: …": remembered; the runs started from now on use it."""
        self.core.set_cpu_threads(threads)
        what = ("the cores other programs leave free (auto)" if threads is None else
                f"{threads} CPU thread{'s' * (threads > 1)}")
        keep = " (runs already training keep theirs)" if self.runs.runs else ""
        self.notify(f"Training runs started from now on use {what}{keep}.", title="Threads")

    def get_system_commands(self, screen):
        yield from super().get_system_commands(screen)
        yield SystemCommand("About lmplay", "Data folder, config file, device", self.action_about)

    # ------------------------------------------------------------ navigation and model actions
    def show_picker(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def open_model(self, name: str, spec: lmcore.RunSpec | None = None, start: bool = False) -> None:
        self.show_picker()
        self.push_screen(ModelScreen(name, spec, start))

    def show_learn(self) -> None:
        """The Learn screen: the lessons in order."""
        from .screens.learn import LearnScreen

        self.show_picker()
        self.push_screen(LearnScreen())

    def open_lesson(self, lesson, own_settings: bool = False) -> None:
        """A lesson's screen over the current one (``own_settings``: the file's, not the last run's)."""
        from .screens.lesson import LessonScreen

        self.push_screen(LessonScreen(lesson, own_settings))

    def compare_models(self, ticked: list[str] | None = None) -> None:
        """Choose the models to compare, then the compare screen (arena and same text)."""
        entries = [e for e in self.core.list_models() if e.ok]
        if len(entries) < 2:
            self.notify("Comparing needs two saved models or more: train another one first (n).", severity="warning")
            return

        def chosen(names: list[str] | None) -> None:
            if names:
                self.show_picker()
                self.push_screen(CompareScreen(names))

        self.push_screen(ChooseModelsScreen(entries, ticked or []), chosen)

    def new_model(self, choices: lmcore.RunSpec | None = None) -> None:
        """The new-model dialog; ``choices``: a failed start's spec, to fill it with (else the last failed
        start's that was not shown again yet, else the defaults)."""
        choices = choices or self.retry_choices
        self.retry_choices = None
        defaults = choices or self.core.default_spec()

        def created(spec: lmcore.RunSpec | None) -> None:
            if spec:
                self.open_model(spec.name, spec, start=True)

        self.push_screen(NewModelScreen(self.core.corpus_choices(), defaults, self.core.taken_names()), created)

    def on_run_event(self, message: RunEvent) -> None:
        """A run's event: to the screens and widgets that follow runs (its panel, the picker); its end, in
        a notification."""
        self.core.announce(message)
        e = message.event
        if e.kind == "done" and self.lessons.owns(message.name):
            pass  # a lesson's model: the lesson says when it is done
        elif e.kind == "done":
            how = e.how
            if e.saved:
                ppl = f"{e.best_val_ppl:.3f}" if e.best_val_ppl and math.isfinite(e.best_val_ppl) else "-"
                self.notify(f"Training {how} at step {e.step:,}: best validation perplexity {ppl}. "
                            f"Best checkpoint saved.", title=message.name)
            else:
                self.notify(f"Training {how} before the first step: nothing was saved.", title=message.name)
        elif e.kind == "failed":
            self.notify(e.message, title=f"Training stopped: {message.name}", severity="error", timeout=10)

    def on_run_preparing(self, message: RunPreparing) -> None:
        """A run's corpus is downloading or being tokenized: its panel and the picker say how far."""
        self.core.announce(message)

    def on_run_finished(self, message: RunFinished) -> None:
        run = self.runs.finished(message.name)
        in_lesson = self.lessons.run_finished(message.name, message.error, run)
        if not self.is_running:  # quitting: the run saved; nothing to show it on
            return
        if (message.error and not in_lesson and run is not None and run.spec is not None
                and not self.core.model_exists(message.name)):
            self._failed_start(message.name, run.spec, message.error)
        elif message.error:
            self.notify(message.error, title=f"Cannot train {message.name}", severity="error", timeout=10)
        self.core.announce(message)

    def _failed_start(self, name: str, choices: lmcore.RunSpec, error: str) -> None:
        """A new model that could not start (nothing saved): back to the dialog with the user's choices
        when its screen is shown, else they wait for the next n."""
        title = f"Cannot train {name}"
        if isinstance(self.screen, ModelScreen) and self.screen.model_name == name:
            self.pop_screen()
            self.notify(error, title=title, severity="error", timeout=10, markup=False)
            self.new_model(choices)
        else:
            self.retry_choices = choices
            self.notify(f"{error} (n opens the new-model dialog with the same choices.)", title=title,
                        severity="error", timeout=10, markup=False)

    def action_help(self) -> None:
        self.push_screen(DocScreen(help_text(self)))

    def action_about(self) -> None:
        self.push_screen(DocScreen(about_text(self)))

    # ------------------------------------------------------------ quitting
    def _signal_workers(self) -> None:
        self.core.quitting.publish(None)  # generations stop; a training panel shows "stopping (saving)…"
        self.lessons.stop_all()  # marked stopped: their runs save like any run
        self.runs.stop_all()

    def exit(self, *args, **kwargs) -> None:
        self._signal_workers()  # however the app ends, training stops (and saves) and generation ends
        super().exit(*args, **kwargs)

    def action_quit(self) -> None:
        """Stop every run (each saves) and generation, then exit once they are done. The waiting runs in
        a worker, so the screen keeps drawing ("stopping (saving)…") meanwhile. Asked once the app has
        ended (a SIGTERM or a closed tab that lands as it shuts down), it only tells the runs to stop."""
        if not self.is_running:
            self.runs.stop_all()
            return
        self.run_worker(self.quit_and_wait(), group="quit", exclusive=True)

    async def quit_and_wait(self) -> None:
        await self.shutdown_workers()
        self.exit()

    async def shutdown_workers(self, timeout: float = 60.0) -> None:
        if self.runs.runs:
            self.notify("Stopping: saving the best checkpoint…")
        self._signal_workers()
        await self.runs.wait_all(timeout)
        workers = [w for w in self.workers if w.group in ("generation", "scoring", "inspect", "text-source", "fill",
                                                            "lesson")]
        if workers:
            try:
                await asyncio.wait_for(asyncio.gather(*(w.wait() for w in workers), return_exceptions=True), 10)
            except asyncio.TimeoutError:
                pass


def create_app(home=None, trainer_factory=None, generator_factory=None, opens=None) -> LmplayApp:
    return LmplayApp(home, trainer_factory, generator_factory, opens)


def run(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="lmplay", description="Train small language models and play with them.")
    p.add_argument("--home", help="data folder (default: $LMPLAY_HOME or the user data dir)")
    p.add_argument("--version", action="version", version=f"lmplay {lmcore.__version__}")
    from .__main__ import add_learn_arguments

    add_learn_arguments(p)
    args = p.parse_args(argv)
    try:
        what = opens(args)
        app = create_app(args.home) if what is None else create_app(args.home, opens=what)
    except LmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app.run()
    return app.return_code or 0  # 1 when the app ended on an error


def opens(args):
    """What the app opens over the picker: "learn", (lesson, own settings) from --lesson (a lesson file, or
    a lesson's number; LmError: why not), or None."""
    if args.lesson is not None:
        import lmcore.lessons as L

        return L.find(args.lesson, args.home), not args.lesson.strip().isdigit()
    return "learn" if args.learn else None
