"""An encoder–decoder's Generate tab is a chat, driven as a user drives it: a source sent, the reply as a
turn with each token's probability; bad sources as one notification; the Inspect tab then shows the
alignment of that turn; a snapshot of the chat at 80x24."""
import pytest
from textual.widgets import Input

import lmcore
from lmcore import Store
from tui.app import create_app

from .tui_helpers import fixed_entry, notes, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")

SIZE = (80, 24)


@pytest.fixture(scope="module")
def dates_home(tmp_path_factory):
    """A tiny seq2seq trained a few steps on the built-in dates pairs."""
    home = tmp_path_factory.mktemp("chat") / "home"
    done = lmcore.train("d", arch="seq2seq", preset="tiny", corpus="dates", steps=30, eval_every=30, home=home,
                        threads=1)
    assert done.saved
    return home


async def _send(pilot, app, source: str, greedy: bool = True):
    """Open the only model (its Generate tab), send ``source``, wait until the turn ends."""
    await pilot.press("enter")
    await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
    chat = app.screen.generation
    chat.action_clear()  # the turns an earlier test saved
    await wait_for(pilot, lambda: not chat.query("Turn"))
    if greedy:
        chat.query_one("TemperatureControl").set_value(0.0)
    chat.query_one("#prompt", Input).value = source
    await pilot.press("enter")
    await wait_for(pilot, lambda: not chat.generating)
    return chat


async def test_a_source_gets_the_models_reply_with_its_probabilities(dates_home):
    app = create_app(dates_home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        chat = await _send(pilot, app, "3 May 1979")
        assert type(chat).__name__ == "ChatPane"
        await wait_for(pilot, lambda: chat.query("Turn"))
        turn = chat.query("Turn").last()
        gen = lmcore.Generator.from_store(Store(dates_home), "d")
        expected = lmcore.reply(gen.model, gen.vocab, gen.tokenizer, "3 May 1979")  # the greedy reply
        assert turn.prompt == "3 May 1979" and turn.continuation.plain == expected.text
        assert [round(t.prob, 4) for t in turn.continuation.tokens] == [round(p, 4) for p in expected.probs]
        assert "reply:" in str(chat.query_one("#gen-state").render())
        turn.continuation.focus()
        await pilot.press("right")
        await pilot.pause()
        assert "alternatives:" in str(chat.query_one("#alternatives").render())


async def test_a_source_over_the_limit_or_with_unknown_characters_is_one_notification(dates_home):
    app = create_app(dates_home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        chat = await _send(pilot, app, "3 May 1979 " * 20)  # 220 characters: the limit is 128
        await wait_for(pilot, lambda: any("over the model's limit of 128" in n for n in notes(app)))
        await wait_for(pilot, lambda: not chat.query("Turn"))  # the refused turn goes
        assert len([n for n in notes(app) if "limit" in n]) == 1
        chat.query_one("#prompt", Input).value = "3 May 1979 \u2603"
        await pilot.press("enter")
        await wait_for(pilot, lambda: not chat.generating and chat.query("Turn"))
        assert any("not in the model's vocabulary" in n and "\u2603" in n for n in notes(app))
        chat.query_one("#prompt", Input).value = "   "
        await pilot.press("enter")
        await wait_for(pilot, lambda: any("Type a source first" in n for n in notes(app)))
        assert len(chat.query("Turn")) == 1


async def test_the_inspect_tab_shows_the_alignment_of_the_last_turn(dates_home):
    app = create_app(dates_home)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        chat = await _send(pilot, app, "3 May 1979")
        reply = chat.query("Turn").last().continuation.plain
        await pilot.press("f4")
        pane = app.screen.query_one("InspectPane")
        await wait_for(pilot, lambda: getattr(pane.view, "shown", False))
        assert type(pane.view).__name__ == "AttentionView"
        assert pane.query_one("TextSource").text == f"3 May 1979\t{reply}"
        summary = str(pane.view.query_one(".view-summary").render())
        assert "columns: the source's 10" in summary and "reply: " in summary


def test_chat_snapshot(snap_compare, home):
    """Deterministic: a seeded untrained model, greedy, a short length limit."""
    fixed_entry(Store(home), "s2s", arch="seq2seq")
    lmcore.Settings(home).set("generation", {"temperature": 0.0, "length": 12})
    app = create_app(home)

    async def run_before(pilot):
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        chat = app.screen.generation
        for source in ("abc", "bad cafe"):
            chat.query_one("#prompt", Input).value = source
            await pilot.press("enter")
            await wait_for(pilot, lambda: not chat.generating and chat.query("Turn"))
        for field in app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
