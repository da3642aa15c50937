"""A key storm: a seeded random sequence of the app's own keys, pressed fast across its screens, with the
terminal resized down to 1x1 and back between bursts; then the app must still answer and ctrl+q must end
it. Each wait is on a condition; a stuck event loop (which no await would ever notice) is caught by an
alarm signal, so the test fails instead of hanging."""
import asyncio
import importlib
import inspect
import pkgutil
import random
import signal
from contextlib import contextmanager

from textual import events
from textual.geometry import Size

from lmcore import Store
from tui.app import create_app

from .tui_helpers import ScriptedTrainer, fixed_entry, wait_for
from .waiting import DEADLINE

NAVIGATION = ["enter", "escape", "tab", "shift+tab", "up", "down", "left", "right", "home", "end", "pageup",
              "pagedown", "space", "y", "q", "a", "1"]
# keys that lead from the models to each screen (a burst of random keys follows each)
ROUTES = [["enter", "f2"], ["enter", "f3"], ["enter", "f4"], ["c", "down", "space", "tab", "tab", "enter"], ["n"],
          ["f1"], ["ctrl+p"], ["c", "down", "space", "tab", "tab", "enter", "f3"]]
PACE = 0.02  # seconds between a terminal's resize events while it is being resized
DRAG = [(1, 1), (80, 24), (1, 1), (2, 2), (80, 24), (1, 1), (80, 24)]
TINY = [(1, 1), (80, 24), (2, 1), (1, 30), (40, 10), (120, 40), (1, 1), (79, 23), (3, 2), (80, 24)]


def app_keys() -> list[str]:
    """Every key a screen or widget of the app binds (found by walking the package), but quit, and the
    keys that move around any screen."""
    import tui

    keys = set(NAVIGATION)
    for m in pkgutil.walk_packages(tui.__path__, "tui."):
        for _, cls in inspect.getmembers(importlib.import_module(m.name), inspect.isclass):
            if cls.__module__.startswith("tui.") and "BINDINGS" in cls.__dict__:
                keys.update(k.strip() for b in cls.__dict__["BINDINGS"] for k in b.key.split(","))
    keys.discard("ctrl+q")
    return sorted(keys)


@contextmanager
def answers_within(seconds: float = DEADLINE):
    """Fail (not hang) when the app's event loop does not come back within ``seconds``: a loop that
    never yields cannot be timed out by asyncio, but a signal handler runs between any two bytecodes."""
    def stuck(signum, frame):
        raise AssertionError(f"the app did not answer for {seconds:.0f} s: its event loop is stuck")

    previous = signal.signal(signal.SIGALRM, stuck)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)  # again every second: Textual catches the first ones
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _home_with_models(home) -> None:
    store = Store(home)
    fixed_entry(store, "lstm-timemachine")
    fixed_entry(store, "tf-timemachine", arch="transformer")
    fixed_entry(store, "ngram-timemachine", arch="ngram")


async def _quit(pilot, app) -> None:
    with answers_within():
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: app.return_code is not None)
    assert app.return_code == 0


async def test_resizing_fast_to_1x1_and_back_does_not_lock_up_the_app(home):
    """The terminal resized to 1x1 and back faster than the model screen lays out (20 ms apart, as tmux
    or a dragged window does): late Resize events re-posted themselves at their old sizes forever
    (a blank screen, ctrl+q ignored, the CPU busy)."""
    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        for _ in range(5):  # the race is the terminal's: five drags, each down to 1x1 and back
            with answers_within():
                for w, h in DRAG:
                    app.post_message(events.Resize(Size(w, h), Size(w, h)))
                    await asyncio.sleep(PACE)  # the terminal's pace, not a wait for the app
                await pilot.pause()
        assert type(app.screen).__name__ == "ModelScreen"
        assert all(s.size == app.size == Size(80, 24) for s in app.screen_stack[1:])
        await _quit(pilot, app)


async def test_page_keys_in_a_list_not_laid_out_yet_do_nothing_harmful():
    """PageDown in a list before its first layout with room (the compare dialog's list pressed the moment
    it opens, the command palette's while its results arrive) raised KeyError and ended the app. The
    app's fix to Textual's lists, on a list that never gets room."""
    from textual.app import App
    from textual.widgets import OptionList

    import tui.app  # noqa: F401 - importing the app applies its fixes to Textual

    class OneList(App):
        CSS = "OptionList { height: 0; }"

        def compose(self):
            yield OptionList(*(f"option {i}" for i in range(30)))

        def on_mount(self) -> None:
            self.query_one(OptionList).focus()

    app = OneList()
    async with app.run_test() as pilot:
        await pilot.press("pagedown", "pageup", "pagedown")
        assert app.is_running and app.return_code is None
        assert app.query_one(OptionList).has_focus


