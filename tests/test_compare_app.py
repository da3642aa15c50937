"""The compare screen: choosing models, the arena (one prompt, a column per model) and the same text
scored by each model. What the app shows is checked against lmcore run headless."""
import math

import pytest
from textual.widgets import Input, SelectionList, TextArea

import lmcore
from lmcore import SamplingSettings, Store
from tui.app import create_app
from tui.screens.compare import ChooseModelsScreen, CompareScreen
from tui.screens.picker import PickerScreen
from tui.widgets.generation import Continuation

from .tui_helpers import fixed_entry, notes, record_notifications, wait_for  # noqa: F401 - the fixture


pytestmark = pytest.mark.usefixtures("record_notifications")



async def _open_compare(pilot, app, ticks: int = 1) -> CompareScreen:
    """c in the picker ticks the model under the cursor; tick ``ticks`` more below it, then Compare."""
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(app.screen, ChooseModelsScreen))
    for _ in range(ticks):
        await pilot.press("down", "space")
    await pilot.press("tab", "tab", "enter")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
    return app.screen


async def _open_same_text(pilot, app):
    """The compare screen of the model under the picker's cursor and the next one, on its Same text tab."""
    await pilot.pause()
    screen = await _open_compare(pilot, app)
    await pilot.press("f3")
    await wait_for(pilot, lambda: screen.same_text.query_one(TextArea).has_focus)
    return screen, screen.same_text


async def _run_arena(pilot, app, arena, prompt: str, length: int, seed: int | None = 5) -> None:
    arena.query_one("#set-max_tokens", Input).value = str(length)
    arena.query_one("#set-seed", Input).value = "" if seed is None else str(seed)
    field = arena.query_one("#arena-prompt", Input)
    field.value = prompt
    await wait_for(pilot, lambda: field.has_focus)
    before = arena.columns[0].continuation
    app.simulate_key("enter")  # as a terminal sends it (Pilot.press waits for an idle app)
    await wait_for(pilot, lambda: arena.columns[0].continuation not in (None, before))


async def test_arena_columns_are_what_each_model_generates_alone(home):
    store = Store(home)
    fixed_entry(store, "a-lstm")
    fixed_entry(store, "b-transformer", arch="transformer")
    fixed_entry(store, "c-gru", arch="gru")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = await _open_compare(pilot, app, ticks=2)
        arena = screen.arena
        assert [c.model_name for c in arena.columns] == ["a-lstm", "b-transformer", "c-gru"]
        await _run_arena(pilot, app, arena, "abc ", 50)
        await wait_for(pilot, lambda: not arena.generating)
        texts = arena.texts()
        settings = SamplingSettings(**arena.settings.to_dict())
        for column in arena.columns:
            gen = lmcore.Generator.from_store(store, column.model_name)
            alone = gen.complete("abc ", SamplingSettings(**settings.to_dict()))
            assert texts[column.model_name] == alone and len(alone) == 50
            ppl = lmcore.score_text(gen, "abc ").ppl
            assert f"prompt ppl {ppl:.2f}" in str(column.query_one(".arena-info").render())
        assert "done: 50 / 50 / 50 tokens" in str(arena.query_one("#arena-state").render())
        arena.columns[1].continuation.focus()  # the cursor in a column: that model's token and alternatives
        await pilot.press("left")
        line = str(arena.query_one("#arena-next").render())
        tok = arena.columns[1].continuation.tokens[-2]
        assert line.startswith(f"b-transformer: {tok.text!r} p={tok.prob:.2f} · alternatives:"), line
        await pilot.press("escape")  # back to the prompt
        # the same prompt and seed again: the same columns
        await _run_arena(pilot, app, arena, "abc ", 50)
        await wait_for(pilot, lambda: not arena.generating)
        assert arena.texts() == texts


