"""``lmcore export``: a saved model in a form other tools run.

- ``onnx`` (:mod:`.onnx`): every family that generates, as a step model (token and state in, logits and
  state out) with its tokenizer, vocabulary and a README;
- ``hf`` (:mod:`.hf`): the transformer as a Hugging Face ``transformers`` model (GPT-2 for learned
  positions, GPT-NeoX for rotary ones) with its tokenizer.

The folder is written beside its destination under a hidden name and renamed into place at the end:
it is there complete or not at all. Both formats need optional packages (``pip install 'lmplay[export]'``)."""
from __future__ import annotations

import importlib.util
import math
import os
import secrets
import shutil
from pathlib import Path

from ..errors import ConfigError, LmError, StoreError

FORMATS = ("onnx", "hf")
NEEDS = {"onnx": ("onnx", "onnxscript", "onnxruntime"), "hf": ("transformers",)}


def missing_packages(fmt: str) -> list[str]:
    """The packages ``fmt`` needs that are not installed."""
    return [p for p in NEEDS[fmt] if importlib.util.find_spec(p) is None]


def _check_out(out: Path) -> None:
    if os.path.lexists(out):
        if out.is_symlink():
            raise ConfigError(f"{out} is a symbolic link (not followed): choose a new --out folder")
        if not out.is_dir():
            raise ConfigError(f"{out} exists and is not a folder: choose a new --out folder")
        try:
            empty = next(out.iterdir(), None) is None
        except OSError as exc:
            raise ConfigError(f"cannot read {out} ({exc.strerror or exc}): choose another --out folder") from None
        if not empty:
            raise ConfigError(f"{out} is not empty: choose a new --out folder (nothing is overwritten)")


def export_model(store, name: str, fmt: str, out: str | os.PathLike, started=None) -> dict:
    """Export model ``name`` of ``store`` as ``fmt`` into the new folder ``out``; returns a summary (what
    was written and the check of the exported model's logits against lmcore's). ``started()`` is called
    once the request is found sound, before the slow part."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format '{fmt}': use one of {', '.join(FORMATS)}")
    out = Path(out).expanduser().absolute()
    ck = store.read(name)  # one line if missing or damaged
    arch, fam = ck.model.arch, ck.model.family
    if fmt not in fam.exports:
        from ..models import families, listed

        able = listed(a for f in families() if fmt in f.exports for a in f.archs)
        other = f"use --format {' or '.join(sorted(fam.exports))}" if fam.exports else "they cannot be exported"
        raise ConfigError(f"'{fmt}' has no architecture for {arch} models (it runs {able or 'no'} models "
                          f"only): {other}")
    problem = fam.cannot_generate(ck.model)
    if problem:
        raise ConfigError(f"model '{name}' cannot generate, so there is no step to export: {problem}")
    _check_out(out)
    if out.resolve().is_relative_to(store.root.resolve()):
        raise ConfigError(f"{out} is inside lmplay's model store ({store.root}): choose a folder outside it")
    missing = missing_packages(fmt)
    if missing:
        raise ConfigError(f"{fmt} export needs {', '.join(missing)}: pip install 'lmplay[export]'")

    from ..generation.generator import load_model

    model, vocab, tokenizer = load_model(store, name, ck)  # consistent with meta.json, shapes checked
    if started is not None:
        started()
    loss = ck.best_val_loss
    source = {"name": name, "step": ck.step, "corpus": ck.corpus.name,
              "best_val_loss": loss if loss is not None and math.isfinite(loss) else None}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {out.parent} ({exc.strerror or exc}): choose another --out folder") from None
    work = out.parent / f".{out.name}.export-{secrets.token_hex(4)}"
    try:
        work.mkdir()
        if fmt == "onnx":
            from . import onnx as writer
        else:
            from . import hf as writer
        summary = writer.write(model, vocab, tokenizer, work, source)
        _check_out(out)  # another process may have filled it meanwhile
        if os.path.lexists(out):
            out.rmdir()  # empty: replaced by the finished folder
        os.rename(work, out)
    except OSError as exc:
        raise StoreError(f"could not write {out} ({exc.strerror or exc}): nothing was written") from None
    except LmError:
        raise
    except Exception as exc:  # noqa: BLE001 - a library's failure: one line, and nothing left behind
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise LmError(f"could not export model '{name}' as {fmt} ({first}): nothing was written") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    files = sorted(p.name for p in out.iterdir())
    return {**summary, "name": name, "format": fmt, "out": str(out), "files": files}


__all__ = ["FORMATS", "LmError", "export_model", "missing_packages"]