async def test_nothing_opens_over_the_too_small_notice(home):
    """F1 or ctrl+p at 1x1 opened the help or the palette over the notice, which then stayed under them
    when the terminal grew (a 'too small' notice at 80x24) or crashed on PageDown."""
    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.resize_terminal(1, 1)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "TooSmallScreen")
        await pilot.press("f1", "ctrl+p", "pagedown", "n", "enter")
        assert type(app.screen).__name__ == "TooSmallScreen"
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
        assert not [s for s in app.screen_stack if type(s).__name__ == "TooSmallScreen"]
        await _quit(pilot, app)


async def test_a_key_storm_across_screens_with_resizes_leaves_the_app_answering(home):
    _home_with_models(home)
    keys = app_keys()
    assert {"f1", "f4", "ctrl+r", "b", "c", "n", "s", "escape"} <= set(keys)
    rng = random.Random(25)
    app = create_app(home, trainer_factory=ScriptedTrainer)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            for burst in range(8):  # 320 keys, as fast as a terminal sends them, the terminal resized among them
                with answers_within():  # back to the models, then to the next screen (each key waited on)
                    while type(app.screen).__name__ != "PickerScreen":
                        await pilot.press("escape" if app.screen.is_modal else "ctrl+b")
                    await pilot.press(*ROUTES[burst % len(ROUTES)])
                for _ in range(40):
                    if rng.random() < 0.1:  # down to a tiny size (keys go on meanwhile), or back
                        w, h = rng.choice(TINY)
                        app.post_message(events.Resize(Size(w, h), Size(w, h)))
                    app.simulate_key(rng.choice(keys))
                with answers_within():  # then a drag: down to 1x1 and back at the terminal's pace
                    for w, h in DRAG:
                        app.post_message(events.Resize(Size(w, h), Size(w, h)))
                        await asyncio.sleep(PACE)  # the terminal's pace, not a wait for the app
                    await pilot.pause()
                # at 80x24 the too-small notice is gone, from under any window too
                assert not [s for s in app.screen_stack if type(s).__name__ == "TooSmallScreen"], burst
            await pilot.resize_terminal(80, 24)
            with answers_within():
                await wait_for(pilot, lambda: type(app.screen).__name__ != "TooSmallScreen")
            assert not [s for s in app.screen_stack if type(s).__name__ == "TooSmallScreen"]
            assert app.screen.size == Size(80, 24)
            await _quit(pilot, app)
    finally:
        app.runs.stop_all()
    entries = Store(home).list()
    assert entries and all(e.ok for e in entries), [(e.name, e.reason) for e in entries if not e.ok]


def test_lmplay_exits_1_when_the_app_ends_on_an_error(monkeypatch, capsys):
    """A storm that ends the app with a traceback must not look like a clean quit to the shell."""
    from textual.app import App

    import tui.app

    class Crashing(App):
        def on_mount(self) -> None:
            raise RuntimeError("a bug")

        def run(self, **kw):  # no terminal here: headless, as the tests run the app
            return super().run(headless=True)

    monkeypatch.setattr(tui.app, "create_app", lambda home=None: Crashing())
    assert tui.app.run([]) == 1


async def test_every_view_draws_in_the_ansi_themes(home):
    """The storm chose 'ansi-dark' from the palette's themes: the chart's legend, drawn with Rich in the
    theme's colours, raised MissingStyle ('ansi_cyan') and ended the app. Every view that colours its
    text, in both ANSI themes."""
    from textual.widgets import Input

    from .tui_helpers import open_inspect

    _home_with_models(home)
    for theme in ("ansi-dark", "ansi-light"):
        app = create_app(home, trainer_factory=ScriptedTrainer)
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                app.theme = theme
                pane = await open_inspect(pilot, app, "surprisal", "The Time Traveller was there.")
                assert "top 1" in str(pane.view.query_one(".view-summary").render())
                pane.query_one("#inspect-views").active = "view-gradients"
                await wait_for(pilot, lambda: getattr(pane.view, "shown", False))
                await pilot.press("f2", "s")  # the chart, its legend and reference lines
                chart = app.screen.training.query_one("PerplexityChart")
                await wait_for(pilot, lambda: len(chart.val) == 3 and chart.drawn)
                assert "val" in str(chart.query_one("#chart-label").render())
                await pilot.press("f3")
                gen = app.screen.generation
                gen.query_one("#colour").value = True
                gen.query_one("#set-max_tokens", Input).value = "20"
                gen.query_one("#prompt", Input).value = "The "
                await pilot.press("enter")
                await wait_for(pilot, lambda: not gen.generating and gen.query("Turn"))
                assert app.return_code is None and app.theme == theme
        finally:
            app.runs.stop_all()


