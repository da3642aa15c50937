"""The checkpoint store: one folder per model under ``<home>/models``.

A folder holds ``meta.json`` (architecture, hyper-parameters, vocab, corpus, metrics history, …) and the
files it names: the best weights (safetensors) and the resume state (optimizer, RNG, step; loaded with
``torch.load(weights_only=True)``). A save writes new, uniquely named data files first, then replaces
``meta.json`` atomically, then removes the files no longer named. A kill at any moment therefore leaves
either the old or the new checkpoint readable, never a mix."""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch

from . import paths
from .errors import StoreError
from .fsutil import atomic_path, write_json

FORMAT = 1
META = "meta.json"
LOCK = ".lock"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def validate_name(name: str) -> str:
    """Model names are folder names: letters, digits, '.', '_' and '-', no '..', at most 64 characters."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StoreError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '.', '_' or '-' "
            f"(no path separators, no '..', not starting with '.' or '-')"
        )
    return name


@dataclass
class ModelEntry:
    name: str
    ok: bool
    reason: str = ""
    meta: dict = field(default_factory=dict)

    def summary(self) -> dict:
        m = self.meta
        return {
            "name": self.name, "ok": self.ok, "reason": self.reason,
            "arch": m.get("model", {}).get("arch"), "impl": m.get("model", {}).get("impl"),
            "params": m.get("params"), "corpus": m.get("corpus", {}).get("name"),
            "tokens": m.get("tokenizer", {}).get("level"), "step": m.get("step"),
            "best_val_loss": m.get("best_val_loss"), "best_val_ppl": m.get("best_val_ppl"),
            "device": m.get("device"), "updated": m.get("updated"),
        }


def _dedupe(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """safetensors refuses shared storage (tied weights): keep one copy and record the aliases."""
    seen: dict[tuple, str] = {}
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for k, t in state.items():
        t = t.detach()
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype) if t.numel() else None
        if key is not None and key in seen:
            aliases[k] = seen[key]
            continue
        if key is not None:
            seen[key] = k
        out[k] = t.to("cpu").contiguous()
    return out, aliases


def clean_state_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop the ``_orig_mod.`` prefix that ``torch.compile`` puts on parameter names."""
    return {k.replace("_orig_mod.", ""): v for k, v in state.items()}


