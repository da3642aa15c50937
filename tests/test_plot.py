"""lmcore models show NAME --plot FILE.svg|.png: a model's training curves as a picture (SVG written without
matplotlib; PNG with it), and the app's chart saved from the command palette."""
import math
import sys
import xml.etree.ElementTree as ET

import pytest

from lmcore import EvalPoint, Store, visible_line
from lmcore.inspect import plot
from lmcore.cli.main import main

from . import factories
from .tui_helpers import notes, record_notifications, wait_for  # noqa: F401 - the fixture

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = 'corpus <b>&"x"\x1b]0;pwned\x07\u202e</b>'


def trained(store: Store, name: str = "m", corpus: str = "pythondocs", evals: int = 5, curve: int = 12):
    """A saved model with ``evals`` evaluations (the best at the middle one), a training-loss curve of
    ``curve`` points and a unigram baseline."""
    ck, state = factories.checkpoint(name, corpus=corpus, step=100 * evals)
    losses = [3.0, 2.5, 2.0, 2.2, 2.4, 2.6, 2.8][:evals]
    ck.history = [EvalPoint(step=100 * (i + 1), val_loss=v, elapsed=10.0 * (i + 1), train_loss=v - 0.1,
                            bits_per_char=v / math.log(2)) for i, v in enumerate(losses)]
    ck.curve = [[10 * (i + 1), 4.0 - 0.1 * i, float(i)] for i in range(curve)]
    ck.best_val_loss = min(losses)
    ck.unigram_val_loss = 3.3
    store.save(name, ck, state)
    return ck


@pytest.fixture
def pics(tmp_path):
    """Where the plots go (the data folder is tmp_path/home)."""
    folder = tmp_path / "pics"
    folder.mkdir()
    return folder


def svg_tree(path):
    root = ET.parse(path).getroot()  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"
    return root


def texts(root) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def series(root) -> dict[str, int]:
    return {p.get("data-series"): len(p.get("points").split()) for p in root.iter(f"{SVG}polyline")}


def test_the_svg_holds_each_series_with_every_point_the_best_and_the_labels(pics, capsys):
    store = Store()
    ck = trained(store, "tm")
    out = pics / "curves.svg"
    assert main(["models", "show", "tm", "--plot", str(out)]) == 0
    assert f"plot           {out}" in capsys.readouterr().out.splitlines()
    root = svg_tree(out)
    assert series(root) == {"train": len(ck.curve), "validation": len(ck.history)}
    words = texts(root)
    assert "tm: trained on pythondocs" in words  # the title: the model and its corpus
    assert "step (optimizer updates)" in words and "perplexity per token (log scale)" in words
    best = min(ck.history, key=lambda h: h.val_loss)
    assert f"best validation {math.exp(best.val_loss):.4g} at step {best.step:,}" in words
    assert [c for c in root.iter(f"{SVG}circle") if c.get("class") == "best"]
    assert "unigram" in words  # the baseline, in the legend
    assert not list(pics.glob(".*.tmp"))


def test_json_show_names_the_plot(pics, capsys):
    import json

    trained(Store())
    out = pics / "sub" / "m.svg"
    assert main(["models", "show", "m", "--json", "--plot", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["plot"] == str(out) and out.is_file()


def test_a_hostile_corpus_name_is_escaped_in_the_svg(pics):
    store = Store()
    trained(store, "evil", corpus=HOSTILE)
    out = pics / "evil.svg"
    assert main(["models", "show", "evil", "--plot", str(out)]) == 0
    raw = out.read_text("utf-8")
    assert "\x1b" not in raw and "\x07" not in raw and "\u202e" not in raw and "<b>" not in raw
    root = svg_tree(out)
    assert f"evil: trained on {visible_line(HOSTILE)}" in texts(root)
    assert root.find(f"{SVG}title").text == f"evil: trained on {visible_line(HOSTILE)}"


def test_another_metric_in_the_history_is_one_more_panel(pics, monkeypatch):
    """A metric the evaluations hold gets its own panel from one entry in plot.METRICS (here bits per
    character, which every evaluation has; BLEU and fill accuracy come the same way)."""
    store = Store()
    ck = trained(store)
    monkeypatch.setitem(plot.METRICS, "bits_per_char", ("bits per character", "bits per character (bits)"))
    out = pics / "m.svg"
    assert main(["models", "show", "m", "--plot", str(out)]) == 0
    root = svg_tree(out)
    assert series(root) == {"train": len(ck.curve), "validation": len(ck.history),
                            "bits per character": len(ck.history)}
    assert "bits per character (bits)" in texts(root)
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]) == 2


