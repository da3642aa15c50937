"""Models of one pairs corpus side by side (lmcore compare and the app's arena): an encoder-decoder and a
decoder-only LSTM trained on the built-in dates get the same source line, and each reply is what that model
answers alone (the decoder-only model continues the source and a tab up to the newline); a model that
answers sources is refused beside a text model or a model of another pairs corpus, in one line."""
import dataclasses
import json
import shutil

import pytest
from textual.widgets import Input, SelectionList

import lmcore
from lmcore import SamplingSettings, Store
from lmcore.cli.main import main
from tui.app import create_app
from tui.screens.compare import ChooseModelsScreen, CompareScreen

from . import factories
from .tui_helpers import notes, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")
SOURCE = "3 May 1979"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A seq2seq and a char LSTM trained two steps on dates, and a text model (an LSTM of another text)."""
    root = tmp_path_factory.mktemp("compare_pairs")
    for name, arch, extra in (("s2s", "seq2seq", {}), ("lm", "lstm", {"tokens": "char"})):
        assert lmcore.train(name, arch=arch, preset="tiny", corpus="dates", steps=2, eval_every=2, batch_size=16,
                            home=root, **extra).saved
    factories.save(Store(root), "plain", "lstm")
    return root


@pytest.fixture
def home(trained, tmp_path):
    shutil.copytree(trained, tmp_path / "home")
    return tmp_path / "home"


def _alone(home, name: str, settings: SamplingSettings) -> tuple[str, bool]:
    stream = lmcore.answer_stream(lmcore.Generator.from_store(Store(home), name), SOURCE,
                                  SamplingSettings(**settings.to_dict()))
    text = "".join(t.text for t in stream)
    return text, stream.ended


def test_the_cli_gives_each_model_the_same_source(home, capsys):
    assert main(["--home", str(home), "compare", "s2s", "lm", "--prompt", SOURCE, "--length", "12", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["event"] == "settings" and events[0]["temperature"] == 0  # greedy, as lmcore generate
    done = {e["model"]: e for e in events if e.get("event") == "done"}
    greedy = SamplingSettings(temperature=0, max_tokens=12)
    for name in ("s2s", "lm"):
        text, ended = _alone(home, name, greedy)
        assert done[name]["text"] == text and done[name]["ended"] == ended and "\t" not in text
        assert "".join(e["text"] for e in events if e.get("model") == name and "token_id" in e) == text
    assert main(["--home", str(home), "compare", "s2s", "lm", "--prompt", SOURCE, "--length", "12"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"source: {SOURCE}\n") and "── s2s (seq2seq, char tokens) · its reply ──" in out


@pytest.mark.parametrize("argv,says", [
    (["s2s", "plain", "--prompt", SOURCE], "compare models of the same pairs corpus"),
    (["s2s", "lm"], "--prompt SOURCE"),
    (["s2s", "lm", "--text", "abc"], "scores no text"),
])
def test_the_cli_refuses_in_one_line(home, capsys, argv, says):
    assert main(["--home", str(home), "compare", *argv]) == 1
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_models_of_different_pairs_corpora_are_told_apart():
    a, b = factories.checkpoint("a", "seq2seq")[0], factories.checkpoint("b", "seq2seq")[0]
    assert lmcore.side_by_side_problem({"a": a, "b": a}) is None
    b.corpus = dataclasses.replace(b.corpus, sha1="f" * 40 if a.corpus.sha1 != "f" * 40 else "e" * 40, name="other")
    assert "different pairs corpora" in lmcore.side_by_side_problem({"a": a, "b": b})
    assert lmcore.side_by_side_problem({"x": factories.checkpoint("x", "lstm")[0],
                                        "y": factories.checkpoint("y", "gru")[0]}) is None


async def _compare(app, pilot) -> None:
    """The compare screen of the seq2seq and the decoder-only model, its arena ready."""
    await pilot.pause()
    app.push_screen(CompareScreen(["s2s", "lm"]))
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.query("#arena-prompt"))


async def test_the_arena_streams_each_models_reply_to_the_source(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _compare(app, pilot)
        arena = app.screen.arena
        field = arena.query_one("#arena-prompt", Input)
        assert field.placeholder.startswith("A source for every model to answer")
        arena.query_one("#set-max_tokens", Input).value = "12"
        arena.query_one("#set-seed", Input).value = "5"
        field.value = SOURCE
        await wait_for(pilot, lambda: field.has_focus)
        app.simulate_key("enter")
        await wait_for(pilot, lambda: arena.columns[0].continuation is not None)
        await wait_for(pilot, lambda: not arena.generating)
        settings = SamplingSettings(**arena.settings.to_dict())
        for column in arena.columns:
            text, ended = _alone(home, column.model_name, settings)
            assert arena.texts()[column.model_name] == text
            shown = str(column.query_one(".arena-info").render())
            n = len(column.continuation.tokens)
            said = f"reply ended · {column.arch}" if ended else f"cut at {n} tokens · {column.arch}"
            assert shown == f"{said} · {column.budget}"  # then its training budget
            assert f"› {SOURCE}" in str(column.query_one(".arena-prompt").render())
        assert not [n for n in notes(app) if "Cannot generate" in n]


async def test_the_same_text_tab_says_why_models_that_answer_sources_score_no_text(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await _compare(app, pilot)
        await pilot.press("f3")
        summary = app.screen.query_one("#same-summary")
        await wait_for(pilot, lambda: summary.region.height > 0)
        said = " ".join(str(summary.render()).split())
        assert "s2s, lm answer a source line instead" in said and "Arena (F2)" in said
        app.screen.query_one(".source-text").text = "a text to score"
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any("answer a source line instead" in n for n in notes(app)))
        assert not [n for n in notes(app) if "Cannot score" in n]


async def test_choosing_a_pairs_model_beside_a_text_model_is_refused(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.compare_models(["s2s"])
        await wait_for(pilot, lambda: isinstance(app.screen, ChooseModelsScreen) and app.screen.query(SelectionList))
        app.screen.query_one(SelectionList).select("plain")
        await pilot.click("#ok")
        await wait_for(pilot, lambda: any("same pairs corpus" in n for n in notes(app)))
        assert isinstance(app.screen, ChooseModelsScreen)
