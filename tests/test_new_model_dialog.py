"""The new-model dialog's keys, downloading a corpus from it, and a failed start that keeps its choices.
Every key is pressed as a user presses it."""
import hashlib

import pytest
from textual.widgets import Button, Input, Select

import lmcore
from lmcore import Store

from lmcore.data import corpus
from tui.app import create_app
from tui.screens.model import ModelScreen
from tui.screens.new_model import NewModelScreen

from .httpserver import Server, refused_url
from .tui_helpers import ScriptedTrainer, notes, record_notifications, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("record_notifications")

BODY = ("It was the best of times, it was the worst of times.\n" * 4000).encode()  # 212 kB: chunks
SHA = hashlib.sha1(BODY).hexdigest()


def _registry(monkeypatch, url: str, sha: str = SHA) -> None:
    entries = [corpus.CorpusEntry(name="pythondocs", title="built in", builtin="pydoc_topics"),
               corpus.CorpusEntry(name="demo", title="Demo", url=url, sha1=sha, size=len(BODY))]
    monkeypatch.setattr(corpus, "registry", lambda: entries)
    monkeypatch.setattr(lmcore, "corpus_registry", lambda: entries)  # the name the app asks, once looked up
    monkeypatch.delenv(corpus.MIRROR_ENV, raising=False)


async def _dialog(pilot, app) -> NewModelScreen:
    await pilot.press("n")
    await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen))
    return app.screen


async def _tab_to(pilot, scr, predicate, most: int = 20):
    for _ in range(most):
        if scr.focused is not None and predicate(scr.focused):
            return scr.focused
        await pilot.press("tab")
    raise AssertionError(f"tab never reached the field (focus on {scr.focused!r})")


def _text(widget) -> str:
    return str(widget.render())


