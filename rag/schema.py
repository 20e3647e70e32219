"""What every stored chunk carries, and how its id is formed.

`index` writes these fields; `rag` reads them back to turn a citation into the exact span of
the cleaned document text (`text == cleaned[char_start:char_end]`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Metadata keys, as stored in Chroma.
DOC_ID = "doc_id"  # stable: "<root folder name>/<path relative to that root>"
CONTENT_HASH = "content_hash"  # sha256 of the file's bytes
VERSION = "version"  # hash of doc id + content + ingest pipeline (cleaning, chunking, embedder)
CHUNK_INDEX = "chunk_index"
N_CHUNKS = "n_chunks"
CHAR_START = "char_start"
CHAR_END = "char_end"
PATH = "path"  # absolute source path
ROOT = "root"  # absolute folder the document was ingested from
TITLE = "title"
INGESTED_AT = "ingested_at"  # ISO 8601, UTC
EMBEDDER = "embedder"


class EmbedderMismatch(RuntimeError):
    """The store's vectors come from another embedder than the one that would embed queries."""


def chunk_id(doc_id: str, version: str, index: int) -> str:
    return f"{doc_id}::{version}::{index}"


@dataclass(frozen=True)
class StoredChunk:
    id: str
    text: str
    doc_id: str
    version: str
    chunk_index: int
    n_chunks: int
    char_start: int
    char_end: int
    path: str
    root: str
    title: str
    ingested_at: str

    @classmethod
    def from_metadata(cls, id: str, text: str, meta: dict) -> StoredChunk:
        return cls(
            id=id,
            text=text,
            doc_id=meta[DOC_ID],
            version=meta[VERSION],
            chunk_index=int(meta[CHUNK_INDEX]),
            n_chunks=int(meta[N_CHUNKS]),
            char_start=int(meta[CHAR_START]),
            char_end=int(meta[CHAR_END]),
            path=meta[PATH],
            root=meta[ROOT],
            title=meta[TITLE],
            ingested_at=meta[INGESTED_AT],
        )
