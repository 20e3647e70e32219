"""The README documents every setting: one table row per `RAG_*` variable."""

from __future__ import annotations

import re
from pathlib import Path

from rag.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_has_a_row_in_the_readme_table():
    rows = set(re.findall(r"^\| `(RAG_[A-Z0-9_]+)` \|", README.read_text(), re.M))
    settings = {f"RAG_{name.upper()}" for name in Settings.model_fields}
    assert settings - rows == set(), "settings missing from the README table"
    assert rows - settings == set(), "README rows for settings that do not exist"
