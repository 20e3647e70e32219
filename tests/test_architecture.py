"""Imports flow one way: prompts <- rag <- index <- {eval, ui, api} (api may also use ui)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("prompts", "rag", "index", "eval", "ui", "api")
ALLOWED = {
    "prompts": set(),
    "rag": {"prompts"},
    "index": {"prompts", "rag"},
    "eval": {"prompts", "rag", "index"},
    "ui": {"prompts", "rag", "index"},
    "api": {"prompts", "rag", "index", "ui"},
}
# The composition root builds every component, so it may import any package, but only
# inside functions: importing it (for `rag --help`) must not pull in the rest.
COMPOSITION_ROOT = REPO / "rag" / "cli.py"


def _imports(tree: ast.AST) -> list[tuple[ast.AST, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node, node.module.split(".")[0]))
    return found


def _module_level(tree: ast.Module) -> set[int]:
    """ids of import nodes that run at import time (not inside a function)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(n) for n in ast.walk(node)}
    return {id(n) for n in ast.walk(tree)} - inside


def violations() -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            top_level = _module_level(tree)
            for node, target in _imports(tree):
                if target not in PACKAGES or target == package:
                    continue
                if path == COMPOSITION_ROOT and id(node) not in top_level:
                    continue
                if target not in ALLOWED[package]:
                    problems.append(f"{path.relative_to(REPO)}:{node.lineno} imports {target}")
    return problems


def test_imports_flow_one_way():
    assert violations() == []


def test_checker_catches_a_backwards_import(tmp_path, monkeypatch):
    bad = REPO / "rag" / "_backwards_probe.py"
    bad.write_text("from index import sync\n")
    try:
        assert violations() == ["rag/_backwards_probe.py:1 imports index"]
    finally:
        bad.unlink()


def test_packages_never_use_llamaindex_global_settings():
    # LlamaIndex's global Settings silently default to OpenAI: components are passed explicitly.
    offenders = [
        str(path.relative_to(REPO))
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "from llama_index.core import Settings" in path.read_text()
        or "llama_index.core.Settings" in path.read_text()
    ]
    assert offenders == []
