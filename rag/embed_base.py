"""The `Embedder` every backend returns (rag/embeddings.py builds one), and what backends share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding


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


def token_counter(tokenizer) -> Callable[[str], int]:
    """Counts tokens as the model's own tokenizer does, special tokens included."""
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])
