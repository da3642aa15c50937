"""The lessons: every shipped lesson runs end to end at a tiny budget with every placeholder filled; the
lesson file format is checked (a broken file is one LessonError line, listed as broken); the command
line's run --json is strict JSON; an exported lesson keeps its settings."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import lmcore.lessons as L
from lmcore.cli.main import main
from lmcore.store.model_store import Store

SHIPPED = sorted((Path(__file__).resolve().parents[1] / "assets" / "lessons").glob("*.md"))
DOWNLOADED = ("timemachine", "tinyshakespeare")  # corpora a test must not need: a built-in one stands in
TINY = {"preset": "tiny", "back": 5, "minutes": 0.1}


def tiny(lesson):
    """The lesson as a test runs it: a built-in corpus, the tiny preset, short gradient paths."""
    changes = {k: v for k, v in TINY.items() if k in lesson.settings}
    if lesson.settings.get("corpus") in DOWNLOADED:
        changes["corpus"] = "pythondocs"
    return lesson.with_settings(changes)


def strict(text: str):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_the_ten_lessons_ship_in_order():
    lessons = [L.read_lesson(p) for p in SHIPPED]
    assert [x.number for x in lessons] == list(range(1, 11))
    assert all(p.name.startswith(f"{x.number:02d}-") for p, x in zip(SHIPPED, lessons))
    assert all(0 < x.minutes <= 5 for x in lessons)  # a few minutes on a 2-core CPU


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_a_shipped_lesson_runs_at_a_tiny_budget_and_fills_every_placeholder(path, home):
    lesson = tiny(L.read_lesson(path))
    shown = L.run(lesson, home=home, steps=1)
    values = shown.progress.values
    for text in (lesson.text, lesson.view.look, lesson.next.say):
        assert L.unfilled(text, values) == []
    assert L.UNFILLED not in shown.text and "n/a" not in shown.text
    for m in lesson.measures:  # a measure gives every field it declares (a lesson may name any of them)
        assert set(values[m.key]) == set(L.MEASURES[m.kind].field_names())
    store = Store(home)
    assert all(store.exists(lesson.model_name(m.key)) for m in lesson.models)
    again = L.result(lesson, L.load_progress(lesson.number, home))  # what the Learn screen shows later
    assert again.text == shown.text and again.progress.state == "done"
    strict(json.dumps(shown.to_json(), allow_nan=False))


# ------------------------------------------------------------------------------------------ the format
GOOD = """+++
number = 42
title = "A test lesson"
chapter = "nowhere"
minutes = 1

[settings]
corpus = "pythondocs"

[[models]]
key = "uni"
arch = "ngram"
corpus = "$corpus"
options = { order = 1 }
train = { steps = 1 }

