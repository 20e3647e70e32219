"""Prompt templates as plain text files beside this module, filled with `render`.

Templates use `$name` placeholders (string.Template), so braces in documents or code never
need escaping.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

_DIR = Path(__file__).resolve().parent


def render(name: str, **values: object) -> str:
    """Fill template `name` (prompts/<name>.txt); a missing value raises KeyError."""
    path = _DIR / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no prompt template {name!r} in {_DIR}")
    return Template(path.read_text(encoding="utf-8")).substitute(values).strip()