async def test_arena_stops_on_escape_and_quitting_ends_its_worker(home):
    store = Store(home)
    fixed_entry(store, "a")
    fixed_entry(store, "b", arch="ngram")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        arena = (await _open_compare(pilot, app)).arena
        await _run_arena(pilot, app, arena, "ab", 1_000_000, seed=None)
        await wait_for(pilot, lambda: all(c.continuation and len(c.continuation.tokens) > 20 for c in arena.columns))
        app.simulate_key("escape")
        await wait_for(pilot, lambda: not arena.generating)
        assert "stopped" in str(arena.query_one("#arena-state").render())
        n = [len(c.continuation.tokens) for c in arena.columns]
        assert abs(n[0] - n[1]) <= 1 + n[0] // 50  # the columns grew together
        await _run_arena(pilot, app, arena, "ab", 1_000_000, seed=None)
        await wait_for(pilot, lambda: arena.columns[0].continuation and len(arena.columns[0].continuation.tokens) > 5)
        workers = [w for w in app.workers if w.group == "generation"]
        await app.quit_and_wait()
        assert workers and all(w.is_finished for w in workers)


async def test_choosing_models_needs_two_to_four(home):
    store = Store(home)
    fixed_entry(store, "only")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, PickerScreen)
        assert any("needs two saved models" in n for n in notes(app))
    for name in "abcde":
        fixed_entry(store, name)
    (store.root / "broken").mkdir()  # a damaged model is not offered
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChooseModelsScreen))
        options = app.screen.query_one(SelectionList)
        assert options.option_count == 6 and list(options.selected) == ["a"]
        await pilot.press("tab", "tab", "enter")  # one ticked: not enough
        await wait_for(pilot, lambda: any("Tick 2 to 4" in n for n in notes(app)))
        assert isinstance(app.screen, ChooseModelsScreen)
        for name in "bcde":
            options.select(name)
        compare = app.screen.query_one("#ok")

        async def press_compare():
            # a button takes no second press while it still shows the last one (Textual's press effect)
            await wait_for(pilot, lambda: not compare.has_class("-active"))
            await pilot.press("enter")

        await press_compare()  # five: too many
        await wait_for(pilot, lambda: sum("Tick 2 to 4" in n for n in notes(app)) == 2)
        assert isinstance(app.screen, ChooseModelsScreen)
        options.deselect("a")
        await press_compare()
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen))
        assert app.screen.names == ["b", "c", "d", "e"]
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: isinstance(app.screen, PickerScreen))


async def test_same_text_shows_each_models_loss_and_probabilities(home):
    store = Store(home)
    fixed_entry(store, "a-lstm")
    fixed_entry(store, "b-ngram", arch="ngram")
    text = "abc dea fgh\nabba cafe"
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, same = await _open_same_text(pilot, app)
        same.query_one(TextArea).text = text
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: same.scores is not None and same.query(Continuation))
        scores = {n: lmcore.score_text(lmcore.Generator.from_store(store, n), text) for n in ("a-lstm", "b-ngram")}
        summary = str(same.query_one("#same-summary").render())
        for name, sc in scores.items():
            assert f"{sc.loss:.3f}" in summary and f"{sc.bits_per_char:.3f}" in summary
        view = same.query_one(Continuation)
        assert view.plain == text  # every character shown, the unscored first one too
        view.focus()  # the cursor starts on the first scored token
        await pilot.pause()
        for i in range(2):
            line = str(same.query_one("#same-token").render())
            pa, pb = (math.exp(sc.tokens[i].logprob) for sc in scores.values())
            assert f"a-lstm p={pa:.3f}" in line and f"b-ngram p={pb:.3f}" in line, line
            diff = scores["a-lstm"].tokens[i].logprob - scores["b-ngram"].tokens[i].logprob
            assert view.tokens[i + 1].diff == pytest.approx(diff)
            await pilot.press("right")
        await pilot.press("home")
        assert "nothing predicts it" in str(same.query_one("#same-token").render())
        # an empty text is a notification, not a crash
        same.query_one(TextArea).text = "   "
        await pilot.press("ctrl+r")
        await pilot.pause()
        assert any("Type or paste a text first" in n for n in notes(app))


