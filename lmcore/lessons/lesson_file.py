"""The lesson file, read and written here only: Markdown with a TOML front matter between two ``+++``
lines (as Hugo writes it), so anyone can write one with a text editor.

    +++
    number = 2
    title = "n-grams and perplexity"
    chapter = "d2l 9.3 Language Models"
    minutes = 1                      # about how long the experiment takes on a 2-core CPU

    [settings]                       # what a learner may change; "$name" below takes its value
    corpus = "timemachine"

    [[models]]                       # each trained as model "lesson02-<key>"
    key = "bigram"
    arch = "ngram"
    corpus = "$corpus"
    options = { order = 2 }          # the family's options
    train = { minutes = 0.5 }        # TrainConfig fields (steps, minutes, lr, clip, ...)

    [[measures]]                     # numbers computed after training (lmcore/lessons/measures.py)
    key = "text"
    kind = "corpus"
    corpus = "$corpus"

    [view]                           # what the app opens at the end, and what to look at there
    kind = "compare"
    look = "..."

    [next]                           # one thing to try next: a setting to change and run again
    setting = "corpus"
    value = "tinyshakespeare"
    say = "..."
    +++
    The text, with placeholders the learner's results fill: {bigram.best_val_ppl:.2f}.

Every value is checked when the file is read: a broken file is one LessonError line naming the file.
Torch-free."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

try:
    import tomllib  # novermin: Python 3.10 reads it as tomli, below
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package
    import tomli as tomllib

from ..errors import LessonError
from ..safe_text import visible_line

FENCE = "+++"
MAX_BYTES = 200_000
VIEWS = ("compare", "chart", "inspect", "fill", "generate", "chat")  # what a lesson can open at its end
INSPECT_TABS = ("surprisal", "neurons", "attention", "gradients", "corpus")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,23}$")
_SETTING_RE = re.compile(r"^\$([a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class ModelPlan:
    """One model a lesson trains."""
    key: str
    arch: str
    corpus: object
    preset: object = "small"
    tokens: object = None
    prep: object = None
    options: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MeasurePlan:
    """One measurement a lesson makes after training: its kind (lmcore/lessons/measures.py) and arguments."""
    key: str
    kind: str
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ViewPlan:
    kind: str = "compare"
    model: str | None = None      # the key of the model whose screen opens (compare: none)
    tab: str | None = None        # inspect: the view (neurons, attention, ...)
    text: str | None = None       # inspect/fill/generate/chat: the text to put in
    look: str = ""                # one line: what to look at there


@dataclass(frozen=True)
class NextStep:
    say: str = ""
    setting: str | None = None
    value: object = None


@dataclass(frozen=True)
class Lesson:
    number: int
    title: str
    chapter: str
    minutes: float
    text: str
    settings: dict
    models: tuple[ModelPlan, ...]
    measures: tuple[MeasurePlan, ...]
    view: ViewPlan
    next: NextStep
    path: Path | None = None

    @property
    def ident(self) -> str:
        """The lesson's id: its number, two digits (lesson state and model names use it)."""
        return f"{self.number:02d}"

    def model_name(self, key: str) -> str:
        return f"lesson{self.ident}-{key}"

    def with_settings(self, changes: dict) -> "Lesson":
        """This lesson with some settings changed (each checked: a known setting, a value of its type)."""
        settings = dict(self.settings)
        for name, value in changes.items():
            if name not in settings:
                known = ", ".join(settings) or "none"
                raise LessonError(f"lesson {self.number} has no setting '{visible_line(str(name))[:40]}' "
                                  f"(its settings: {known})")
            settings[name] = coerce(name, value, settings[name])
        return replace(self, settings=settings)

    @property
    def view_text(self) -> str | None:
        """The text the view starts with, a ``"$setting"`` replaced by the setting's value."""
        text = substitute(self.view.text, self.settings)
        return None if text is None else str(text)

    def resolved(self) -> tuple[tuple[ModelPlan, ...], tuple[MeasurePlan, ...]]:
        """The models and measures with every ``"$setting"`` replaced by the setting's value."""
        sub = lambda v: substitute(v, self.settings)  # noqa: E731
        models = tuple(ModelPlan(m.key, m.arch, sub(m.corpus), sub(m.preset), sub(m.tokens), sub(m.prep),
                                 sub(m.options), sub(m.train)) for m in self.models)
        measures = tuple(MeasurePlan(m.key, m.kind, sub(m.args)) for m in self.measures)
        return models, measures


def substitute(value, settings: dict):
    """``value`` with each string ``"$name"`` (in lists and tables too) replaced by setting ``name``."""
    if isinstance(value, str):
        m = _SETTING_RE.match(value)
        return settings[m.group(1)] if m else value
    if isinstance(value, dict):
        return {k: substitute(v, settings) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, settings) for v in value]
    return value


