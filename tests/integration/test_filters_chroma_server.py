"""Filters against a Chroma server: the dense side's `where` goes over HTTP, the BM25 mask beside it."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_filters import CASES, DOCS, found, make_retriever

from rag.settings import Settings


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_each_filter_holds_on_a_chroma_server(tmp_path: Path, chroma_server: str, mode: str):
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "data", collection="filters", chroma_url=chroma_server
    )
    retriever = make_retriever(tmp_path, settings)
    assert len({c.doc_id for c in found(retriever, None, mode)}) == len(DOCS) + 1
    for name, filters, matches in CASES:
        chunks = found(retriever, filters(), mode)
        assert chunks and all(matches(c) for c in chunks), name
