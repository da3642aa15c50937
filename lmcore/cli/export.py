"""``lmcore export``: a saved model for other tools (ONNX for every family, Hugging Face for transformers)."""
from __future__ import annotations

import sys

from .output import _out, _v


def add_parser(sub) -> None:
    ex = sub.add_parser("export", help="a saved model for other tools: ONNX (every family) or Hugging Face (transformer)")
    ex.set_defaults(handler=cmd_export)
    ex.add_argument("name")
    ex.add_argument("--format", required=True, choices=("onnx", "hf"),
                    help="onnx: a step model for onnxruntime; hf: a transformers model (transformer only)")
    ex.add_argument("--out", required=True, metavar="DIR", help="a new (or empty) folder to write")
    ex.add_argument("--json", action="store_true", help="one JSON object saying what was written")


def cmd_export(args) -> int:
    from ..export import export_model
    from ..store.model_store import Store

    what = {"onnx": "ONNX", "hf": "Hugging Face"}[args.format]

    def started():
        if not args.json:
            print(f"exporting '{_v(args.name)}' as {what}…", file=sys.stderr)

    r = export_model(Store(args.home), args.name, args.format, args.out, started)
    check = r["check"]
    if args.json:
        _out({"event": "exported", "name": r["name"], "format": r["format"], "out": r["out"], "files": r["files"],
              "arch": r["arch"], "check": check})
        return 0
    print(f"exported '{_v(r['name'])}' ({r['arch']}) as {what} to {_v(r['out'])}: {', '.join(map(_v, r['files']))}")
    print(f"checked: the logits from {check['runtime']} match lmcore's within {check['max_abs_logit_diff']:.1e} "
          f"over {check['tokens']} tokens; README.md in the folder says how to run it")
    if check["tokenizer_same"] < check["tokenizer_tokens"]:
        print(f"note: its tokenizer splits {check['tokenizer_tokens'] - check['tokenizer_same']} of "
              f"{check['tokenizer_tokens']} test tokens differently from lmcore's", file=sys.stderr)
    return 0
