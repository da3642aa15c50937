"""Files that are not what they seem: a FIFO, a symbolic link to /dev/zero, a huge file or a JSON nested
100,000 deep in place of each file lmplay reads (settings.json, a model's meta.json and transcript.json,
a token-cache entry's metadata, the sha1 memo, a text given with --file). Each is read at once (never
waited on, never read without end) and gives the outcome a damaged file of its kind has: the defaults
with a notification, the model listed as damaged, a new transcript with a note, the cache entry built
again, the corpus hashed again, one clear line from the CLI (and a JSON object with --json).

In-process cases run in a daemon thread that must finish (a hang fails the test instead of blocking the
suite); CLI cases run in a subprocess with a timeout."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import lmcore
from lmcore.data import corpus
from lmcore.data import token_cache
from lmcore.errors import StoreError
from lmcore.store.model_store import Store
from lmcore.data.text import Tokenizer
from tests import factories
from tests.tui_helpers import notes, record_notifications, wait_for  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("fifo", "dev-zero", "huge", "deep")
HANG = 300  # seconds: only a hang gets near this (each case takes well under a second)
DEEP = b"[" * 100_000 + b"]" * 100_000  # valid JSON, nested 100,000 deep
OLD_TEXT = Path(argparse.__file__)  # a text file changed long ago: its sha1 is remembered (a fresh one is not)
SAID = {"fifo": "FIFO", "dev-zero": "", "huge": "larger than", "deep": "nests deeper"}


def make_hostile(path: Path, kind: str) -> None:
    """Put a hostile ``kind`` of file at ``path`` (replacing what is there)."""
    if path.is_symlink() or path.exists():
        path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "huge":
        with open(path, "wb") as f:
            f.truncate(300 << 20)  # 300 MB (sparse: no disk used), over every limit
    else:
        path.write_bytes(DEEP)


def promptly(fn, *args):
    """``fn(*args)``, which must return (or raise) instead of hanging; its result or its exception."""
    box: dict = {}

    def run():
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(HANG)
    if t.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} hung on a hostile file")
    if "error" in box:
        raise box["error"]
    return box["value"]


def cli(*argv, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, LMPLAY_HOME=str(home))
    try:
        return subprocess.run([sys.executable, "-m", "lmcore", *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=HANG, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"lmcore {' '.join(argv)} hung on a hostile file")


# ---------------------------------------------------------------- settings.json

@pytest.mark.parametrize("kind", KINDS)
def test_hostile_settings_json_gives_the_defaults_and_says_why(home, kind):
    home.mkdir(parents=True)
    make_hostile(home / "settings.json", kind)
    s = promptly(lmcore.Settings, home)
    assert s.data == s.defaults
    msg = s.problem_message()
    assert msg and "settings.json" in msg and "defaults apply" in msg
    assert SAID[kind] in msg
    if kind == "dev-zero":
        assert "character device" in msg and "not a regular file" in msg
    with pytest.raises(lmcore.LmError, match="not overwritten"):  # remembered for this session only
        s.set("theme", "textual-light")
    assert s.get("theme") == "textual-light"


def test_a_settings_file_with_a_typo_is_not_overwritten(home):
    """Hand edits with a syntax error are the user's work: changing a setting in the app keeps them."""
    home.mkdir(parents=True)
    typo = '{"theme": "textual-light",\n "generation": {"temperature": 0.5}, oops}\n'
    (home / "settings.json").write_text(typo)
    s = lmcore.Settings(home)
    assert "not valid JSON" in s.problem_message()
    with pytest.raises(lmcore.LmError, match="could not save settings"):
        s.set("theme", "nord")
    assert (home / "settings.json").read_text() == typo


def test_a_settings_json_linked_to_a_real_file_is_read(home, tmp_path):
    """A settings file kept elsewhere (dotfiles) and linked in is still the user's settings."""
    home.mkdir(parents=True)
    target = tmp_path / "dotfiles-settings.json"
    target.write_text(json.dumps({"theme": "textual-light"}))
    (home / "settings.json").symlink_to(target)
    s = lmcore.Settings(home)
    assert s.problem_message() is None and s.data["theme"] == "textual-light"


