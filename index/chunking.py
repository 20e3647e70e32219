"""Split cleaned text into token-sized chunks that each carry their exact span.

LlamaIndex's `SentenceSplitter` does the splitting, counting tokens with tiktoken. Each chunk
is then located in the cleaned text, so `text[start:end]` is the chunk, character for character.
A chunk the embedder would truncate (its window is counted in the model's own word pieces, not
tiktoken tokens) is split again, smaller, until every piece fits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llama_index.core.node_parser import SentenceSplitter

from rag.tokens import get_encoding

_MIN_CHUNK_TOKENS = 16


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int
    end: int


class Chunker:
    def __init__(
        self,
        chunk_size: int,
        chunk_overlap: int,
        fits: Callable[[str], bool] = lambda _text: True,
    ) -> None:
        if chunk_overlap >= chunk_size:
            raise ValueError(f"chunk_overlap ({chunk_overlap}) must be below chunk_size ({chunk_size})")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._fits = fits
        self._encode = get_encoding().encode
        self._splitters: dict[int, SentenceSplitter] = {}
        # Load NLTK's sentence tokenizer now (~1.5 s of imports), not inside the first file.
        self._splitter(chunk_size).split_text("Warm up. Two sentences.")

    def _splitter(self, size: int) -> SentenceSplitter:
        if size not in self._splitters:
            self._splitters[size] = SentenceSplitter(
                chunk_size=size,
                chunk_overlap=min(self.chunk_overlap, size // 4),
                tokenizer=self._encode,
            )
        return self._splitters[size]

    def split(self, text: str) -> list[Chunk]:
        # Neighbouring pieces overlap, so when the fits guard re-splits both of them it emits some
        # spans twice or inside one another, out of order. Keep only the widest spans, in text order.
        chunks = sorted(self._split(text, 0, self.chunk_size), key=lambda c: (c.start, -c.end))
        kept: list[Chunk] = []
        for chunk in chunks:
            if not kept or chunk.end > kept[-1].end:
                kept.append(chunk)
        return kept

    def _split(self, text: str, offset: int, size: int) -> list[Chunk]:
        chunks: list[Chunk] = []
        cursor = 0
        for piece in self._splitter(size).split_text(text):
            start = text.find(piece, cursor)
            if start < 0:  # a piece can start where the previous one did: all of it was overlap
                start = text.find(piece, max(cursor - 1, 0))
            if start < 0:  # the splitter never rewrites text; guard the invariant anyway
                raise ValueError(f"chunk not found in its source text: {piece[:60]!r}")
            cursor = start + 1
            if self._fits(piece) or size <= _MIN_CHUNK_TOKENS:
                chunks.append(Chunk(piece, offset + start, offset + start + len(piece)))
            else:
                chunks.extend(self._split(piece, offset + start, max(size * 3 // 4, _MIN_CHUNK_TOKENS)))
        return chunks