[[measures]]
key = "text"
kind = "corpus"
corpus = "$corpus"
+++
Perplexity {uni.best_val_ppl:.2f}; {text.chars:,} characters.
"""


def write(tmp_path, text, name="42-test.md") -> Path:
    p = tmp_path / name
    p.write_text(text, "utf-8")
    return p


def test_a_good_lesson_file_reads(tmp_path):
    lesson = L.read_lesson(write(tmp_path, GOOD))
    assert lesson.number == 42 and [m.key for m in lesson.models] == ["uni"]


@pytest.mark.parametrize("change, says", [
    (("number = 42", "number = = 42"), "not valid TOML"),
    (("minutes = 1", "minutes = 1\ncolour = \"red\""), "unknown front matter key"),
    (("{uni.best_val_ppl:.2f}", "{uni.best_val_pp:.2f}"), "has no field 'best_val_pp'"),
    (("{text.chars:,}", "{txt.chars:,}"), "no model or measure has key 'txt'"),
    (("{text.chars:,}", "{text.chars!r}"), "must be {key.field}"),
    (('kind = "corpus"', 'kind = "horoscope"'), "unknown kind 'horoscope'"),
    (('arch = "ngram"', 'arch = "gpt9"'), "unknown arch 'gpt9'"),
    (('corpus = "$corpus"\noptions', 'corpus = "$text"\noptions'), "uses $text, which is not in [settings]"),
    (('train = { steps = 1 }', 'train = { speed = 1 }'), "unknown train field(s) speed"),
    (('kind = "corpus"\ncorpus = "$corpus"', 'kind = "units"'), "a units measure needs model ="),
    (('kind = "corpus"\ncorpus = "$corpus"', 'kind = "units"\nmodel = "lstm"'),
     "model 'lstm' is not one of the lesson's models"),
    (('kind = "corpus"\ncorpus = "$corpus"', 'kind = "samples"\nmodel = "uni"\ntokens = "many"'),
     "tokens must be int"),
    (("+++\nPerplexity", "Perplexity"), "no closing '+++' line"),
])
def test_a_broken_lesson_file_is_one_lesson_error_line(tmp_path, change, says):
    old, new = change
    assert old in GOOD
    with pytest.raises(L.LessonError) as err:
        L.read_lesson(write(tmp_path, GOOD.replace(old, new, 1)))
    message = str(err.value)
    assert says in message and "\n" not in message and message.startswith("lesson 42-test.md")


@pytest.mark.parametrize("setting, value, says", [
    ("corpus", "", "corpus must be a short text"), ("colour", "red", "has no setting 'colour'")])
def test_a_bad_setting_is_one_lesson_error_line(setting, value, says):
    lesson = L.find(3)
    with pytest.raises(L.LessonError, match=says):
        lesson.with_settings({setting: value})
    with pytest.raises(L.LessonError, match="lr must be a number"):
        lesson.with_settings({"lr": "fast"})


def test_a_broken_lesson_of_the_learner_is_listed_as_broken(home, capsys):
    own = L.own_dir(home)
    own.mkdir(parents=True)
    write(own, GOOD.replace("number = 42", "number = 42\nnumber = 43"), "42-mine.md")
    write(own, GOOD.replace("number = 42", "number = 44"), "44-fine.md")
    assert main(["--home", str(home), "lesson", "list"]) == 0
    out = capsys.readouterr().out
    assert "42-mine.md: broken:" in out and "A test lesson" in out  # the good one is still listed
    assert "Traceback" not in out
    assert main(["--home", str(home), "lesson", "list", "--json"]) == 0
    rows = [strict(line) for line in capsys.readouterr().out.splitlines()]
    assert {r.get("file") for r in rows if "broken" in r} == {"42-mine.md"}


# ------------------------------------------------------------------------------------------ the command line
def test_lesson_run_json_is_strict_json(home, capsys):
    assert main(["--home", str(home), "lesson", "run", "2", "--set", "corpus=pythondocs", "--steps", "1",
                 "--json"]) == 0
    out = strict(capsys.readouterr().out)
    assert out["lesson"] == 2 and out["state"] == "done" and out["settings"] == {"corpus": "pythondocs"}
    assert out["values"]["bigram"]["best_val_ppl"] > 1 and "…" not in out["text"]


def test_an_exported_lesson_keeps_its_settings(home, tmp_path, capsys):
    target = tmp_path / "for-students.md"
    assert main(["--home", str(home), "lesson", "export", "3", str(target), "--set", "corpus=pythondocs",
                 "--set", "lr=0.5", "--set", "hidden=16"]) == 0
    assert "lr = 0.5" in target.read_text("utf-8")
    capsys.readouterr()
    assert main(["--home", str(home), "lesson", "run", str(target), "--steps", "1", "--json"]) == 0
    out = strict(capsys.readouterr().out)
    assert out["settings"] == {"corpus": "pythondocs", "lr": 0.5, "hidden": 16}
    store = Store(home)
    ck = store.read(out["models"]["clipped"])
    assert ck.train.lr == 0.5 and ck.model.hidden == 16 and ck.train.clip == 1.0
    assert store.read(out["models"]["unclipped"]).train.clip == 0.0


def test_an_export_it_cannot_write_is_one_line(home, tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", "utf-8")
    assert main(["--home", str(home), "lesson", "export", "2", str(blocker / "x.md")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write") and len(err.strip().splitlines()) == 1
    assert not (blocker / "x.md").exists()


def test_a_bad_setting_on_the_command_line_is_one_line(home, capsys):
    assert main(["--home", str(home), "lesson", "run", "3", "--set", "lr=fast", "--steps", "1"]) != 0
    err = capsys.readouterr().err
    assert "lr must be a number" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("kind", ["units", "attention", "alignment", "gradient_flow"])  # an n-gram has none
def test_a_measure_of_the_wrong_kind_of_model_fails_the_lesson_in_one_line(home, tmp_path, capsys, kind):
    extra = '\n[[measures]]\nkey = "look"\nkind = "%s"\nmodel = "uni"\n+++' % kind
    path = write(tmp_path, GOOD.replace("+++\nPerplexity", extra + "\nPerplexity"))
    assert main(["--home", str(home), "lesson", "run", str(path), "--steps", "1"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if line.startswith("error")]) == 1 and "Traceback" not in "\n".join(err)
    assert L.load_progress(42, home).state == "failed"


def test_the_view_starts_with_the_text_the_learner_set():
    lesson = L.find(6)
    assert lesson.view_text == lesson.settings["text"]
    assert lesson.with_settings({"text": "the time _ was"}).view_text == "the time _ was"


def test_a_view_naming_an_unknown_setting_is_one_lesson_error_line(tmp_path):
    text = GOOD.replace("+++\nPerplexity", '[view]\nkind = "fill"\nmodel = "uni"\ntext = "$prompt"\n+++\nPerplexity', 1)
    assert text != GOOD
    with pytest.raises(L.LessonError, match=r"the view uses \$prompt, which is not in \[settings\]"):
        L.read_lesson(write(tmp_path, text))