# ---------------------------------------------------------------- a model's meta.json

def _hostile_meta_models(store: Store) -> dict[str, str]:
    """One good model and one model per hostile meta.json; name -> what its reason must say."""
    factories.save(store, "good")
    expect = {}
    for kind in KINDS:
        factories.save(store, kind)
        make_hostile(store.path(kind) / "meta.json", kind)
        expect[kind] = {"fifo": "FIFO", "dev-zero": "symbolic link", "huge": "larger than", "deep": "nests deeper"}[kind]
    good = json.loads((store.path("good") / "meta.json").read_text())
    for name, field in (("deep-history", "history"), ("deep-bpe", "tokenizer")):
        factories.save(store, name)
        doc = dict(good, name=name)
        if field == "history":  # a valid meta.json whose history nests 100,000 deep
            doc["history"] = "@@"
        else:  # a BPE tokenizer that is a JSON text nested 100,000 deep
            doc["tokenizer"] = dict(good["tokenizer"], level="bpe", bpe="@@")
        raw = json.dumps(doc).replace('"@@"', DEEP.decode() if field == "history" else json.dumps(DEEP.decode()))
        (store.path(name) / "meta.json").write_text(raw)
        expect[name] = "damaged"
    return expect


def test_hostile_meta_json_lists_each_model_as_damaged(home):
    store = Store(home)
    expect = _hostile_meta_models(store)
    entries = {e.name: e for e in promptly(store.list)}
    assert entries["good"].ok
    for name, says in expect.items():
        assert not entries[name].ok and "damaged" in entries[name].reason, name
        assert says in entries[name].reason, (name, entries[name].reason)
    with pytest.raises(StoreError, match="FIFO"):
        promptly(store.read, "fifo")


def test_cli_lists_shows_and_generates_with_hostile_meta_json(home):
    store = Store(home)
    expect = _hostile_meta_models(store)
    r = cli("models", "--json", home=home)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    rows = {d["name"]: d for d in map(json.loads, r.stdout.splitlines())}
    assert rows["good"]["ok"] and not any(rows[n]["ok"] for n in expect)
    r = cli("models", home=home)
    assert r.returncode == 0 and "damaged" in r.stdout and "Traceback" not in r.stderr
    for name in ("fifo", "dev-zero", "deep", "deep-bpe"):
        r = cli("generate", name, "--prompt", "ab", "--length", "3", "--json", home=home)
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
        out = json.loads(r.stdout)  # --json: the failure is a JSON object on standard output
        assert out["event"] == "failed" and "damaged" in out["message"]
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: ")
    r = cli("models", "show", "huge", "--json", home=home)
    assert r.returncode == 1 and json.loads(r.stdout)["event"] == "failed"


@pytest.mark.parametrize("kind", ("fifo", "dev-zero", "huge"))
def test_hostile_weights_or_resume_file_is_damage_not_a_hang(home, kind):
    store = Store(home)
    factories.save(store, "good")
    ck = factories.save(store, "w")
    make_hostile(store.path("w") / ck.files.weights, kind)
    entry = promptly(store.check, "w")
    assert not entry.ok and "weights file" in entry.reason and "damaged" in entry.reason
    assert store.check("good").ok
    ck = factories.save(store, "r", resume={"model": {}, "step": 1})
    make_hostile(store.path("r") / ck.files.resume, kind)
    with pytest.raises(StoreError, match="resume state .* is unreadable"):
        promptly(store.load_resume, "r", store.read("r"))


# ---------------------------------------------------------------- the app's transcript

@pytest.mark.parametrize("kind", KINDS)
def test_hostile_transcript_is_refused_with_its_reason(home, kind):
    store = Store(home)
    factories.save(store, "m")
    make_hostile(store.path("m") / "transcript.json", kind)
    with pytest.raises(StoreError) as err:
        promptly(store.read_extra, "m", "transcript", {})
    assert "transcript.json of model 'm'" in str(err.value)
    assert (SAID[kind] or "symbolic link") in str(err.value)
    store.write_extra("m", "transcript", {"turns": []})  # the next save replaces it
    assert store.read_extra("m", "transcript") == {"turns": []}


