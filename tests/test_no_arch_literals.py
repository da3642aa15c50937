"""Outside lmcore/models/ no source file names an architecture: the code asks the family registry (its
architectures, options, capabilities, descriptions) instead, so that a new family is one new folder."""
import ast
from pathlib import Path

from lmcore.models import archs

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "lmcore" / "models"


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring constants of a module, its classes and functions (text for readers)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def arch_literals(path: Path, names: set[str], root: Path = ROOT) -> list[str]:
    """``file:line: 'name'`` (relative to ``root``) for each string constant in ``path`` that is an
    architecture's name."""
    tree = ast.parse(path.read_text("utf-8"), str(path))
    docs = _docstrings(tree)
    hits = sorted((node.lineno, node.value) for node in ast.walk(tree) if isinstance(node, ast.Constant)
                  and isinstance(node.value, str) and node.value in names and id(node) not in docs)
    return [f"{path.relative_to(root)}:{line}: {value!r}" for line, value in hits]


def test_the_finder_sees_a_literal_and_skips_docstrings(tmp_path):
    src = tmp_path / "probe.py"
    src.write_text('"""lstm"""\nclass C:\n    """lstm"""\n    def f(self):\n        """lstm"""\n'
                   '        return {"lstm": 1, "x": "an lstm", "y": f"{self} lstm"}\n', "utf-8")
    assert arch_literals(src, {"lstm"}, tmp_path) == ["probe.py:6: 'lstm'"]


def test_no_source_outside_the_models_names_an_architecture():
    names = set(archs())
    assert {"lstm", "transformer", "ngram"} <= names  # the registry answered
    found = []
    for top in ("lmcore", "tui"):
        for path in sorted((ROOT / top).rglob("*.py")):
            if MODELS not in path.parents:
                found += arch_literals(path, names)
    assert not found, "architecture names outside lmcore/models (ask the registry):\n" + "\n".join(found)