async def test_enter_on_a_list_opens_it_and_picks_without_creating(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        size = await _tab_to(pilot, scr, lambda w: w.id == "preset")
        before = size.value
        await pilot.press("enter")
        await wait_for(pilot, lambda: size.expanded)
        assert isinstance(app.screen, NewModelScreen) and not app.runs.runs
        await pilot.press("down", "enter")  # picks the next size; the list closes, the dialog stays
        await wait_for(pilot, lambda: not size.expanded)
        assert size.value != before
        assert app.screen is scr and not app.runs.runs and Store(home).list() == []
        hint = _text(scr.query_one("#new-hint"))  # and the dialog says so
        assert "Enter opens a list" in hint and "ctrl+s" in hint


async def test_tab_into_the_name_then_typing_keeps_it(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        name = scr.query_one("#name", Input)
        scr.query_one("#arch", Select).value = "gru"  # the name follows the choice, longer than before
        await pilot.pause()
        first = name.value
        assert first.startswith("gru-")
        await _tab_to(pilot, scr, lambda w: w is name)
        await pilot.press("space")
        assert name.value == first + " "  # nothing selected on focus: the name is not replaced
        await pilot.press("backspace", "x")
        assert name.value == first + "x"


async def test_enter_in_a_text_field_moves_on_and_ctrl_s_creates(home, prose):
    app = create_app(home, trainer_factory=ScriptedTrainer)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        scr.query_one("#corpus", Select).value = "__path__"
        await pilot.pause()
        path = await _tab_to(pilot, scr, lambda w: w.id == "path")
        path.value = str(prose)[:-1]
        await pilot.press(str(prose)[-1], "enter")
        assert app.screen is scr and not app.runs.runs
        assert scr.focused is not path and path.value == str(prose)  # moved on
        steps = await _tab_to(pilot, scr, lambda w: w.id == "new-steps")
        await pilot.press("5", "enter")
        assert scr.focused.id == "new-minutes" and app.screen is scr and not app.runs.runs
        await pilot.press("enter")  # the last field: on to Create and train, never to Cancel
        assert scr.focused.id == "create" and app.screen is scr and not app.runs.runs
        await _tab_to(pilot, scr, lambda w: w.id == "name")
        await pilot.press("ctrl+s")  # from a text field
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        spec = app.screen.spec
        assert app.runs.get(app.screen.model_name) and spec.corpus == str(prose) and spec.train.steps == 5
        assert steps.value == "5"
        app.runs.stop_all()
        await wait_for(pilot, lambda: not app.runs.runs)


async def test_a_corpus_is_downloaded_from_the_dialog_with_its_progress(home, monkeypatch):
    with Server({"/demo.txt": BODY}) as srv:
        _registry(monkeypatch, srv.url + "/hold/demo.txt")
        app = create_app(home)
        async with app.run_test(size=(80, 24)) as pilot:
            scr = await _dialog(pilot, app)
            row, note = scr.query_one("#download-row"), scr.query_one("#download-note")
            assert not row.display  # the built-in corpus needs nothing
            scr.query_one("#corpus", Select).value = "demo"
            await pilot.pause()
            assert row.display and "demo is not on this computer yet (212 kB)" in _text(note)
            await _tab_to(pilot, scr, lambda w: w.id == "download")
            await pilot.press("enter")
            # half of it arrived, the rest is held back by the server: the note says how far
            await wait_for(pilot, lambda: "Downloading demo… 30% of 212 kB" in _text(note))
            assert scr.query_one("#download", Button).disabled
            srv.release.set()
            await wait_for(pilot, lambda: not row.display)
            assert corpus.status(corpus.entry("demo"), home) == "cached"
            assert any("demo is downloaded and checked" in n for n in notes(app))
            assert "demo (cached)" in str(scr.query_one("#corpus", Select).query_one("SelectCurrent").label)
            assert app.screen is scr and scr.query_one("#corpus", Select).value == "demo"


async def test_escape_stops_a_download_and_keeps_the_dialog(home, monkeypatch):
    with Server({"/demo.txt": BODY}) as srv:
        _registry(monkeypatch, srv.url + "/hold/demo.txt")
        app = create_app(home)
        async with app.run_test(size=(80, 24)) as pilot:
            scr = await _dialog(pilot, app)
            scr.query_one("#corpus", Select).value = "demo"
            await pilot.pause()
            scr.query_one("#download", Button).press()
            note = scr.query_one("#download-note")
            await wait_for(pilot, lambda: "% of 212 kB" in _text(note))
            await pilot.press("escape")
            assert app.screen is scr and "Download stopped" in _text(note)
            assert not scr.query_one("#download", Button).disabled
            srv.release.set()
            await wait_for(pilot, lambda: not [w for w in app.workers if w.group == "download" and w.is_running])
            assert corpus.status(corpus.entry("demo"), home) == "needs download"
            assert not (home / "corpora").exists() or not list((home / "corpora").iterdir())
            await pilot.press("escape")  # now it closes
            await wait_for(pilot, lambda: not isinstance(app.screen, NewModelScreen))


async def test_create_downloads_first_then_trains(home, monkeypatch):
    with Server({"/demo.txt": BODY}) as srv:
        _registry(monkeypatch, srv.url + "/demo.txt")
        app = create_app(home, trainer_factory=ScriptedTrainer)
        async with app.run_test(size=(80, 24)) as pilot:
            scr = await _dialog(pilot, app)
            scr.query_one("#corpus", Select).value = "demo"
            await pilot.pause()
            await pilot.press("ctrl+s")
            await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
            assert corpus.status(corpus.entry("demo"), home) == "cached"
            assert app.runs.get(app.screen.model_name) and app.screen.spec.corpus == "demo"
            app.runs.stop_all()
            await wait_for(pilot, lambda: not app.runs.runs)


async def test_offline_the_dialog_stays_and_says_what_to_do_in_the_apps_words(home, monkeypatch):
    _registry(monkeypatch, refused_url())
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        scr.query_one("#corpus", Select).value = "demo"
        scr.query_one("#new-steps", Input).value = "40"
        await pilot.pause()
        name = scr.query_one("#name", Input).value
        await pilot.press("ctrl+s")
        note = scr.query_one("#download-note")
        await wait_for(pilot, lambda: "Could not download" in _text(note))
        said = " ".join(_text(note).split())
        assert said == ("Could not download demo: connection refused. Connect to the internet and press Download "
                        "again, or choose pythondocs (built in) or your own text file as the corpus.")  # no CLI flags
        # nothing was created and nothing is lost
        assert app.screen is scr and not app.runs.runs and Store(home).list() == []
        assert scr.query_one("#new-steps", Input).value == "40" and scr.query_one("#name", Input).value == name
        assert scr.query_one("#corpus", Select).value == "demo"


async def test_a_failed_start_reopens_the_dialog_with_the_choices(home, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("too short to train on\n", "utf-8")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        scr.query_one("#arch", Select).value = "gru"
        scr.query_one("#preset", Select).value = "tiny"
        scr.query_one("#prep", Select).value = "d2l"
        scr.query_one("#corpus", Select).value = "__path__"
        await pilot.pause()
        scr.query_one("#path", Input).value = str(short)
        scr.query_one("#new-steps", Input).value = "12"
        await pilot.pause()
        scr.query_one("#name", Input).value = "mine"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen) and app.screen is not scr
                       and not app.runs.runs)
        again = app.screen
        assert again.query_one("#name", Input).value == "mine"
        assert again.query_one("#arch", Select).value == "gru" and again.query_one("#preset", Select).value == "tiny"
        assert again.query_one("#prep", Select).value == "d2l" and again.query_one("#corpus", Select).value == "__path__"
        assert again.query_one("#path", Input).value == str(short) and again.query_one("#new-steps", Input).value == "12"
        assert any("too few for one batch" in n for n in notes(app))  # the one-line reason
        assert not [s for s in app.screen_stack if isinstance(s, ModelScreen)]  # no empty model screen
        assert Store(home).list() == []


async def test_every_registered_family_is_offered_with_its_own_options(home):
    """The dialog lists every architecture of the family registry (a family added later included) and,
    for each, exactly the options its family declares for the form, with their choices."""
    from lmcore.models import families

    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        arch = scr.query_one("#arch", Select)
        for fam in families():
            for a in fam.archs:
                arch.value = a  # a value the list does not offer is refused (InvalidSelectValueError)
                await pilot.pause()
                assert arch.value == a
                for f in fam.option_fields():
                    if f.metadata.get("form") and fam.uses(a, f.name):
                        row = scr.query_one(f"#opt-{f.name}-row")
                        assert row.display and f.metadata["form"] in _text(row.query_one("Label"))
                        for choice in f.metadata.get("choices") or ():
                            scr.query_one(f"#opt-{f.name}", Select).value = choice  # offered, or refused
                shown = {w.id[4:-4] for w in scr.query(".row") if w.id and w.id.startswith("opt-") and w.display}
                assert shown == {f.name for f in fam.option_fields() if f.metadata.get("form") and fam.uses(a, f.name)}


async def test_a_birnn_with_a_gru_cell_is_created_and_trained(home, prose):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        scr.query_one("#arch", Select).value = "birnn"
        await pilot.pause()
        cell = scr.query_one("#opt-cell", Select)
        assert scr.query_one("#opt-cell-row").display and cell.value == "lstm"  # the family's default
        assert not scr.query_one("#opt-impl-row").display
        await _tab_to(pilot, scr, lambda w: w is cell)
        await pilot.press("enter")
        await wait_for(pilot, lambda: cell.expanded)
        await pilot.press("up", "enter")  # rnn, gru, lstm: the one above lstm
        await wait_for(pilot, lambda: not cell.expanded)
        assert cell.value == "gru"
        scr.query_one("#preset", Select).value = "tiny"
        scr.query_one("#corpus", Select).value = "__path__"
        await pilot.pause()
        scr.query_one("#path", Input).value = str(prose)
        scr.query_one("#new-steps", Input).value = "3"
        await pilot.pause()
        name = scr.query_one("#name", Input).value
        assert name.startswith("birnn-")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        assert app.screen.spec.model.cell == "gru"
        await wait_for(pilot, lambda: not app.runs.runs and Store(home).exists(name))
        saved = Store(home).read(name).model
        assert saved.arch == "birnn" and saved.cell == "gru"


async def test_a_bert_is_created_trained_and_fills_the_time_blank_from_its_screen(home, prose):
    """The issue's path: a bert from the dialog, trained, then "the time _ was" filled in its Fill tab."""
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        scr.query_one("#arch", Select).value = "bert"
        await pilot.pause()
        scr.query_one("#preset", Select).value = "tiny"
        scr.query_one("#corpus", Select).value = "__path__"
        await pilot.pause()
        scr.query_one("#path", Input).value = str(prose)
        scr.query_one("#new-steps", Input).value = "20"
        await pilot.pause()
        name = scr.query_one("#name", Input).value
        assert name.startswith("bert-")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await wait_for(pilot, lambda: not app.runs.runs and Store(home).exists(name))
        assert Store(home).read(name).model.arch == "bert"
        await pilot.press("f10")
        pane = app.screen.query_one("FillPane")
        await wait_for(pilot, lambda: app.screen.query_one("TabbedContent").active == "fill")
        pane.query_one("#fill-text", Input).value = "the time _ was"
        pane.fill("the time _ was")
        await wait_for(pilot, lambda: not pane.filling and pane.result is not None)
        assert len(pane.result.blanks) == 1 and len(pane.result.blanks[0].candidates) == 5
        assert "mask-predict" in str(pane.query_one("#fill-method").render()).lower()


async def test_pairs_corpora_and_encoder_decoders_are_offered_and_a_plain_text_is_refused_in_one_line(home):
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        scr = await _dialog(pilot, app)
        corpora = [value for _, value in scr.query_one("#corpus", Select)._options]
        assert {"dates", "reverse"} <= set(corpora)
        scr.query_one("#arch", Select).value = "seq2seq-transformer"
        scr.query_one("#preset", Select).value = "tiny"
        scr.query_one("#corpus", Select).value = "pythondocs"  # a plain text: refused
        scr.query_one("#new-steps", Input).value = "2"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, NewModelScreen) and app.screen is not scr
                       and not app.runs.runs)
        refused = [n for n in notes(app) if "has no pairs" in n]
        assert len(refused) == 1 and "\n" not in refused[0] and Store(home).list() == []
        scr = app.screen
        scr.query_one("#arch", Select).value = "seq2seq"
        await pilot.pause()
        assert all(scr.query_one(f"#opt-{o}-row").display for o in ("cell", "attention", "max_len"))
        assert scr.query_one("#opt-cell", Select).value == "gru"  # the family's own default
        scr.query_one("#opt-attention", Select).value = "dot"
        scr.query_one("#opt-max_len", Input).value = "40"
        scr.query_one("#corpus", Select).value = "dates"
        await pilot.pause()
        scr.query_one("#name", Input).value = "d"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        assert type(app.screen.generation).__name__ == "ChatPane"  # a pairs model's Generate tab: a chat
        await wait_for(pilot, lambda: not app.runs.runs and Store(home).exists("d"))
        saved = Store(home).read("d")
        assert saved.model.arch == "seq2seq" and saved.model.attention == "dot" and saved.model.max_len == 40
        assert saved.corpus.name == "dates" and saved.history[-1].exact is not None
