"""The wheel: built from a copy of the checkout as a fresh clone has it, two top-level packages (lmcore,
tui), every module and every asset the code reads inside it, complete metadata; installed in a fresh
virtual environment outside the repository, its ``lmcore`` and ``lmplay`` run from any folder with their
styles, corpus registry, defaults and built-in corpus. The code honours ``requires-python``."""
import ast
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package (the test extra has it there)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
PACKAGES = ("lmcore", "tui")
# what a build never needs: version control, caches, build output, the tests
NOT_BUILT = (".git", "__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".venv", "tests", ".hypothesis",
             ".pytest_cache", ".benchmarks", ".ci")


def assets_the_code_reads() -> set[str]:
    """Every file name the code reads from the assets folder: each ``assets_dir() / "NAME"`` in lmcore and tui
    (read from the source, so a new asset needs no list here)."""
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text("utf-8"))):
                if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and isinstance(node.left, ast.Call)
                        and getattr(node.left.func, "attr", getattr(node.left.func, "id", "")) == "assets_dir"
                        and isinstance(node.right, ast.Constant) and isinstance(node.right.value, str)):
                    found.add(node.right.value)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    pytest.importorskip("setuptools", minversion="77", reason="building the wheel needs setuptools 77 or later "
                        "(pyproject.toml's build requirement; the test extra has it)")
    src = tmp_path_factory.mktemp("src")
    shutil.copytree(ROOT, src, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*NOT_BUILT))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation",
                        "--no-index", "-q", "-w", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (found,) = out.glob("lmplay-*.whl")
    return found


def test_the_wheel_holds_every_module_and_every_asset_the_code_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES), tops
    read = assets_the_code_reads()
    assert {"corpora.json", "defaults.json", "lmplay.tcss"} <= read  # the scan finds the loaders
    for name in read:  # a file, or a folder of files (the lessons)
        assert f"lmcore/assets/{name}" in names or any(n.startswith(f"lmcore/assets/{name}/") for n in names), \
            f"{name} is read at run time but not in the wheel"
    shipped = sorted(p.name for p in (ROOT / "assets" / "lessons").glob("*.md"))
    assert shipped and all(f"lmcore/assets/lessons/{n}" in names for n in shipped)  # every lesson ships
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = path.relative_to(ROOT).as_posix()
            assert module in names, f"{module} is not in the wheel"
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == list(PACKAGES)


def test_the_wheel_has_complete_metadata_and_its_licence(wheel):
    z = zipfile.ZipFile(wheel)
    names = z.namelist()
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    head = z.read(meta_name).decode("utf-8").split("\n\n", 1)[0]  # the headers; the README follows
    fields: dict[str, list[str]] = {}
    for line in head.splitlines():
        key, _, value = line.partition(": ")
        fields.setdefault(key, []).append(value)
    assert fields["License-Expression"] == ["MIT"]
    assert fields["Requires-Python"] == [PYPROJECT["project"]["requires-python"]]
    assert fields["Keywords"] and fields["Classifier"] and fields["Description-Content-Type"] == ["text/markdown"]
    licence = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
    assert z.read(licence).decode("utf-8").startswith("MIT License")
    assert fields["License-File"] == ["LICENSE"]


def test_the_classifiers_name_the_python_versions_requires_python_allows():
    floor = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    versions = [c.rsplit(" :: ", 1)[1] for c in PYPROJECT["project"]["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")]
    assert versions[0] == floor, (versions, floor)
    trove = pytest.importorskip("trove_classifiers", reason="trove-classifiers is not installed (the test extra has it)")
    unknown = [c for c in PYPROJECT["project"]["classifiers"] if c not in trove.classifiers]
    assert not unknown


def test_the_version_is_written_only_in_pyproject():
    """lmcore.__version__, `lmcore --version`, `lmplay --version`, About and every checkpoint read it from
    the installed metadata; no source, asset or README writes it again (as lmplay-V, lmplay V or version = V)."""
    import re

    written = re.compile(r"(lmplay[- ]|version\W{0,4})" + re.escape(PYPROJECT["project"]["version"]) + r"(?![\w.])")
    places = [*ROOT.glob("*.md"), *(p for d in (*PACKAGES, "assets") for p in (ROOT / d).rglob("*")
                                    if p.suffix in (".py", ".md", ".json", ".tcss", ".toml"))]
    assert [str(p.relative_to(ROOT)) for p in places if written.search(p.read_text("utf-8"))] == []


