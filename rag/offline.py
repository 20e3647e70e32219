"""Switches that keep every library offline: no model hub, no telemetry.

Called once by the composition root (and by the test suite) before heavy imports; never at
import time. `setdefault` lets a user who knows better override any of them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "ANONYMIZED_TELEMETRY": "False",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
}


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it (some print on import)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed", name=package)
    return Path(next(iter(spec.submodule_search_locations)))


def tiktoken_cache_dir() -> Path:
    # llama-index-core ships the cl100k_base file tiktoken would otherwise download.
    return package_dir("llama_index.core") / "_static" / "tiktoken_cache"


def enforce_offline() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))
    # The sentence splitter's NLTK data also ships with llama-index-core.
    os.environ.setdefault("NLTK_DATA", str(tiktoken_cache_dir().parent / "nltk_cache"))
