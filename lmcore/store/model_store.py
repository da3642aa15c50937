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
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from .. import paths

from . import safetensors_header
from .checkpoint import Checkpoint, CheckpointError, Files
from ..errors import ConfigError, SaveError, StoreError
from .files import BadFile, atomic_path, open_regular, parse_json, read_json, write_json
from ..safe_text import visible, visible_line

if TYPE_CHECKING:  # torch is imported where tensors are read or written: listing models does without it
    import torch

META = "meta.json"
LOCKS = ".locks"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_META_BYTES = 256 << 20  # a meta.json larger than this is damaged (a word vocabulary is a few MB)
MAX_EXTRA_BYTES = 64 << 20  # a side file (the app's transcript) larger than this is damaged
SAVES_WAITED = 50  # saves in a row that a reader sees replace its files before it gives up


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def validate_name(name: str) -> str:
    """Model names are folder names: letters, digits, '.', '_' and '-', no '..', at most 64 characters."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise StoreError(
            f"invalid model name '{visible_line(str(name))[:80]}': use 1-64 letters, digits, '.', '_' or '-' "
            f"(no path separators, no '..', not starting with '.' or '-')"
        )
    return name


@dataclass
class ModelEntry:
    """One folder of the store: a usable checkpoint, or damaged with the reason."""

    name: str
    ok: bool
    reason: str = ""
    checkpoint: Checkpoint | None = None

    def summary(self) -> dict:
        if self.checkpoint is None:
            return {"name": self.name, "ok": False, "reason": self.reason}
        return dict(self.checkpoint.summary(), name=self.name, ok=True, reason="")


RANKINGS = ("bpc", "fill")  # what a leaderboard ranks by


def leaderboard(entries, corpus: str | None = None, by: str = "bpc") -> list[dict]:
    """Summaries of the usable models (of one corpus, or of each), best first within their corpus: by
    validation bits per character (``by="bpc"``: the one measure that compares character, word and
    subword models; on a pairs corpus, the models with BLEU first, by BLEU then exact match), or by
    top-1 fill accuracy on the validation text's fixed blanks (``by="fill"``, highest first; comparable
    between models of the same tokens). Those without the measure come last, and a model that reads the
    token it predicts (``reads_ahead``: why, e.g. ``--bidirectional``; its perplexity near 1 measures
    nothing) comes after the honest ones. ``rank`` counts within the corpus; ``budget_warning`` says when
    the corpus's models were trained on budgets (time, tokens seen) more than 2x apart."""
    if by not in RANKINGS:
        raise ConfigError(f"unknown ranking {by!r}: rank by {' or '.join(RANKINGS)}")
    rows = []
    for e in entries:
        if e.ok and (corpus is None or e.summary()["corpus"] == corpus):
            m = e.checkpoint.model
            rows.append(dict(e.summary(), reads_ahead=m.family.reads_ahead(m)))
    if by == "fill":
        rows.sort(key=lambda r: (r["corpus"], r["best_val_fill_top1"] is None, -(r["best_val_fill_top1"] or 0.0),
                                 r["name"]))
    else:
        rows.sort(key=lambda r: (r["corpus"], r["reads_ahead"] is not None, r.get("best_val_bleu") is None,
                                 -(r.get("best_val_bleu") or 0.0),
                                 -(r.get("best_val_exact") or 0.0), r["best_val_bpc"] is None,
                                 r["best_val_bpc"] or 0.0, r["name"]))
    for i, r in enumerate(rows):
        r["rank"] = 1 if i == 0 or rows[i - 1]["corpus"] != r["corpus"] else rows[i - 1]["rank"] + 1
    _budget_warnings(rows, {e.name: e.checkpoint for e in entries if e.ok})
    return rows


