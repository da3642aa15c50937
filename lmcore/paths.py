"""Where lmplay keeps its data: models, the corpus cache and the settings file."""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "lmplay"


def home(override: str | os.PathLike | None = None) -> Path:
    """The data folder: ``override``, else ``$LMPLAY_HOME``, else the platform's user data dir."""
    if override:
        root = Path(override)
    elif os.environ.get("LMPLAY_HOME"):
        root = Path(os.environ["LMPLAY_HOME"])
    else:
        root = Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return root.expanduser()


def models_dir(root: Path) -> Path:
    return root / "models"


def corpora_dir(root: Path) -> Path:
    return root / "corpora"


def settings_file(root: Path) -> Path:
    return root / "settings.json"


def assets_dir() -> Path:
    """The shipped assets: ``lmcore/assets`` in an installed wheel (package data), the repository's
    ``assets/`` folder in a source checkout or an editable install."""
    lmcore_dir = Path(__file__).resolve().parent
    for here in (lmcore_dir / "assets", lmcore_dir.parent / "assets"):
        if (here / "corpora.json").is_file():
            return here
    return lmcore_dir / "assets"  # missing: reading a file from it says which one
