"""``lmcore fill NAME --text "I am _ hungry"``: each blank's candidates, with their probabilities."""
from __future__ import annotations

from ..safe_text import visible_token
from .output import _out, _v


def add_parser(sub) -> None:
    f = sub.add_parser("fill", help="fill in the blanks of a text (_ is a blank, \\_ an underscore)")
    f.set_defaults(handler=cmd_fill)
    f.add_argument("name")
    f.add_argument("--text", required=True, help='the text, each blank one token: "I am _ hungry"')
    f.add_argument("--top", type=int, default=5, help="candidates shown per blank (1 to 100, default 5)")
    f.add_argument("--device", default="cpu")
    f.add_argument("--json", action="store_true", help="one JSON object: the filled text and every blank")


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def cmd_fill(args) -> int:
    from ..device import pick_device
    from ..generation.fill import fill
    from ..store.model_store import Store

    result = fill(Store(args.home), args.name, args.text, args.top, str(pick_device(args.device)))
    if args.json:
        _out({"event": "fill", "model": args.name, **result.to_dict()})
        return 0
    print(f"{_v(result.text)}")
    print(f"({_v(result.method)})")
    if result.unknown:
        print(f"note: not in the vocabulary, read as <unk>: {_v(', '.join(result.unknown))}")
    width = max(len(visible_token(t)) for b in result.blanks for t, _ in b.candidates)
    for b in result.blanks:
        order = f", filled {_ordinal(b.order)}" if len(result.blanks) > 1 else ""
        print(f"blank {b.number}{order}:")
        for text, p in b.candidates:
            print(f"  {visible_token(text).ljust(width)}  {100 * p:6.2f}%")
    return 0