async def test_same_text_takes_slices_of_the_validation_text(home, prose, prose_text):
    lmcore.train("ng2", arch="ngram", preset="small", corpus=str(prose), home=home)
    lmcore.train("ng3", arch="ngram", preset="tiny", corpus=str(prose), home=home)
    store = Store(home)
    ck = store.read("ng2")
    tail = prose_text.replace("\r\n", "\n")[-ck.corpus.val_tokens:]
    assert lmcore.validation_text(store, "ng2", 300) == tail[:300]
    assert lmcore.validation_text(store, "ng2", 300, 200) == tail[200:500]
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, same = await _open_same_text(pilot, app)
        area = same.query_one(TextArea)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: area.text)
        first = area.text
        assert first == tail[:2000]
        await pilot.press("ctrl+t")  # the next slice
        await wait_for(pilot, lambda: area.text != first)
        assert area.text == tail[2000:4000]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: same.scores is not None)
        assert len(same.scores[screen.names[0]].tokens) == 1999
    prose.write_text("changed", "utf-8")  # the text a model was trained on changed: said, not used
    with pytest.raises(lmcore.CorpusError, match="not the text"):
        lmcore.validation_text(store, "ng2")


async def test_validation_text_of_a_corpus_not_here_is_a_notification(home):
    store = Store(home)
    fixed_entry(store, "a")  # trained on "timemachine", not downloaded in this data folder
    fixed_entry(store, "b")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, same = await _open_same_text(pilot, app)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: any("not downloaded" in n for n in notes(app)))
        assert isinstance(app.screen, CompareScreen) and screen.same_text.query_one(TextArea).text == ""


async def test_a_model_that_reads_ahead_is_ranked_beside_the_honest_ones_with_why(home):
    """The lesson of the cheat: a bidirectional LSTM's validation perplexity (near 1) is shown beside the
    honest models' in the ranking, the compare chooser and its training panel, each time with why."""
    from . import factories

    store = Store(home)
    fixed_entry(store, "honest", ppl=4.46)
    store.save("cheat", *factories.checkpoint("cheat", "lstm", val_loss=math.log(1.02), bidirectional=True))
    app = create_app(home)
    async with app.run_test(size=(100, 30)) as pilot:
        picker = app.screen
        await pilot.press("b")  # the ranking
        table = picker.query_one("#models")
        await wait_for(pilot, lambda: table.row_count == 2)
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(2)]
        assert rows[1][2] == "cheat" and "⚠ reads ahead" in rows[1][3] and rows[1][-1] == "1.020"
        assert rows[0][2] == "honest" and "⚠" not in rows[0][3]  # ranked after the honest one
        table.move_cursor(row=1)
        await pilot.pause()
        detail = str(picker.query_one("#picker-detail").render())
        assert "near 1" in detail and "reads the token it predicts" in detail
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, ChooseModelsScreen))
        labels = [str(o.prompt) for o in app.screen.query_one(SelectionList).options]
        assert any("cheat" in x and "reads the token it predicts" in x for x in labels)
        assert not any("honest" in x and "⚠" in x for x in labels)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is picker)
        await pilot.press("b")
        names = [r.name for r in picker.rows]
        table.move_cursor(row=names.index("cheat"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: hasattr(app.screen, "training"))
        note = app.screen.training.query_one("#val-note")
        assert note.display and "near 1 because it reads the token it predicts" in str(note.render())
        await pilot.press("ctrl+b")
        await wait_for(pilot, lambda: app.screen is picker)
        table.move_cursor(row=names.index("honest"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: hasattr(app.screen, "training"))
        assert not app.screen.training.query_one("#val-note").display
