"""The wheel: two top-level packages (lmcore, tui), the assets inside lmcore as package data, and an
installed copy that finds every asset the app reads (outside the source checkout)."""
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools")
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("lmcore", "tui", "assets"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "--no-index", "-q", "-w", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (found,) = out.glob("lmplay-*.whl")
    return found


def test_the_wheel_has_two_top_level_packages_and_every_asset(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"lmcore", "tui"}, tops
    shipped = {p.name for p in (ROOT / "assets").iterdir() if p.is_file() and p.suffix in (".json", ".tcss")}
    assert {"corpora.json", "defaults.json", "lmplay.tcss"} <= shipped
    for name in shipped:
        assert f"lmcore/assets/{name}" in names, name
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["lmcore", "tui"]


def test_an_installed_wheel_reads_its_assets(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                        str(target), str(wheel)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    probe = (
        "import lmcore, tui.app, pathlib\n"
        "from lmcore import corpus, settings\n"
        "print(pathlib.Path(lmcore.__file__).parent)\n"
        "print(lmcore.assets_dir())\n"
        "print(len(corpus.registry()) > 0, bool(settings.Settings(pathlib.Path('h')).defaults))\n"
        "print(pathlib.Path(tui.app.LmplayApp.CSS_PATH).is_file())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    package, assets, registry_and_defaults, css = r.stdout.splitlines()
    assert Path(package) == target / "lmcore"  # the installed copy, not the checkout
    assert Path(assets) == target / "lmcore" / "assets"
    assert registry_and_defaults == "True True" and css == "True"
