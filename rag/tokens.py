"""Token counting with tiktoken, the unit for chunk sizes and context budgets."""

from __future__ import annotations

import os

import tiktoken

from rag.offline import tiktoken_cache_dir

ENCODING = "cl100k_base"


def get_encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """The encoding, loaded from the cache that ships in llama-index-core (never downloaded)."""
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))
    return tiktoken.get_encoding(name)