def _budget_warnings(rows: list[dict], checkpoints: dict) -> None:
    """Each row's ``budget_warning``: the line saying its corpus's models were trained on budgets more
    than 2x apart (``budget.budgets_differ``), or None."""
    from .budget import budgets_differ, model_budget

    by_corpus: dict[str, list[dict]] = {}
    for r in rows:
        by_corpus.setdefault(r["corpus"], []).append(r)
    for group in by_corpus.values():
        warning = budgets_differ([model_budget(checkpoints[r["name"]], r["name"]) for r in group])
        for r in group:
            r["budget_warning"] = warning


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
        if p.parent != self.root:
            raise StoreError(f"invalid model name {name!r}")
        return p

    def exists(self, name: str) -> bool:
        """Whether a folder of that name is in the store (usable or damaged)."""
        try:
            return os.path.lexists(self.path(name))
        except OSError:
            return False

    def _fail(self, doing: str, exc: OSError) -> StoreError:
        where = exc.filename or self.root
        return StoreError(f"cannot {doing}: {exc.strerror or exc} ({where}). Check that the data folder "
                          f"{self.home} is a writable folder (set LMPLAY_HOME or --home to change it)")

    # ------------------------------------------------------------ listing
    def list(self) -> list[ModelEntry]:
        """Every model folder, usable or damaged; never raises for one bad entry."""
        try:
            for d in (self.home, self.root):
                if d.exists() and not d.is_dir():
                    raise NotADirectoryError(20, "Not a directory", str(d))
            if not self.root.is_dir():
                return []
            names = sorted((d.name for d in self.root.iterdir()), key=str.lower)
        except OSError as exc:
            raise self._fail("list the models", exc) from None
        out = []
        for n in names:
            if n.startswith(".") or not _NAME_RE.match(n) or ".." in n:
                continue
            try:
                if not ((self.root / n).is_dir() or (self.root / n).is_symlink()):
                    continue  # a stray file
            except OSError:
                continue
            entry = self.check(n)
            if entry.ok or os.path.lexists(self.root / n):  # not one deleted or renamed while listed
                out.append(entry)
        return out

    def check(self, name: str) -> ModelEntry:
        """Read one entry and check its files; never raises for a damaged entry."""
        try:
            return ModelEntry(name, True, "", self.read(name))
        except StoreError as exc:
            return ModelEntry(name, False, str(exc))

    def read(self, name: str) -> Checkpoint:
        """The validated checkpoint of model ``name`` (the weights file's header checked against it)."""
        return self._consistent(name, lambda ck: self._weights(name, ck))[0]

    def _consistent(self, name: str, use, ck: Checkpoint | None = None):
        """``(checkpoint, use(checkpoint))``, where ``use`` reads the files the checkpoint names.

        Readers take no lock: training saves while the app or the CLI reads. A save writes new files,
        replaces meta.json, then removes the old files, so a reader that read meta.json just before may
        find its weights gone. When reading them fails and meta.json now names other files, a save came
        in between: read again from the new meta.json. Only a failure with the files meta.json still
        names is damage."""
        ck = ck or self._read_meta(name)
        for _ in range(SAVES_WAITED):
            try:
                return ck, use(ck)
            except StoreError:
                newer = self._read_meta(name)  # "no model named" once it was deleted meanwhile
                if newer.files == ck.files:
                    raise
                ck = newer
        raise StoreError(f"model '{name}' was saved {SAVES_WAITED} times while it was read: try again")

    def _read_meta(self, name: str) -> Checkpoint:
        d = self.path(name)
        try:
            if d.is_symlink():
                raise StoreError(f"model '{name}' is damaged: its folder is a symbolic link (lmplay never "
                                 f"follows links in its data folder): delete it with lmcore models rm {name}")
            if not d.is_dir():
                raise self._no_model(name)
            try:
                data = read_json(d / META, MAX_META_BYTES)
            except FileNotFoundError:
                if not d.is_dir():  # deleted or renamed while read
                    raise self._no_model(name) from None
                raise StoreError(f"model '{name}' is damaged: {META} is missing") from None
        except BadFile as exc:
            raise StoreError(f"model '{name}' is damaged: {META} {visible(str(exc))}") from None
        except OSError as exc:
            raise StoreError(f"model '{name}' is damaged: {META} is unreadable ({exc.strerror or exc})") from None
        try:
            return Checkpoint.from_json(data, folder_name=name)
        except CheckpointError as exc:
            raise StoreError(f"model '{name}' is damaged: {visible(str(exc))[:300]}") from None

    def _no_model(self, name: str) -> StoreError:
        known = ", ".join(e.name for e in self.list() if e.name != name) or "none yet"
        return StoreError(f"no model named '{name}' (saved models: {known})")

    def _file(self, name: str, fname: str) -> Path:
        return self.path(name) / Path(fname).name

    def _weights(self, name: str, ck: Checkpoint, device: str | None = None):
        """The weights file's tensor shapes checked against the model's (from its header: nothing is
        allocated, and without ``device`` neither torch nor safetensors is imported); with ``device``,
        then its tensors, read from the same opening of the file."""
        p = self._file(name, ck.files.weights)

        def checked(shapes: dict, metadata: dict) -> dict[str, str]:
            aliases = parse_json(metadata.get("aliases", "{}"))
            if not isinstance(aliases, dict) or not all(isinstance(v, str) and v in shapes
                                                        for v in aliases.values()):
                raise StoreError(f"model '{name}' is damaged: weights file {p.name} has bad aliases")
            shapes.update({k: shapes[v] for k, v in aliases.items()})
            try:
                ck.check_shapes(clean_state_keys(shapes))
            except CheckpointError as exc:
                raise StoreError(f"model '{name}' is damaged: {exc}") from None
            return aliases

        try:
            with open_regular(p) as f:  # a regular file, not a link: safe_open would follow a link or wait on a FIFO
                if device is None:
                    shapes, metadata = safetensors_header.read(f)
                    checked(shapes, metadata)
                    return shapes
            from safetensors import safe_open

            with safe_open(str(p), framework="pt", device=str(device)) as f:
                aliases = checked({k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}, f.metadata() or {})
                state = {k: f.get_tensor(k) for k in f.keys()}
        except StoreError:
            raise
        except FileNotFoundError:
            raise StoreError(f"model '{name}' is damaged: weights file {p.name} is missing") from None
        except BadFile as exc:
            raise StoreError(f"model '{name}' is damaged: weights file {p.name} {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any parse failure means damage
            raise StoreError(f"model '{name}' is damaged: weights file {p.name} is unreadable "
                             f"({_first_line(exc)})") from None
        for k, src in aliases.items():
            state[k] = state[src]
        return clean_state_keys(state)

    # ------------------------------------------------------------ saving
    def save(self, name: str, ck: Checkpoint, state: dict[str, torch.Tensor] | None,
             resume: dict | None = None) -> None:
        """Write a checkpoint atomically; the caller holds the model's lock. ``state`` None keeps the
        current best weights (only the resume state and metadata change).

        Data files are written under new names first, then meta.json is replaced atomically, then the
        files no longer named are removed. The first save builds the whole folder under a hidden name
        and renames it into place, so a model appears in the store complete or not at all. Any failure
        (full disk, unwritable folder, a serializer's error) raises one StoreError, removes what this
        save wrote and keeps the previous checkpoint."""
        import torch
        from safetensors.torch import save_file

        d = self.path(name)
        if d.is_symlink():
            raise StoreError(f"could not save model '{name}' (its folder is a symbolic link): the link was "
                             f"not followed")
        first = not d.is_dir()
        work = self.root / f".new-{name}-{secrets.token_hex(4)}" if first else d
        tag = f"{int(ck.step):08d}-{secrets.token_hex(3)}"
        written: list[Path] = []
        old = ck.files
        try:
            work.mkdir(parents=True, exist_ok=not first)
            files = Files(weights=old.weights if old else "", resume=old.resume if old else None)
            if state is not None:
                tensors, aliases = _dedupe(clean_state_keys(state))
                files.weights = f"weights-{tag}.safetensors"
                written.append(work / files.weights)
                with atomic_path(work / files.weights) as tmp:
                    save_file(tensors, str(tmp), metadata={"aliases": json.dumps(aliases)})
            if not files.weights:
                raise StoreError("nothing to save yet: the first checkpoint needs weights")
            if resume is not None:
                files.resume = f"resume-{tag}.pt"
                written.append(work / files.resume)
                with atomic_path(work / files.resume) as tmp:
                    torch.save(resume, tmp)
            stamp = now()
            out = replace(ck, name=name, files=files, updated=stamp, created=ck.created or stamp)
            write_json(work / META, out.to_json())
            if first:
                os.rename(work, d)
        except BaseException as exc:
            for p in written:
                p.unlink(missing_ok=True)
            if first:
                shutil.rmtree(work, ignore_errors=True)
            if isinstance(exc, StoreError):
                raise
            if isinstance(exc, Exception):
                raise SaveError(f"could not save model '{name}' ({_save_failure(exc)})") from None
            raise
        ck.files, ck.updated, ck.created, ck.name = files, out.updated, out.created, name
        keep = {files.weights, files.resume}
        try:
            for p in d.iterdir():
                if p.name.startswith(("weights-", "resume-")) and p.name not in keep:
                    p.unlink(missing_ok=True)
        except OSError:
            pass  # an old file left behind is never read

    def discard_partial(self, name: str) -> None:
        """Remove what a killed first save left (the hidden ``.new-NAME-*`` folders); under the lock."""
        try:
            for p in self.root.glob(f".new-{name}-*"):
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass

    # ------------------------------------------------------------ loading
    def load_weights(self, name: str, ck: Checkpoint | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
        """The best weights, read with safetensors (no code is ever executed), shapes checked first.

        ``ck``, read earlier, may have been replaced by a save since: the newest weights are read then,
        as long as they are still the same model's."""
        got, state = self._consistent(name, lambda c: self._weights(name, c, device), ck)
        if ck is not None and got is not ck and (got.model != ck.model or got.vocab.idx_to_token != ck.vocab.idx_to_token):
            raise StoreError(f"model '{name}' was replaced by another model while it was read: open it again")
        return state

    def load_resume(self, name: str, ck: Checkpoint) -> dict | None:
        """The resume state, read with ``torch.load(weights_only=True)``: tensors and plain data only."""
        if not ck.files.resume:
            return None
        import torch

        p = self._file(name, ck.files.resume)
        try:
            with open_regular(p) as f:
                r = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - a pickle that needs more than tensors is refused here
            raise StoreError(f"model '{name}': resume state {p.name} is unreadable or unsafe "
                             f"({_first_line(exc)}): delete the model or train a new one") from None
        if not isinstance(r, dict) or not isinstance(r.get("model"), dict) or not isinstance(r.get("step"), int):
            raise StoreError(f"model '{name}': resume state {p.name} is damaged")
        return r

    # ------------------------------------------------------------ side files (e.g. the TUI's transcript)
    def read_extra(self, name: str, key: str, default=None):
        """A small JSON document kept beside a model (``<key>.json``); ``default`` if absent. A damaged one
        (not a regular file, too large, not JSON) raises StoreError saying so; the next write replaces it."""
        p = self.path(name) / f"{validate_name(key)}.json"
        try:
            return read_json(p, MAX_EXTRA_BYTES)
        except FileNotFoundError:
            return default
        except BadFile as exc:
            raise StoreError(f"{p.name} of model '{name}' {visible(str(exc))}") from None
        except OSError as exc:
            raise StoreError(f"{p.name} of model '{name}' cannot be read ({exc.strerror or exc})") from None

    def write_extra(self, name: str, key: str, obj) -> None:
        if not self.path(name).is_dir():
            raise StoreError(f"no model named '{name}'")
        try:
            write_json(self.path(name) / f"{validate_name(key)}.json", obj)
        except OSError as exc:
            raise self._fail(f"save {key} of '{name}'", exc) from None

    # ------------------------------------------------------------ managing
    def delete(self, name: str) -> None:
        d = self.path(name)
        if not self.exists(name):
            raise self._missing(name)
        with self.lock(name):
            if d.is_symlink():  # the link goes, never what it points to
                d.unlink()
                return
            trash = self.root / f".deleting-{name}-{secrets.token_hex(3)}"
            try:
                os.replace(d, trash)
            except OSError as exc:
                raise self._fail(f"delete '{name}'", exc) from None
        shutil.rmtree(trash, ignore_errors=True)

    def rename(self, old: str, new: str) -> None:
        src, dst = self.path(old), self.path(new)
        if not self.exists(old):
            raise self._missing(old)
        if old == new:
            raise StoreError(f"model '{old}' has that name already")
        with self.lock(old), self.lock(new):
            if self.exists(new):
                raise StoreError(f"a model named '{new}' exists already: pick another name or delete it first")
            try:
                os.rename(src, dst)
            except OSError as exc:
                raise self._fail(f"rename '{old}'", exc) from None
        try:
            ck = self._read_meta(new)
            write_json(dst / META, replace(ck, name=new).to_json())
        except (StoreError, OSError):
            pass  # a damaged entry is renamed as it is

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock on one model name (one owner per model); raises at once if it is held.

        Locks live in ``models/.locks/NAME.lock``, apart from the model folder, so they can be taken
        before the folder exists; the file is opened without following symbolic links."""
        validate_name(name)
        locks = self.root / LOCKS
        try:
            locks.mkdir(parents=True, exist_ok=True)
            if locks.is_symlink() or not locks.is_dir():
                raise StoreError(f"{locks} is not a folder: remove it")
            fd = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            raise self._fail(f"lock model '{name}'", exc) from None
        try:
            for attempt in range(5):  # a few ms: an is_locked probe holds it for an instant
                try:
                    import fcntl

                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except ImportError:  # Windows
                    import msvcrt

                    msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if attempt == 4:
                        raise _in_use(name) from None
                    time.sleep(0.01)
            yield
        finally:
            os.close(fd)

    def is_locked(self, name: str) -> bool:
        """Whether the model's lock is held (a run trains it, here or in another process): a probe that
        creates no file and holds a shared lock for an instant only (cheap enough for every refresh)."""
        validate_name(name)
        try:
            import fcntl
        except ImportError:  # Windows: take the lock itself for an instant
            try:
                with self.lock(name):
                    return False
            except StoreError:
                return True
        try:
            fd = os.open(self.root / LOCKS / f"{name}.lock",
                         os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return False  # never locked
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def _missing(self, name: str) -> StoreError:
        """No folder of that name: a run training it before its first checkpoint, or none at all."""
        return _in_use(name) if self.is_locked(name) else StoreError(f"no model named '{name}'")


def _in_use(name: str) -> StoreError:
    return StoreError(f"model '{name}' is in use by another lmplay process (training or being changed): "
                      f"wait for it to finish or stop it first")


def _save_failure(exc: Exception) -> str:
    """Why a write failed, in words: the OS's reason where the serializer wrapped it."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    if m := re.search(r"\(os error (\d+)\)", text):  # safetensors (Rust) I/O errors
        return os.strerror(int(m.group(1)))
    if "file write failed" in text or "unexpected pos" in text:  # torch.save's C++ writer
        return "the file could not be written: is the disk full?"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return visible(f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__)