async def test_a_turn_read_before_it_is_mounted_has_its_continuation(home):
    """The storm pressed ctrl+y (copy the last turn) and Esc the moment a prompt was sent: the new turn,
    not mounted yet, had no continuation to read (NoMatches ended the app)."""
    from tui.widgets.generation import Continuation, Turn

    app = create_app(home)
    async with app.run_test(size=(80, 24)):
        turn = Turn("The ", {"temperature": 0.8})
        assert isinstance(turn.continuation, Continuation)
        assert turn.to_json() == {"prompt": "The ", "text": "", "settings": {"temperature": 0.8}}


async def test_a_dialog_dismissed_twice_leaves_the_screen_under_it(home):
    """Two dismissing events queued on one dialog (a button clicked twice, Enter on the palette's list
    then its input) popped the dialog and then the models under it, down to an empty screen."""
    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("d")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        cancel = app.screen.query_one("#no")
        cancel.press()
        cancel.press()  # the second click, queued behind the first
        with answers_within():
            await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
            await pilot.pause()
        assert [type(s).__name__ for s in app.screen_stack][1:] == ["PickerScreen"]
        assert app.return_code is None
        await _quit(pilot, app)
    assert len(Store(home).list()) == 3  # Cancel, twice: nothing deleted


async def test_the_palette_closing_while_its_search_runs_does_not_end_the_app(home):
    """Results of the command palette's search that arrive once its list is gone (the palette closing)
    raised NoMatches in its worker and ended the app: the storm's ctrl+p, a letter, Enter, Esc. A search
    held until the list has gone makes the order certain."""
    from textual.command import CommandList, CommandPalette, Provider

    searching, release = asyncio.Event(), asyncio.Event()

    class HeldSearch(Provider):
        async def search(self, query):
            searching.set()
            await release.wait()
            for hit in ():  # nothing found: the list is to be hidden, and it is gone
                yield hit

    _home_with_models(home)
    app = create_app(home)
    app.COMMANDS = app.COMMANDS | {HeldSearch}
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        palette = app.screen
        app.simulate_key("j")  # a search starts (no other command has a j) …
        await wait_for(pilot, searching.is_set)
        await palette.query_one(CommandList).remove()  # … its list goes (the palette being taken down) …
        release.set()  # … and then its results come
        with answers_within():
            await wait_for(pilot, lambda: not [w for w in app.workers if w.is_running and "gather" in w.name])
            await pilot.pause()
        assert app.return_code is None and app.screen is palette
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
        await _quit(pilot, app)


async def test_a_window_whose_asker_has_gone_still_closes(home):
    """A window opened for an answer (the palette's theme picker is one) whose asking task was cancelled
    raised InvalidStateError when closed, and the app ended."""
    from tui.screens.dialogs import ConfirmScreen

    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        async def ask():
            return await app.push_screen(ConfirmScreen("Delete?"), wait_for_dismiss=True)

        asking = app.run_worker(ask())
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen")
        asking.cancel()
        await pilot.press("escape")
        with answers_within():
            await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
        assert app.return_code is None
        await _quit(pilot, app)
    assert len(Store(home).list()) == 3


async def test_a_search_starting_as_the_palette_closes_does_not_end_the_app(home):
    """The same, a moment earlier: a letter typed as the palette closed started a search with no list to
    fill at all (NoMatches in its worker, the app ended)."""
    from textual.command import CommandList, CommandPalette

    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        palette = app.screen
        app.simulate_key("o")  # a search is asked for …
        palette.query_one(CommandList).remove()  # … and the list goes before it starts
        with answers_within():
            await wait_for(pilot, lambda: not [w for w in app.workers if w.is_running and "gather" in w.name])
            await pilot.pause()
        assert app.return_code is None and app.screen is palette
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
        await _quit(pilot, app)


async def test_the_palette_opened_again_as_it_closes(home):
    """ctrl+p, Esc, ctrl+p in one burst: once in the storm (a seed of 30, by timing) the second palette
    took the first one's fixed id while the first was still being taken down (DuplicateIds ended the
    app); the app's palette has no fixed id now. This burst checks the app comes out of it answering."""
    from textual.command import CommandPalette

    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        for key in ("ctrl+p", "escape", "ctrl+p", "escape", "ctrl+p", "escape"):
            app.simulate_key(key)
        with answers_within():
            await pilot.pause()
        assert app.return_code is None
        while type(app.screen).__name__ != "PickerScreen":
            await pilot.press("escape")
        await pilot.press("ctrl+p")  # one palette, as ever
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
        await _quit(pilot, app)


async def test_a_select_asked_to_open_as_its_dialog_closes(home):
    """Enter on the new-model dialog's architecture list (it opens the list) as the dialog closed: the
    list was gone (NoMatches ended the app); so was a value shown on it."""
    _home_with_models(home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "NewModelScreen")
        arch = app.screen.query_one("#arch")
        arch.focus()
        await arch.query_one("SelectOverlay").remove()  # as when the dialog is taken down
        arch.action_show_overlay()
        arch.value = "gru"
        with answers_within():
            await pilot.pause()
        assert app.return_code is None
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
        await _quit(pilot, app)