def test_a_figure_takes_metric_series_and_a_time_axis():
    fig = plot.figure("m", "c", train=[(1, 60, 50.0), (2, 120, 20.0)], val=[(2, 120, 25.0)],
                      metrics={"BLEU": [(2, 120, 12.5)], "fill accuracy": []}, by_time=True)
    assert [p.ylabel for p in fig.panels] == ["perplexity per token (log scale)", "BLEU (0-100)"]
    assert fig.xlabel == "training time (minutes)" and fig.panels[0].series[0].points == [(1.0, 50.0), (2.0, 20.0)]
    assert fig.subtitle == "best validation 25 at 2 min"


@pytest.mark.parametrize("name", ["curves.pdf", "curves", "curves.svg.txt", ""])
def test_another_extension_is_one_line_and_writes_nothing(pics, capsys, name):
    trained(Store())
    assert main(["models", "show", "m", "--plot", str(pics / name) if name else ""]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must end in .svg or .png" in err[0]
    assert not list(pics.iterdir())


def test_a_model_without_evaluations_is_one_line(pics, capsys):
    store = Store()
    ck, state = factories.checkpoint("fresh")
    ck.history, ck.curve = [], []
    store.save("fresh", ck, state)
    assert main(["models", "show", "fresh", "--plot", str(pics / "f.svg")]) == 1
    assert capsys.readouterr().err.strip() == "error: model 'fresh' has no evaluations yet: train it first, then plot it"
    assert not list(pics.iterdir())


def test_an_unwritable_target_is_one_line_and_keeps_nothing_half_written(pics, capsys):
    trained(Store())
    target = pics / "taken.svg"
    target.mkdir()  # a folder where the file should go
    assert main(["models", "show", "m", "--plot", str(target)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot write the plot to '{target}'")
    assert [p.name for p in pics.iterdir()] == ["taken.svg"] and target.is_dir()


def test_png_without_matplotlib_says_to_install_the_extra_or_use_svg(pics, capsys, monkeypatch):
    trained(Store())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    assert main(["models", "show", "m", "--plot", str(pics / "m.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'lmplay[plot]'" in err[0] and ".svg" in err[0]
    assert not list(pics.iterdir())


def test_png_with_matplotlib(pics):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (the 'plot' and 'test' extras have it)")
    trained(Store(), corpus=HOSTILE)
    out = pics / "m.png"
    assert main(["models", "show", "m", "--plot", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width >= 800 and height >= 400


# ---------------------------------------------------------------------------- the app
async def _palette(pilot, app, query: str) -> None:
    """Run the palette's first hit for ``query``."""
    from textual.command import CommandPalette
    from textual.widgets import Input


    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
    palette = app.screen
    await pilot.press(*query)
    await wait_for(pilot, lambda: palette.query_one(Input).value == query
                   and all(w.is_finished for w in app.workers if w.node is palette)
                   and palette.query_one("CommandList").option_count > 0)
    await pilot.press("enter")


@pytest.mark.usefixtures("record_notifications")
async def test_the_palette_saves_the_chart_as_svg_in_the_data_folder(home):
    from tui.app import create_app
    from tui.screens.model import ModelScreen


    ck = trained(Store(home), "tm")
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")  # open the model under the cursor
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await _palette(pilot, app, "save chart")
        target = home / "plots" / f"tm-step{ck.history[-1].step}.svg"
        await wait_for(pilot, lambda: f"Chart saved to {target}" in notes(app))
    root = svg_tree(target)
    assert series(root) == {"train": len(ck.curve), "validation": len(ck.history)}
    assert "tm: trained on pythondocs" in texts(root) and "step (optimizer updates)" in texts(root)
    assert not list(target.parent.glob(".*.tmp"))


@pytest.mark.usefixtures("record_notifications")
async def test_the_palette_says_a_chart_without_points_is_not_saved(home):
    from tui.app import create_app
    from tui.screens.model import ModelScreen


    store = Store(home)
    ck, state = factories.checkpoint("fresh")
    ck.history, ck.curve = [], []
    store.save("fresh", ck, state)
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await _palette(pilot, app, "save chart")
        await wait_for(pilot, lambda: any("has no evaluations yet" in n for n in notes(app)))
    assert not (home / "plots").exists()
