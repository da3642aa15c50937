"""``lmcore lesson list | show | run | export``: the app's lessons headless — listed with where the learner
stands, shown with the learner's numbers, run (each model trained, then the text filled), and exported
with the learner's settings as a lesson file a teacher can hand out (``lmplay --lesson FILE`` opens it)."""
from __future__ import annotations

import os
import sys
import threading

from .output import _out, _v


def add_parser(sub) -> None:
    p = sub.add_parser("lesson", help="the chapters as runnable lessons: list, show, run, export")
    p.set_defaults(handler=cmd_list, action=None)
    acts = p.add_subparsers(dest="action", parser_class=type(p))
    ls = acts.add_parser("list", help="the lessons, in order, with where you stand in each")
    ls.set_defaults(handler=cmd_list)
    ls.add_argument("--json", action="store_true", help="one JSON object per lesson")
    for name, handler, about in (("show", cmd_show, "a lesson's text, filled with your last run's numbers"),
                                 ("run", cmd_run, "run a lesson's experiment and print its text with your numbers")):
        a = acts.add_parser(name, help=about)
        a.set_defaults(handler=handler)
        a.add_argument("lesson", help="a lesson's number (lmcore lesson list) or a lesson file")
        a.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="change one of the lesson's settings (e.g. corpus=tinyshakespeare); repeatable")
        a.add_argument("--json", action="store_true", help="one JSON object: the numbers and the filled text")
    run = acts.choices["run"]
    run.add_argument("--steps", type=int, default=None,
                     help="train every model of the lesson this many steps instead of its own budget (a quick look)")
    ex = acts.add_parser("export", help="write a lesson with your settings to a file (lmplay --lesson FILE opens it)")
    ex.set_defaults(handler=cmd_export)
    ex.add_argument("lesson", help="a lesson's number or a lesson file")
    ex.add_argument("file", help="the lesson file to write (.md)")
    ex.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="change a setting before writing (default: the settings of your last run)")


def chosen(ref: str, sets: list[str], home=None):
    """The lesson ``ref`` with the learner's settings: those of their last run, then ``--set`` ones."""
    from ..errors import ConfigError
    from ..lessons import find, lessons_dir, load_progress, own_dir

    lesson = find(ref, home)
    listed = lesson.path is not None and lesson.path.parent.resolve() in (lessons_dir().resolve(),
                                                                           own_dir(home).resolve())
    last = load_progress(lesson.number, home).settings if listed else {}  # a lesson file given keeps its own
    lesson = lesson.with_settings({k: v for k, v in last.items() if k in lesson.settings})
    changes = {}
    for item in sets:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"--set takes NAME=VALUE (got {_v(item)!r})")
        changes[name.strip()] = value.strip()
    return lesson.with_settings(changes)


def cmd_list(args) -> int:
    from ..lessons import catalog, load_progress

    rows = []
    for e in catalog(args.home):
        if not e.ok:
            rows.append({"file": e.path.name, "broken": e.error})
            continue
        p = load_progress(e.lesson.number, args.home)
        rows.append({"number": e.lesson.number, "title": e.lesson.title, "chapter": e.lesson.chapter,
                     "minutes": e.lesson.minutes, "state": p.state, **({"note": p.message} if p.message else {})})
    if getattr(args, "json", False):
        for r in rows:
            _out(r)
        return 0
    for r in rows:
        if "broken" in r:
            print(f" ✗  {_v(r['file'])}: broken: {_v(r['broken'])}")
        else:
            print(f"{r['number']:>2}  {_v(r['title'])}  ({r['state']}; about {r['minutes']:g} min; {_v(r['chapter'])})")
    if not rows:
        print("no lessons found")
    return 0


def cmd_show(args) -> int:
    from ..lessons import load_progress, result

    lesson = chosen(args.lesson, args.set, args.home)
    shown = result(lesson, load_progress(lesson.number, args.home))
    return _print(shown, args.json)


def cmd_run(args) -> int:
    from ..errors import Cancelled
    from ..lessons import run
    from ..store.model_store import Store
    from .train_output import StopSignals

    lesson = chosen(args.lesson, args.set, args.home)
    stop = threading.Event()
    names = {m.key: lesson.model_name(m.key) for m in lesson.models}

    def progress(key, ev):
        if args.json:
            return
        if ev.kind == "start":
            print(f"training {_v(names[key])} ({_v(ev.arch) if hasattr(ev, 'arch') else ''})…", file=sys.stderr)
        elif ev.kind == "done":
            print(f"  {_v(names[key])}: {ev.how}, {ev.step:,} steps, val ppl {ev.best_val_ppl:.3f}", file=sys.stderr)

    try:
        with StopSignals(stop, args.json):
            shown = run(lesson, Store(args.home), steps=args.steps, on_event=progress, stop=stop)
    except Cancelled:
        print("stopped: the models trained so far are saved; run the lesson again to finish it", file=sys.stderr)
        return 130
    return _print(shown, args.json)


def cmd_export(args) -> int:
    from pathlib import Path

    from ..errors import ConfigError
    from ..lessons import dumps

    lesson = chosen(args.lesson, args.set, args.home)
    target = Path(args.file).expanduser()
    if target.suffix != ".md":
        raise ConfigError(f"a lesson file ends in .md (got {_v(args.file)})")
    from ..store.files import write_bytes

    try:
        write_bytes(target, dumps(lesson).encode("utf-8"))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(target, 0o666 & ~umask)  # a file to hand out: readable as any new file is
    except OSError as exc:
        raise ConfigError(f"cannot write {_v(target)}: {exc.strerror or exc} (give a file in a folder you can "
                          f"write)") from None
    settings = ", ".join(f"{k}={v}" for k, v in lesson.settings.items()) or "no settings"
    print(f"wrote lesson {lesson.number} ({_v(settings)}) to {_v(target)}: lmplay --lesson {_v(target)} opens it")
    return 0


def _print(shown, as_json: bool) -> int:
    if as_json:
        _out(shown.to_json())
        return 0
    from ..safe_text import visible

    lesson = shown.lesson
    print(f"Lesson {lesson.number}: {_v(lesson.title)} ({_v(lesson.chapter)}) — {shown.progress.state}")
    print()
    print(visible(shown.text).rstrip())
    if shown.look:
        print(f"\nLook: {_v(shown.look)}")
    if shown.next:
        print(f"Next: {_v(shown.next)}")
    return 0
