"""``lmcore inspect attention`` for an encoder-decoder (a family that ``reads_pairs``): the text is a
source; the alignment of the model's reply (or ``--target``) to it, printed as a heat map (rows the
target tokens, columns the source tokens) or as JSON lines; ``--kind`` encoder/decoder: the self-attention."""
from __future__ import annotations

import math

from .output import _out, _v

MAX_COLUMNS = 64  # one character per column: a 64-token source fits an 80-column terminal


def show_alignment(args, gen, source: str) -> int:
    from ..inspect.alignment import alignment_view

    view = alignment_view(gen, source, args.target)
    m = view.matrix(args.kind, args.layer, args.head)
    rows, cols = view.labels(args.kind)
    if args.json:
        _out({"event": "reply", "text": view.reply, "ended": view.ended})
        _out({"event": "alignment", "kind": args.kind, "layer": args.layer, "head": args.head,
              "layers": view.layers(args.kind), "heads": view.heads(args.kind), "rows": rows, "columns": cols,
              "weights": [[round(float(x), 6) for x in row] for row in m]})
        return 0
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    what = {"cross": "rows: reply tokens, columns: source tokens",
            "encoder": "the encoder's self-attention: rows and columns source tokens",
            "decoder": "the decoder's self-attention: rows the tokens written, columns the tokens read"}[args.kind]
    console.print(f"reply: {_v(view.reply)}" + ("" if view.ended else " (cut at the model's length limit)"))
    console.print(f"{args.kind} attention, layer {args.layer} of {view.layers(args.kind)}, head {args.head} of "
                  f"{view.heads(args.kind)}; {what}; darker = more attention")
    shown = cols[:MAX_COLUMNS]
    console.print(" " * 9 + "".join(_v(c)[:1] or " " for c in shown).replace("\n", " "))
    for label, row in zip(rows, m):
        line = Text(f"{_v(label)[:8]!s:>8} ")
        for w in row[:MAX_COLUMNS]:
            line.append("█", style=_shade(w))
        console.print(line)
    if len(cols) > MAX_COLUMNS:
        console.print(f"(the first {MAX_COLUMNS} of {len(cols)} columns)")
    return 0


def _shade(w: float) -> str:
    v = int(255 * (1 - math.sqrt(max(0.0, min(1.0, float(w))))))
    return f"rgb({v},{v},255)"
