"""Property-based: random damage to meta.json (the vocabulary included) and settings.json never gives a
traceback in `lmcore models`, `lmcore models show`, `lmcore generate`, `lmcore train --resume` or the
app; a damaged model is one line (CLI) or "damaged" in the listing, and other models stay usable."""
import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lmcore
from lmcore.cli.main import main
from lmcore.store.model_store import Store

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 15), max_value=10 ** 15)
    | st.sampled_from([10 ** 9, 10 ** 12, 2 ** 63, -1, 0]) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12) | st.sampled_from(["\x1b]0;x\x07", "\udcff", "../../etc/passwd", "2", "x", "lstm"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _places(obj, path=(), depth=0):
    """(path to a container, key) pairs: where a value can be replaced or removed."""
    out = []
    if depth > 3:
        return out
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append((path, k))
            out += _places(v, path + (k,), depth + 1)
    elif isinstance(obj, list):
        for i in sorted({0, 1, len(obj) - 1} & set(range(len(obj)))):
            out.append((path, i))
            out += _places(obj[i], path + (i,), depth + 1)
    return out


def _mutate(doc, data):
    place = data.draw(st.sampled_from(_places(doc)), label="where")
    node = doc
    for k in place[0]:
        node = node[k]
    if data.draw(st.booleans(), label="remove") and isinstance(node, dict):
        del node[place[1]]
    else:
        node[place[1]] = data.draw(JSON_VALUES, label="value")


@pytest.fixture(scope="module")
def template(tmp_path_factory, prose_text):
    home = tmp_path_factory.mktemp("template")
    corpus = home / "prose.txt"
    corpus.write_text(prose_text, "utf-8")
    for name, arch in (("m", "lstm"), ("good", "ngram")):
        lmcore.train(name, arch=arch, preset="tiny", corpus=str(corpus), steps=3, eval_every=3,
                     home=home / "data")
    return home


def _fresh_home(template, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    shutil.copytree(template / "data", home / "data")
    shutil.copy(template / "prose.txt", home / "prose.txt")  # the corpus path the checkpoint names
    return home / "data"


def _cli(capsys, *argv) -> int:
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse
        rc = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    if rc != 0:
        assert len(err.strip().splitlines()) == 1, err  # one clear line
    return rc


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_damaged_meta_json_never_gives_a_traceback(template, tmp_path_factory, monkeypatch, capsys, data):
    home = _fresh_home(template, tmp_path_factory)
    monkeypatch.setenv("LMPLAY_HOME", str(home))
    p = Store(home).path("m") / "meta.json"
    doc = json.loads(p.read_text())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutate(doc, data)
    p.write_text(json.dumps(doc))  # NaN/Infinity written as JSON's tokens: hostile files hold them too
    assert _cli(capsys, "models") == 0
    assert _cli(capsys, "models", "--json") == 0
    assert Store(home).check("good").ok  # one bad entry never breaks the others
    ok = Store(home).check("m").ok
    assert (_cli(capsys, "models", "show", "m") == 0) == ok
    _cli(capsys, "generate", "m", "--prompt", "The ", "--length", "5", "--seed", "0")
    _cli(capsys, "train", "m", "--resume", "--steps", "1", "--eval-every", "1")
    assert _cli(capsys, "generate", "good", "--prompt", "The ", "--length", "5") == 0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(doc=st.dictionaries(st.sampled_from(["theme", "default_model", "generation", "colour_by_probability",
                                            "other"]), JSON_VALUES, max_size=4)
       | st.fixed_dictionaries({"generation": st.dictionaries(
           st.sampled_from(["temperature", "top_k", "top_p", "min_p", "repetition_penalty", "length", "seed"]),
           JSON_VALUES)}),
       raw=st.sampled_from([None, b"{oops", b"\xff\xfe", b"[]", b"null"]))
def test_damaged_settings_json_falls_back_to_defaults(tmp_path_factory, doc, raw):
    home = tmp_path_factory.mktemp("settings")
    (home / "settings.json").write_bytes(raw if raw is not None else json.dumps(doc).encode())
    s = lmcore.Settings(home)
    data = s.data
    for key, default in s.defaults.items():  # whatever survived has the default's type
        assert isinstance(data[key], type(default)) or (isinstance(default, float) and isinstance(data[key], int))
    if raw is not None:
        assert s.problem_message()


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_the_app_starts_and_opens_models_whatever_their_files_say(template, tmp_path_factory, data):
    from tui.app import create_app
    from tui.screens.model import ModelScreen

    home = _fresh_home(template, tmp_path_factory)
    p = Store(home).path("m") / "meta.json"
    doc = json.loads(p.read_text())
    _mutate(doc, data)
    p.write_text(json.dumps(doc))
    (home / "settings.json").write_text(json.dumps({"default_model": data.draw(JSON_VALUES),
                                                    "generation": data.draw(JSON_VALUES)}))
    app = create_app(home)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for row in range(2):
            app.screen.query_one("DataTable").move_cursor(row=row)
            await pilot.press("enter")
            await pilot.pause()
            if isinstance(app.screen, ModelScreen):
                await pilot.press("ctrl+b")
                await pilot.pause()
    assert app.return_code in (None, 0)
