"""The `hash` backend: a deterministic bag-of-words hashing embedder, a real `BaseEmbedding` used
by fast tests and by demos without torch."""

from __future__ import annotations

import hashlib
import math
import re

from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field

from rag.embed_base import Embedder

_WORD = re.compile(r"\w+", re.UNICODE)


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
