"""Which packages the wheel holds (everything else is in pyproject.toml): every package under lmcore/ and
tui/, found rather than listed, so a new model family's folder ships with nothing to edit; and the
repository's assets/ folder as the package data of ``lmcore.assets``."""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["lmcore", "lmcore.*", "tui", "tui.*"]), "lmcore.assets"],
    package_dir={"lmcore.assets": "assets"},
    package_data={"lmcore.assets": ["*.json", "*.tcss", "*.toml", "lessons/*.md"]},
)
