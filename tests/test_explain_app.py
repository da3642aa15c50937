"""Every view explains itself: each Inspect view, the training chart and the comparisons carry a line
saying what they show, f1 opens the shown view's note (what it shows, how to read it, the d2l chapter;
Esc closes), the charts' axes have labels, and comparisons show each model's budget and warn when the
budgets differ by more than 2x."""
import html
import re

import pytest

from lmcore import Store
from lmcore.inspect import EXPLANATIONS
from tui.app import create_app
from tui.screens.compare import CompareScreen
from tui.screens.docs import DocScreen

from . import factories
from .tui_helpers import open_inspect, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")


def screen_text(app) -> str:
    """The screen as the user reads it: the screenshot's text, row by row."""
    rows: dict[float, list] = {}
    for m in re.finditer(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', app.export_screenshot()):
        rows.setdefault(float(m.group(2)), []).append((float(m.group(1)), html.unescape(m.group(3))))
    return "\n".join("".join(t for _, t in sorted(r)).replace("\xa0", " ") for _, r in sorted(rows.items()))


def save(store, name: str, arch: str, seconds: float) -> None:
    ck, state = factories.checkpoint(name, arch, step=10)
    ck.elapsed = seconds
    store.save(name, ck, state)


def test_every_line_fits_80_columns_and_every_note_names_its_chapter():
    for view, e in EXPLANATIONS.items():
        assert len(e.line) <= 76, view
        assert e.chapter.startswith("d2l ") and e.chapter in e.markdown()
    assert "c h i f o" in EXPLANATIONS["neurons"].line and "saturated" in EXPLANATIONS["neurons"].note
    assert "3.5e+08x" in EXPLANATIONS["gradients"].note and "vanishing" in EXPLANATIONS["gradients"].note


async def test_f1_opens_the_note_of_the_shown_inspect_view(home):
    save(Store(home), "m", "lstm", 60.0)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_inspect(pilot, app, "surprisal", None, shown=False)
        model_screen = app.screen
        for view, key in (("surprisal", "surprisal"), ("neurons", "neurons"), ("attention", "attention")):
            pane.query_one("#inspect-views").active = f"view-{view}"
            await wait_for(pilot, lambda: EXPLANATIONS[key].line in str(pane.query_one("#inspect-state").render()))
            await pilot.press("f1")
            await wait_for(pilot, lambda: isinstance(app.screen, DocScreen))
            assert f"# {EXPLANATIONS[key].title}" in app.screen.text and EXPLANATIONS[key].chapter in app.screen.text
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is model_screen)
        pane.query_one("#inspect-views").active = "view-neurons"
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, DocScreen))
        text = app.screen.text
        assert "d2l 10.1 Long Short-Term Memory" in text and "forget gate" in text and "saturated" in text
        await pilot.press("escape")
        await pilot.press("f2")  # the Train tab: the chart's note
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, DocScreen))
        assert "# Training chart" in app.screen.text and "d2l 9.3" in app.screen.text
        await pilot.press("escape")
        await pilot.press("f3")  # elsewhere: the keys, as before
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, DocScreen))
        assert "# lmplay keys" in app.screen.text


async def test_the_gradient_chart_labels_both_axes_and_its_note_explains_the_ratio(home):
    save(Store(home), "m", "lstm", 60.0)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await open_inspect(pilot, app, "gradients", None)
        shown = screen_text(app)
        assert "gradient norm" in shown and "steps back through time (k)" in shown, shown
        assert EXPLANATIONS["gradients"].line in shown
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, DocScreen))
        assert "Backpropagation Through Time" in app.screen.text and "exploding" in app.screen.text
        assert pane is not None


async def test_the_training_chart_labels_both_axes(home):
    save(Store(home), "m", "lstm", 60.0)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        await pilot.press("f2")
        await wait_for(pilot, lambda: "step (optimizer updates)" in screen_text(app))
        assert EXPLANATIONS["training"].line in screen_text(app)


async def _compare(pilot, app) -> CompareScreen:
    await pilot.pause()
    await pilot.press("c")
    await pilot.press("down", "space", "tab", "tab", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
    return app.screen


async def test_the_compare_screen_warns_when_budgets_differ_3x(home):
    store = Store(home)
    save(store, "lstm-5m", "lstm", 300.0)
    save(store, "rnn-90s", "rnn", 90.0)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compare(pilot, app)
        await pilot.pause()
        shown = screen_text(app)
        assert "⚠ budgets differ: lstm-5m trained 5.0 min, rnn-90s 1.5 min (3.3x)" in shown, shown
        assert "compare at equal budgets" in shown and EXPLANATIONS["arena"].line in shown
        info = [str(c.query_one(".arena-info").render()) for c in screen.arena.columns]
        assert info[0].startswith("5.0 min · ") and info[1].startswith("1.5 min · ") and "params" in info[0]
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, DocScreen))
        assert "# Arena" in app.screen.text and "equal budgets" in app.screen.text
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        await pilot.press("ctrl+b", "b")  # the ranking: the selected model's budget and its corpus's warning
        await wait_for(pilot, lambda: "budgets differ" in str(app.screen.query_one("#picker-detail").render()))
        assert "trained 5.0 min" in str(app.screen.query_one("#picker-detail").render())


async def test_the_compare_screen_says_nothing_at_1_5x(home):
    store = Store(home)
    save(store, "lstm-a", "lstm", 150.0)
    save(store, "rnn-b", "rnn", 100.0)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compare(pilot, app)
        await pilot.pause()
        assert "budgets differ" not in screen_text(app)
        assert not screen.query_one("#compare-budgets").display
        info = [str(c.query_one(".arena-info").render()) for c in screen.arena.columns]
        assert info[0].startswith("2.5 min · ") and info[1].startswith("1.7 min · ")
