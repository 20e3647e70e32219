"""Imports flow one way: prompts <- rag <- index <- {eval, ui, api} <- app <- bench, with tests
above all. No exemption: an import inside a function counts like one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FLOORS = ("prompts", "rag", "index", "eval", "ui", "api", "app", "bench")
ALLOWED = {
    "prompts": set(),
    "rag": {"prompts"},
    "index": {"prompts", "rag"},
    "eval": {"prompts", "rag", "index"},
    "ui": {"prompts", "rag", "index"},
    "api": {"prompts", "rag", "index"},
    "app": {"prompts", "rag", "index", "eval", "ui", "api"},
    "bench": {"prompts", "rag", "index", "eval", "ui", "api", "app"},
}


def _imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module.split(".")[0]))
    return found


def violations(root: Path = REPO) -> list[str]:
    problems = []
    for package in FLOORS:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for node, target in _imports(tree):
                if target not in FLOORS or target == package:
                    continue
                if target not in ALLOWED[package]:
                    problems.append(f"{path.relative_to(root)}:{node.lineno} imports {target}")
    return problems


def test_imports_flow_one_way():
    assert violations() == []


@pytest.mark.parametrize(
    ("floor", "source", "expected"),
    [
        ("rag", "from index import sync\n", "rag/_backwards_probe.py:1 imports index"),
        # Inside a function counts too: the composition root may not reach up into bench.
        ("app", "def f():\n    import bench.run\n", "app/_backwards_probe.py:2 imports bench"),
        ("api", "from ui.app import build_ui\n", "api/_backwards_probe.py:1 imports ui"),
    ],
)
def test_checker_catches_a_backwards_import(tmp_path: Path, floor, source, expected):
    # A tree of its own: the probe never lands in the product's folders, even if the test dies.
    (tmp_path / floor).mkdir()
    (tmp_path / floor / "_backwards_probe.py").write_text(source)
    (tmp_path / floor / "fine.py").write_text("import prompts\nfrom rag.settings import Settings\n")
    assert violations(tmp_path) == [expected]


def test_packages_never_use_llamaindex_global_settings():
    # LlamaIndex's global Settings silently default to OpenAI: components are passed explicitly.
    offenders = [
        str(path.relative_to(REPO))
        for package in FLOORS
        for path in (REPO / package).rglob("*.py")
        if "from llama_index.core import Settings" in path.read_text()
        or "llama_index.core.Settings" in path.read_text()
    ]
    assert offenders == []