def coerce(name: str, value, like):
    """A setting's new ``value`` (a string from a command line, or a value) as the type of its default."""
    try:
        if isinstance(like, bool):
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "yes", "no", "1", "0"):
                    raise ValueError
                return value.lower() in ("true", "yes", "1")
            return bool(value)
        if isinstance(like, int) and not isinstance(value, bool):
            out = int(value)
        elif isinstance(like, float) and not isinstance(value, bool):
            out = float(value)
            if not math.isfinite(out):
                raise ValueError
        else:
            out = str(value)
            if not out or len(out) > 200 or any(ord(c) < 32 for c in out):
                raise ValueError
        return out
    except (TypeError, ValueError):
        kind = {bool: "true or false", int: "a whole number", float: "a number"}.get(type(like), "a short text")
        raise LessonError(f"setting {name} must be {kind} (got {visible_line(str(value))[:40]!r})") from None


# ------------------------------------------------------------------------------------------ reading
def read(path) -> Lesson:
    """The lesson in file ``path``; LessonError (one line, naming the file) if it cannot be used."""
    path = Path(path)
    from ..store.files import BadFile, read_bytes

    try:
        raw = read_bytes(path, MAX_BYTES, follow_links=True)
    except OSError as exc:
        raise LessonError(f"cannot read lesson {visible_line(str(path))}: {exc.strerror or exc}") from None
    except BadFile as exc:
        raise LessonError(f"lesson {visible_line(path.name)} {exc}") from None
    try:
        return parse(raw.decode("utf-8"), path)
    except UnicodeDecodeError:
        raise LessonError(f"lesson {path.name} is not UTF-8 text") from None
    except LessonError as exc:
        raise LessonError(f"lesson {visible_line(path.name)}: {exc}") from None


def parse(source: str, path: Path | None = None) -> Lesson:
    """A lesson from its file's text (LessonError says what is wrong)."""
    front, text = split_front_matter(source)
    try:
        meta = tomllib.loads(front)
    except tomllib.TOMLDecodeError as exc:
        raise LessonError(f"its front matter is not valid TOML ({exc})") from None
    unknown = set(meta) - {"number", "title", "chapter", "minutes", "settings", "models", "measures", "view",
                           "next"}
    if unknown:
        raise LessonError(f"unknown front matter key(s): {', '.join(sorted(unknown))}")
    number = _int(meta, "number", 1, 99)
    settings = _table(meta, "settings")
    for name, value in settings.items():
        if not _KEY_RE.match(name) or not isinstance(value, (str, int, float, bool)):
            raise LessonError(f"setting {name!r} must be a lower-case name with a text, number or true/false value")
    models = tuple(_model(m, settings) for m in _list(meta, "models"))
    measures = tuple(_measure(m, settings) for m in _list(meta, "measures"))
    keys = [p.key for p in (*models, *measures)]
    if len(set(keys)) != len(keys):
        raise LessonError("two models or measures have the same key")
    for m in measures:  # a measure of one of the lesson's models names it by its key
        from .measures import MEASURES

        named = m.args.get("model")
        if named is None and "model" in MEASURES[m.kind].args:
            raise LessonError(f"measure {m.key}: a {m.kind} measure needs model = the key of one of the lesson's models")
        if named is not None and named not in {p.key for p in models}:
            raise LessonError(f"measure {m.key}: model '{visible_line(str(named))[:30]}' is not one of the lesson's models")
    lesson = Lesson(number, _str(meta, "title", 80), _str(meta, "chapter", 120),
                    _float(meta, "minutes", 0, 600), text, settings, models, measures,
                    _view(_table(meta, "view"), {m.key for m in models}, settings), _next(_table(meta, "next"), settings),
                    path)
    from .placeholders import check_text

    check_text(lesson)
    return lesson


def split_front_matter(source: str) -> tuple[str, str]:
    lines = source.lstrip("\ufeff").splitlines(keepends=True)
    if not lines or lines[0].strip() != FENCE:
        raise LessonError(f"a lesson starts with a '{FENCE}' line, its TOML front matter, and another '{FENCE}'")
    for i in range(1, len(lines)):
        if lines[i].strip() == FENCE:
            return "".join(lines[1:i]), "".join(lines[i + 1:]).strip("\n") + "\n"
    raise LessonError(f"its front matter has no closing '{FENCE}' line")


def _model(d, settings: dict) -> ModelPlan:
    from ..models import archs

    d = _as_table(d, "each [[models]] entry")
    _only(d, {f.name for f in fields(ModelPlan)}, "a model")
    key = _key(d)
    arch = _str(d, "arch", 40)
    if arch not in archs():
        raise LessonError(f"model {key}: unknown arch '{visible_line(arch)}' (known: {', '.join(archs())})")
    if "corpus" not in d:
        raise LessonError(f"model {key} needs a corpus")
    plan = ModelPlan(key, arch, d["corpus"], d.get("preset", "small"), d.get("tokens"), d.get("prep"),
                     _as_table(d.get("options", {}), f"model {key}'s options"),
                     _as_table(d.get("train", {}), f"model {key}'s train"))
    _check_settings_used(plan, settings, f"model {key}")
    from ..training.config import TrainConfig

    bad = set(plan.train) - {f.name for f in fields(TrainConfig)}
    if bad:
        raise LessonError(f"model {key}: unknown train field(s) {', '.join(sorted(bad))}")
    if "steps" not in plan.train and "minutes" not in plan.train:
        raise LessonError(f"model {key} needs a budget: train = {{ minutes = ... }} or {{ steps = ... }}")
    return plan


