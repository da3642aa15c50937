"""An encoder–decoder's Generate tab is a chat, driven as a user drives it: a source sent, the reply as a
turn with each token's probability; bad sources as one notification; the Inspect tab then shows the
alignment of that turn; a snapshot of the chat at 80x24."""
import pytest
from textual.widgets import Input

import lmcore
from lmcore import DoneEvent, EvalEvent, StartEvent, Store
from tui.app import create_app

from .tui_helpers import (ScriptedTrainer, fixed_entry, notes, record_notifications,  # noqa: F401 - the fixture
                          wait_for)
from .waiting import DEADLINE

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


class PairsTrainer(ScriptedTrainer):
    """A run of a pairs model: one evaluation with BLEU and exact match, then 'mid-training' until stopped."""

    def run(self):
        self.on_event(StartEvent(self.name, "seq2seq", "", 10_000, "cpu (1 thread)", 0, 100, None, 9_000, 1_000, 40,
                                 3.0))
        self.on_event(EvalEvent(50, 0.9, 2.46, 0.9, 2.46, True, "3 May 1979 → 1979-05-03", 5.0, bleu=0.5,
                                corpus_bleu=0.45, exact=0.25))
        self.stop.wait(DEADLINE)
        done = DoneEvent("stopped", 50, 0.9, 2.46, 6.0, 9_000.0)
        self.on_event(done)
        return done


async def test_the_training_panel_shows_bleu_and_exact_match_beside_perplexity(dates_home, home):
    app = create_app(dates_home)
    async with app.run_test(size=SIZE) as pilot:  # a saved model: its last evaluation's
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        app.screen.action_show_tab("train")
        last = Store(dates_home).read("d").history[-1]
        metrics = app.screen.training.query_one("MetricsView")
        assert metrics.values["val BLEU"] == f"{last.bleu:.3f}" and metrics.values["exact match"] == f"{last.exact:.1%}"
    fixed_entry(Store(home), "s2s", arch="seq2seq")
    app = create_app(home, trainer_factory=PairsTrainer)
    async with app.run_test(size=SIZE) as pilot:  # a live run
        await pilot.press("enter")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelScreen")
        app.screen.action_show_tab("train")
        panel = app.screen.training
        panel.action_start()
        metrics = panel.query_one("MetricsView")
        try:
            await wait_for(pilot, lambda: metrics.values.get("val BLEU") == "0.500")
            assert metrics.values["exact match"] == "25.0%" and metrics.values["best val ppl"] == "2.460"
            sample = str(panel.query_one("SampleView").render())
            assert "its reply at step 50 (greedy): 3 May 1979 → 1979-05-03" in sample and "temperature" not in sample
        finally:
            app.runs.stop_all()


def test_the_reply_stream_is_the_greedy_or_beam_reply_token_by_token(dates_home):
    gen = lmcore.Generator.from_store(Store(dates_home), "d")
    greedy = lmcore.ReplyStream(gen, "3 May 1979", lmcore.SamplingSettings(temperature=0.0))
    tokens = list(greedy)
    expected = lmcore.reply(gen.model, gen.vocab, gen.tokenizer, "3 May 1979")
    assert "".join(t.text for t in tokens) == expected.text and greedy.ended == expected.ended
    assert all(len(t.alternatives) == 5 and t.alternatives[0][1] >= t.prob - 1e-6 for t in tokens)
    from lmcore.generation.seq2seq_decode import beam_reply

    beam = lmcore.ReplyStream(gen, "3 May 1979", lmcore.SamplingSettings(beam=3))
    assert "".join(t.text for t in beam) == beam_reply(gen.model, gen.vocab, gen.tokenizer, "3 May 1979", 3).text
    with pytest.raises(lmcore.ConfigError, match="over the model's limit"):
        lmcore.ReplyStream(gen, "x" * 200)
