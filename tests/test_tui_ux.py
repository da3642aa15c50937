"""What a learner sees at 80x24: the help lists every key, messages quote names once, the screens keep
what matters above the fold, finished runs do not show a live ETA, settings are remembered."""
import re
from pathlib import Path

import pytest

import lmcore
from tui.app import create_app

from .tui_helpers import notes, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")

ROOT = Path(__file__).resolve().parents[1]


async def test_the_validation_text_toast_quotes_the_name_once(home, prose):
    lmcore.train("tf-py", arch="ngram", preset="tiny", corpus=str(prose), home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        await pilot.press("f4")
        pane = app.screen.query_one("InspectPane")
        await wait_for(pilot, lambda: pane.query_one(".source-text").has_focus)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: any("validation text" in n for n in notes(app)))
        note = next(n for n in notes(app) if "validation text" in n)
        assert "'tf-py'" in note and "''" not in note, note


def test_no_message_puts_a_possessive_after_a_quoted_name():
    """The class of ``'tf-py''s``: a quoted placeholder followed by 's reads as a stray quote."""
    found = []
    for path in [*ROOT.glob("lmcore/**/*.py"), *ROOT.glob("tui/**/*.py")]:
        for i, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if re.search(r"'\{[^}]*\}'+s\b", line):
                found.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()}")
    assert not found, found


def _tui_bindings() -> dict:
    """Every class of the app that declares keys, found by walking the package (a new screen counts)."""
    import importlib
    import inspect
    import pkgutil

    import tui

    found = {}
    for m in pkgutil.walk_packages(tui.__path__, "tui."):
        module = importlib.import_module(m.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__.startswith("tui.") and "BINDINGS" in cls.__dict__:
                found[cls] = cls.__dict__["BINDINGS"]
    return found


async def test_the_help_lists_every_key_of_every_screen(home):
    from tui.keys import key_label

    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "DocScreen")
        text = app.screen.text
        await pilot.press("escape")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "PickerScreen")
    bindings = _tui_bindings()
    assert {"PickerScreen", "ModelScreen", "InspectPane", "Arena", "SameText"} <= {c.__name__ for c in bindings}
    missing = []
    for cls, keys in bindings.items():
        for b in keys:
            if b.action == "nothing":  # the too-small notice swallows Esc: nothing to tell
                continue
            what = b.tooltip or b.description.lower()
            last = key_label(b.key.split(",")[-1].strip())
            if f"`{last}` {what}" not in text or not all(f"`{key_label(k.strip())}`" in text for k in b.key.split(",")):
                missing.append(f"{cls.__name__}: {b.key} {what}")
    assert not missing, missing
    for key in ("`F4` Inspect tab", "`b` rank", "`c` compare", "`t` the chart's axis", "`ctrl+p` command palette"):
        assert key in text


async def test_inspect_views_have_keys_written_on_their_tabs(home, prose):
    lmcore.train("ng", arch="ngram", preset="tiny", corpus=str(prose), home=home)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        await pilot.press("f4")
        pane = app.screen.query_one("InspectPane")
        views = pane.query_one("#inspect-views")
        await wait_for(pilot, lambda: pane.query_one(".source-text").has_focus)
        for key, view in (("f6", "neurons"), ("f7", "attention"), ("f9", "corpus"), ("f5", "surprisal")):
            await pilot.press(key)
            await wait_for(pilot, lambda: views.active == f"view-{view}")
            assert views.get_tab(f"view-{view}").label.plain.endswith(key.upper())
        # the corpus view drew itself on the way (it needs no text)
        await wait_for(pilot, lambda: getattr(pane.query_one("CorpusView"), "shown", False))
