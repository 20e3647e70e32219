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


def frozen_tokenizer(tokenizer, max_length: int | None = None, pad: bool = False):
    """A private copy of a transformers fast tokenizer's Rust tokenizer, configured once.

    Calling the transformers tokenizer re-configures padding and truncation on the shared Rust
    object every time, so two threads (a query being embedded, a text being counted) change each
    other's settings mid-call: measured under load as ragged batches ("setting an array element
    with a sequence") and "Already borrowed". A copy that is never re-configured is only read, and
    reading is safe from any number of threads.
    """
    from tokenizers import Tokenizer

    rust = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    rust.no_truncation()
    rust.no_padding()
    if max_length is not None:
        rust.enable_truncation(max_length, direction=tokenizer.truncation_side)
    if pad:
        rust.enable_padding(
            direction=tokenizer.padding_side,
            pad_id=tokenizer.pad_token_id,
            pad_type_id=tokenizer.pad_token_type_id,
            pad_token=tokenizer.pad_token,
        )
    return rust


def token_counter(tokenizer) -> Callable[[str], int]:
    """Counts tokens as the model's own tokenizer does, special tokens included; thread-safe."""
    rust = frozen_tokenizer(tokenizer)
    return lambda text: len(rust.encode(text, add_special_tokens=True).ids)
