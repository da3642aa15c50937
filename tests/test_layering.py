import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lmcore_never_imports_textual():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'textual' or name.startswith('textual.') or name == 'tui' or name.startswith('tui.'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import importlib, pkgutil, lmcore\n"
        "for m in pkgutil.walk_packages(lmcore.__path__, 'lmcore.'):\n"
        "    if not m.name.startswith(('lmcore.export', 'lmcore.__main__')):\n"
        "        importlib.import_module(m.name)\n"
        "importlib.import_module('lmcore.cli.main').build_parser()\n"
        "assert not any(m == 'textual' or m.startswith('textual.') for m in sys.modules)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_no_source_file_in_lmcore_mentions_textual():
    for p in (ROOT / "lmcore").rglob("*.py"):
        for line in p.read_text().splitlines():
            s = line.strip()
            assert not s.startswith(("import textual", "from textual", "import tui", "from tui")), p