def test_the_code_runs_on_the_oldest_python_requires_python_allows():
    """vermin reads every module (syntax, standard-library modules and names) for the oldest Python it needs."""
    pytest.importorskip("vermin", reason="vermin is not installed (the test extra has it)")
    floor = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    r = subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "--eval-annotations", "--violations",
                        f"-t={floor}-", *PACKAGES], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the repository with the wheel installed; torch and the other
    dependencies come from the system's site-packages (no network)."""
    where = tmp_path_factory.mktemp("venv") / "env"
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(where)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    bin_dir = where / ("Scripts" if os.name == "nt" else "bin")
    r = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return bin_dir


def _run(bin_dir: Path, args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(LMPLAY_HOME=str(home), PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "")]))
    r = subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    assert r.returncode == 0, f"{args}: {r.stdout}{r.stderr}"
    return r


def test_an_installed_wheel_runs_lmcore_from_any_folder(venv, tmp_path):
    anywhere, home = tmp_path / "anywhere", tmp_path / "home"
    anywhere.mkdir()
    probe = ("import lmcore, pathlib\nfrom lmcore import settings\nfrom lmcore.data import corpus\n"
             "print(pathlib.Path(lmcore.__file__).parent)\nprint(lmcore.assets_dir())\n"
             "print(sorted(e.name for e in corpus.registry()))\n"
             "print(sorted(settings.Settings(pathlib.Path('h')).defaults))\n")
    package, assets, registry, defaults = _run(venv, [str(venv / "python"), "-c", probe], anywhere,
                                               home).stdout.splitlines()
    site = Path(package).parent
    assert site.is_relative_to(venv.parent) and not site.is_relative_to(ROOT)  # the installed copy
    assert Path(assets) == site / "lmcore" / "assets"
    assert "pythondocs" in registry and defaults != "[]"

    assert _run(venv, ["lmcore", "--version"], anywhere, home).stdout.strip() == \
        f"lmplay {PYPROJECT['project']['version']}"
    listing = _run(venv, ["lmcore", "corpora"], anywhere, home).stdout
    assert "pythondocs" in listing and "built-in" in listing
    trained = _run(venv, ["lmcore", "train", "m", "--arch", "lstm", "--preset", "tiny", "--corpus", "pythondocs",
                          "--steps", "3"], anywhere, home).stdout
    assert "finished at step 3" in trained and (home / "models" / "m" / "meta.json").is_file()
    text = _run(venv, ["lmcore", "generate", "m", "--prompt", "The", "--length", "20", "--seed", "0"], anywhere,
                home).stdout
    assert text.startswith("The") and len(text.rstrip("\n")) >= 20
    assert not list(anywhere.iterdir())  # nothing written in the working folder


APP_PROBE = """
import asyncio, pathlib, sys
import tui.app

async def main():
    app = tui.app.LmplayApp(home=sys.argv[1])
    async with app.run_test(size=(80, 24)) as pilot:
        while not app.screen.query("#welcome"):  # the picker is drawn (the caller's timeout bounds this)
            await pilot.pause(0.05)
        print(pathlib.Path(tui.app.__file__).parent)
        print(*[str(p) for p in app.css_path])
        print(app.screen.query_one("#welcome").styles.border_top[0])

asyncio.run(main())
"""


def test_an_installed_wheel_runs_the_app_with_its_styles(venv, tmp_path):
    anywhere = tmp_path / "anywhere"
    anywhere.mkdir()
    package, css, welcome_border = _run(venv, [str(venv / "python"), "-c", APP_PROBE, str(tmp_path / "home")],
                                        anywhere, tmp_path / "home").stdout.splitlines()
    assert Path(package).is_relative_to(venv.parent)
    assert Path(css) == Path(package).parent / "lmcore" / "assets" / "lmplay.tcss"
    assert welcome_border == "round"  # a rule of lmplay.tcss, applied
    assert _run(venv, ["lmplay", "--version"], anywhere, tmp_path / "home").stdout.strip() == \
        f"lmplay {PYPROJECT['project']['version']}"