def _measure(d, settings: dict) -> MeasurePlan:
    from .measures import MEASURES

    d = _as_table(d, "each [[measures]] entry")
    key = _key(d)
    kind = _str(d, "kind", 40)
    if kind not in MEASURES:
        raise LessonError(f"measure {key}: unknown kind '{visible_line(kind)}' (known: {', '.join(MEASURES)})")
    plan = MeasurePlan(key, kind, {k: v for k, v in d.items() if k not in ("key", "kind")})
    _check_settings_used(plan, settings, f"measure {key}")
    MEASURES[kind].check(plan.args, key)
    return plan


def _view(d: dict, model_keys: set, settings: dict) -> ViewPlan:
    _only(d, {f.name for f in fields(ViewPlan)}, "the view")
    view = ViewPlan(d.get("kind", "compare"), d.get("model"), d.get("tab"), d.get("text"), d.get("look", ""))
    if view.kind not in VIEWS:
        raise LessonError(f"unknown view '{visible_line(str(view.kind))}' (one of {', '.join(VIEWS)})")
    if view.kind != "compare" and view.model not in model_keys:
        raise LessonError(f"the {view.kind} view needs model = the key of one of the lesson's models")
    if view.kind == "inspect" and view.tab not in INSPECT_TABS:
        raise LessonError(f"the inspect view needs tab = one of {', '.join(INSPECT_TABS)}")
    _check_settings_used(view, settings, "the view")
    for name in ("look", "text"):
        if getattr(view, name) is not None and not isinstance(getattr(view, name), str):
            raise LessonError(f"the view's {name} must be a text")
    return view


def _next(d: dict, settings: dict) -> NextStep:
    _only(d, {"say", "setting", "value"}, "next")
    step = NextStep(str(d.get("say", "")), d.get("setting"), d.get("value"))
    if step.setting is not None:
        if step.setting not in settings:
            raise LessonError(f"next.setting '{visible_line(str(step.setting))}' is not one of the lesson's settings")
        coerce(step.setting, step.value, settings[step.setting])
    return step


def _check_settings_used(plan, settings: dict, what: str) -> None:
    def walk(v):
        if isinstance(v, str):
            m = _SETTING_RE.match(v)
            if m and m.group(1) not in settings:
                raise LessonError(f"{what} uses ${m.group(1)}, which is not in [settings]")
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    for f in fields(plan):
        walk(getattr(plan, f.name))


def _key(d: dict) -> str:
    key = d.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise LessonError(f"key {visible_line(str(key))[:30]!r} must be a lower-case name (letters, digits, _), "
                          f"at most 24 characters")
    return key


def _only(d: dict, allowed: set, what: str) -> None:
    bad = set(d) - allowed
    if bad:
        raise LessonError(f"{what} has unknown field(s): {', '.join(sorted(bad))}")


def _as_table(v, what: str) -> dict:
    if not isinstance(v, dict):
        raise LessonError(f"{what} must be a table")
    return v


def _table(meta: dict, name: str) -> dict:
    return _as_table(meta.get(name, {}), f"[{name}]")


def _list(meta: dict, name: str) -> list:
    v = meta.get(name, [])
    if not isinstance(v, list):
        raise LessonError(f"{name} must be a list of tables ([[{name}]])")
    return v


def _str(d: dict, name: str, limit: int) -> str:
    v = d.get(name)
    if not isinstance(v, str) or not v.strip() or len(v) > limit or any(ord(c) < 32 for c in v):
        raise LessonError(f"{name} must be a one-line text of at most {limit} characters")
    return v


def _int(d: dict, name: str, lo: int, hi: int) -> int:
    v = d.get(name)
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise LessonError(f"{name} must be a whole number from {lo} to {hi}")
    return v


def _float(d: dict, name: str, lo: float, hi: float) -> float:
    v = d.get(name)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not lo < v <= hi:
        raise LessonError(f"{name} must be a number of minutes above {lo} and at most {hi}")
    return float(v)


# ------------------------------------------------------------------------------------------ writing
def dumps(lesson: Lesson) -> str:
    """The lesson file of ``lesson``, its settings as they are now (what ``lmcore lesson export`` writes):
    the original file with its [settings] table rewritten, so comments and layout stay."""
    source = lesson.path.read_text("utf-8") if lesson.path is not None else None
    if source is None:
        raise LessonError("this lesson has no file to export from")
    front, text = split_front_matter(source)
    lines, out, skipping = front.splitlines(), [], False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = stripped == "[settings]"
            if skipping:
                out.append("[settings]")
                out.extend(f"{k} = {toml_value(v)}" for k, v in lesson.settings.items())
                continue
        if not skipping:
            out.append(line)
    written = f"{FENCE}\n" + "\n".join(out).rstrip("\n") + f"\n{FENCE}\n" + text
    parse(written)  # what is written reads back
    return written


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
