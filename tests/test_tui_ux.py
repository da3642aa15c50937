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