@pytest.mark.usefixtures("record_notifications")
async def test_the_app_starts_and_generates_with_hostile_settings_and_transcript(home):
    from tui.app import create_app
    from tui.screens.model import ModelScreen
    from tui.widgets.generation.transcript import Turn

    store = Store(home)
    factories.save(store, "m")
    make_hostile(home / "settings.json", "fifo")
    make_hostile(store.path("m") / "transcript.json", "deep")
    app = promptly(create_app, home)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: any("settings.json" in n and "FIFO" in n for n in notes(app)))
        await pilot.press("enter")  # open the model under the cursor: its Generate tab
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen))
        await wait_for(pilot, lambda: any("transcript" in n and "nests deeper" in n for n in notes(app)))
        assert not app.screen.query(Turn)  # a new, empty transcript


# ---------------------------------------------------------------- the token cache and the sha1 memo

@pytest.mark.parametrize("kind", KINDS)
def test_hostile_token_cache_metadata_is_built_again(home, prose, kind):
    src = corpus.open_source(str(prose))
    sha1 = src.sha1()
    first = token_cache.tokens_for(home, src, sha1, Tokenizer(), None, 0.1)
    assert first.built
    (meta,) = token_cache.cache_dir(home).glob("*/meta.json")
    make_hostile(meta, kind)
    again = promptly(token_cache.tokens_for, home, corpus.open_source(str(prose)), sha1, Tokenizer(), None, 0.1)
    assert again.built  # rebuilt, not read from the hostile entry
    assert again.vocab.idx_to_token == first.vocab.idx_to_token
    assert meta.is_file() and not meta.is_symlink() and json.loads(meta.read_text())["tokens"] == first.file.count


@pytest.mark.parametrize("kind", KINDS)
def test_hostile_sha1_memo_is_ignored_and_the_corpus_hashed_again(tmp_path, kind):
    memo_dir = tmp_path / "memo"
    want = corpus.sha1_of_file(OLD_TEXT)
    assert corpus.open_source(str(OLD_TEXT)).sha1(memo_dir) == want
    (memo,) = memo_dir.iterdir()
    make_hostile(memo, kind)
    assert promptly(corpus.open_source(str(OLD_TEXT)).sha1, memo_dir) == want


def test_cli_trains_with_a_hostile_token_cache_and_memo(home):
    """`lmcore train` through the CLI: the memo and the cache entry of the corpus are FIFOs."""
    r = cli("train", "a", "--arch", "ngram", "--preset", "tiny", "--corpus", str(OLD_TEXT), "--json", home=home)
    assert r.returncode == 0, r.stderr
    hostile = [*(home / "cache" / "sha1").iterdir(), *token_cache.cache_dir(home).glob("*/meta.json")]
    assert len(hostile) == 2
    for p in hostile:
        make_hostile(p, "fifo")
    r = cli("train", "b", "--arch", "ngram", "--preset", "tiny", "--corpus", str(OLD_TEXT), "--json", home=home)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    assert "done" in [json.loads(line).get("event") for line in r.stdout.splitlines()]
    assert Store(home).check("b").ok and Store(home).read("b").corpus.sha1 == corpus.sha1_of_file(OLD_TEXT)


# ---------------------------------------------------------------- texts given with --file

@pytest.mark.parametrize("kind", ("fifo", "dev-zero", "huge"))
def test_compare_and_inspect_refuse_a_hostile_file(home, tmp_path, kind):
    store = Store(home)
    factories.save(store, "a")
    factories.save(store, "b")
    f = tmp_path / "text.txt"
    make_hostile(f, kind)
    said = {"fifo": "FIFO", "dev-zero": "character device", "huge": "over 8 MB"}[kind]
    r = cli("compare", "a", "b", "--file", str(f), "--json", home=home)
    assert r.returncode == 1 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert json.loads(r.stdout)["event"] == "failed"
    r = cli("inspect", "surprisal", "a", "--file", str(f), home=home)
    assert r.returncode == 1 and said in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