class Store:
    def __init__(self, home: str | os.PathLike | None = None):
        self.home = paths.home(home)
        self.root = paths.models_dir(self.home)

    # ------------------------------------------------------------ paths
    def path(self, name: str) -> Path:
        p = self.root / validate_name(name)
        if p.resolve().parent != self.root.resolve():
            raise StoreError(f"invalid model name {name!r}")
        return p

    def exists(self, name: str) -> bool:
        return (self.path(name) / META).is_file()

    # ------------------------------------------------------------ listing
    def list(self) -> list[ModelEntry]:
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir(), key=lambda p: p.name.lower()):
            if not d.is_dir() or d.name.startswith(".") or not _NAME_RE.match(d.name):
                continue
            out.append(self.check(d.name))
        return out

    def check(self, name: str) -> ModelEntry:
        """Read one entry's metadata and check its files; never raises for a damaged entry."""
        try:
            meta = self.read_meta(name)
            self._check_files(name, meta)
            return ModelEntry(name, True, "", meta)
        except StoreError as exc:
            return ModelEntry(name, False, str(exc), {})

    def read_meta(self, name: str) -> dict:
        p = self.path(name) / META
        if not p.parent.is_dir():
            known = ", ".join(e.name for e in self.list()) or "none yet"
            raise StoreError(f"no model named '{name}' (saved models: {known})")
        if not p.is_file():
            raise StoreError(f"model '{name}' is damaged: {META} is missing")
        try:
            meta = json.loads(p.read_text("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"model '{name}' is damaged: {META} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or "model" not in meta or "files" not in meta:
            raise StoreError(f"model '{name}' is damaged: {META} lacks the model description")
        if meta.get("format", 0) > FORMAT:
            raise StoreError(f"model '{name}' was saved by a newer lmplay (format {meta['format']}): upgrade lmplay")
        return meta

    def _check_files(self, name: str, meta: dict) -> None:
        from safetensors import safe_open

        w = meta["files"].get("weights")
        if not w:
            raise StoreError(f"model '{name}' is damaged: no weights file is recorded")
        p = self.path(name) / Path(w).name
        if not p.is_file():
            raise StoreError(f"model '{name}' is damaged: weights file {p.name} is missing")
        try:
            with safe_open(str(p), framework="pt") as f:
                f.keys()
        except Exception as exc:  # noqa: BLE001 - any parse failure means damage
            raise StoreError(f"model '{name}' is damaged: weights file {p.name} is unreadable ({exc})") from None

    # ------------------------------------------------------------ saving
    def save(self, name: str, meta: dict, state: dict[str, torch.Tensor] | None,
             resume: dict | None = None, keep_weights: bool = False) -> None:
        """Write a checkpoint atomically. ``state`` None keeps the current best weights (only the resume
        state and metadata change)."""
        from safetensors.torch import save_file

        d = self.path(name)
        d.mkdir(parents=True, exist_ok=True)
        tag = f"{int(meta.get('step', 0)):08d}-{secrets.token_hex(3)}"
        meta = dict(meta)
        files = dict(meta.get("files", {}))
        old = self._current_files(name)
        if state is not None:
            tensors, aliases = _dedupe(clean_state_keys(state))
            wname = f"weights-{tag}.safetensors"
            with atomic_path(d / wname) as tmp:
                save_file(tensors, str(tmp), metadata={"aliases": json.dumps(aliases), "format": str(FORMAT)})
            files["weights"] = wname
        elif keep_weights and old.get("weights"):
            files["weights"] = old["weights"]
        if resume is not None:
            rname = f"resume-{tag}.pt"
            with atomic_path(d / rname) as tmp:
                torch.save(resume, tmp)
            files["resume"] = rname
        meta.update(format=FORMAT, name=name, files=files, updated=now())
        meta.setdefault("created", meta["updated"])
        write_json(d / META, meta)
        keep = {v for v in files.values() if v}
        for p in d.iterdir():
            if p.name.startswith(("weights-", "resume-")) and p.name not in keep:
                p.unlink(missing_ok=True)
            elif p.name.startswith(".") and p.name.endswith(".tmp"):
                pass  # another writer's temp file, or a leftover from a kill: harmless, never read

    def _current_files(self, name: str) -> dict:
        try:
            return self.read_meta(name).get("files", {})
        except StoreError:
            return {}

    def write_meta(self, name: str, meta: dict) -> None:
        meta = dict(meta, updated=now())
        write_json(self.path(name) / META, meta)

    # ------------------------------------------------------------ loading
    def load_weights(self, name: str, meta: dict | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
        """The best weights, read with safetensors (no code is ever executed)."""
        from safetensors import safe_open

        meta = meta or self.read_meta(name)
        self._check_files(name, meta)
        p = self.path(name) / Path(meta["files"]["weights"]).name
        try:
            with safe_open(str(p), framework="pt", device=str(device)) as f:
                state = {k: f.get_tensor(k) for k in f.keys()}
                aliases = json.loads((f.metadata() or {}).get("aliases", "{}"))
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"model '{name}' is damaged: cannot read {p.name} ({exc})") from None
        for k, src in aliases.items():
            state[k] = state[src]
        return clean_state_keys(state)

    def load_resume(self, name: str, meta: dict | None = None) -> dict | None:
        meta = meta or self.read_meta(name)
        r = meta["files"].get("resume")
        if not r:
            return None
        p = self.path(name) / Path(r).name
        try:
            return torch.load(p, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a pickle that needs more than tensors is refused here
            raise StoreError(f"model '{name}': resume state {p.name} is unreadable or unsafe ({exc})") from None

    # ------------------------------------------------------------ side files (e.g. the TUI's transcript)
    def read_extra(self, name: str, key: str, default=None):
        """A small JSON document kept beside a model (``<key>.json``); ``default`` if absent or unreadable."""
        p = self.path(name) / f"{validate_name(key)}.json"
        try:
            return json.loads(p.read_text("utf-8"))
        except (OSError, ValueError):
            return default

    def write_extra(self, name: str, key: str, obj) -> None:
        if not self.path(name).is_dir():
            raise StoreError(f"no model named '{name}'")
        write_json(self.path(name) / f"{validate_name(key)}.json", obj)

    # ------------------------------------------------------------ managing
    def delete(self, name: str) -> None:
        d = self.path(name)
        if not d.is_dir():
            raise StoreError(f"no model named '{name}'")
        with self.lock(name):
            trash = self.root / f".deleting-{name}-{secrets.token_hex(3)}"
            os.replace(d, trash)
        shutil.rmtree(trash, ignore_errors=True)

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path(old), self.path(new)
        if not src.is_dir():
            raise StoreError(f"no model named '{old}'")
        if dst.exists():
            raise StoreError(f"a model named '{new}' exists already: pick another name or delete it first")
        with self.lock(old):
            os.rename(src, dst)
        try:
            meta = self.read_meta(new)
            self.write_meta(new, dict(meta, name=new))
        except StoreError:
            pass  # a damaged entry is renamed as it is

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock on a model folder (one trainer per model); raises at once if it is held."""
        d = self.path(name)
        d.mkdir(parents=True, exist_ok=True)
        f = open(d / LOCK, "a+")
        try:
            try:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # Windows
                import msvcrt

                msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
            except OSError:
                raise StoreError(f"model '{name}' is in use by another lmplay process (training or "
                                 f"being changed): wait for it to finish or stop it first") from None
            yield
        finally:
            f.close()
