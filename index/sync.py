"""Incremental, crash-safe sync of files into the vector store.

The store itself is the ledger; no second file can disagree with it.

- A chunk's id is `doc_id::version::index`, where `version` hashes the document id, the file's
  bytes and the pipeline (cleaning, chunking, embedder). Writing the same version twice writes
  the same ids, so a rerun can never duplicate a chunk.
- A document's chunks are written with chunk 0 (the "head", which records `n_chunks`) last.
  A head in the store therefore means its version is complete; a version without a head is a
  half-written leftover, and is rewritten or deleted on the next run.
- Only after the new version is complete are the document's other versions deleted.

So a `kill -9` at any point leaves either the old version, or the new one, or a complete one
plus leftovers that the next run of the same command removes.

For throughput, documents are embedded and written in batches across files: one encode call
and a handful of store calls per batch, instead of several per file (each Chroma write costs
~15 ms whatever its size). The head-last order holds within every batch.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
)
from tqdm import tqdm

from index.chunking import Chunker
from index.clean import CleanResult, clean_pages
from index.crashpoint import CrashPoint
from index.discover import Discovery, SourceFile, discover
from index.loaders import LoadedFile, LoadError, load_file
from index.report import FileResult, IngestLocked, IngestReport
from index.sections import locate
from rag import records
from rag.embeddings import Embedder
from rag.store import Store, head_metadatas
from rag.store_state import Lease, LeaseHeld, LeaseLost

# Bump when cleaning or loading changes what text a file yields: every document re-ingests.
PIPELINE_VERSION = 2  # 2: PDFs read by pypdfium2 with the layout post-pass; pages and sections
BATCH_CHUNKS = 256  # chunks embedded per encode call and written per batch
BATCH_DOCS = 500  # documents per batch (bounds the store queries of a re-ingest)
ADD_LIMIT = 1000  # items per Chroma add call (Chroma refuses batches above ~5,400)


def _filters(*conditions: tuple[str, FilterOperator, object]) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=k, operator=op, value=v) for k, op, v in conditions])


@dataclass
class _Pending:
    """A document checked against the store, waiting for its batch to be embedded and written."""

    result: FileResult
    version: str
    nodes: list[TextNode]  # empty when the document is unchanged


@dataclass
class _Run:
    report: IngestReport
    file_bar: tqdm
    chunk_bar: tqdm
    batch: list[_Pending] = field(default_factory=list)

    @property
    def batch_chunks(self) -> int:
        return sum(len(p.nodes) for p in self.batch)


class Ingestor:
    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        chunker: Chunker,
        max_file_bytes: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.chunker = chunker
        self.max_file_bytes = max_file_bytes
        self.clock = clock
        self._lease: Lease | None = None  # while this ingestor holds the store's ingest lease
        self._crash = CrashPoint.from_environment()  # test only: RAG_CRASH_AFTER_STEP
        pipeline = f"{PIPELINE_VERSION}:{chunker.chunk_size}:{chunker.chunk_overlap}:{embedder.name}"
        self.pipeline = hashlib.sha256(pipeline.encode()).hexdigest()[:12]

    def ingest(self, paths: list[Path], prune: bool = False) -> IngestReport:
        """Sync `paths` into the store. Raises FileNotFoundError (usage) or IngestLocked."""
        found = discover(paths)
        with self._locked():
            return self._ingest(found, prune)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # The lock is a lease in the store itself (rag.store_state), so it holds across machines
        # sharing a Chroma server; every write goes through `_add`/`_delete`, which check it.
        try:
            lease = self.store.state.take()
        except LeaseHeld as exc:
            raise IngestLocked(f"another ingest is running into {self.store.client.name!r}: {exc}") from exc
        with lease.kept():
            self._lease = lease
            try:
                yield
            except LeaseLost as exc:
                raise IngestLocked(f"this ingest stopped: {exc}; run it again") from exc
            finally:
                self._lease = None

    def remove(self, doc_id: str) -> int:
        """Delete every chunk of one document (all versions); returns how many. Takes the lock."""
        with self._locked():
            ids = self.store.client.get(where={records.DOC_ID: doc_id}, include=[])["ids"]
            self._delete(ids)
            return len(ids)

    def _ingest(self, found: Discovery, prune: bool) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport(
            files=[FileResult(path=str(p), status="skipped") for p in found.unsupported]
            + [FileResult(path=str(p), status="failed", error=why) for p, why in found.conflicts.items()]
        )
        heads = self._heads()
        with (
            tqdm(total=len(found.files), desc="files", unit="file", disable=None, position=0) as file_bar,
            tqdm(total=0, desc="chunks", unit="chunk", disable=None, position=1) as chunk_bar,
        ):
            run = _Run(report, file_bar, chunk_bar)
            for src in found.files:
                pending = self._prepare(src, heads.get(src.doc_id, []))
                if isinstance(pending, FileResult):
                    report.files.append(pending)
                    file_bar.update()
                    continue
                report.files.append(pending.result)
                run.batch.append(pending)
                chunk_bar.total += len(pending.nodes)
                chunk_bar.refresh()
                if run.batch_chunks >= BATCH_CHUNKS or len(run.batch) >= BATCH_DOCS:
                    self._flush(run)
            self._flush(run)
        if prune and found.roots:
            keep = {src.doc_id for src in found.files}
            report.files.extend(self._prune(found.roots, keep, report))
        report.chunks_in_store = self.store.client.count()
        report.seconds = time.perf_counter() - started
        return report

    # -- one file ------------------------------------------------------------------------

    def _heads(self) -> dict[str, list[dict]]:
        heads: dict[str, list[dict]] = {}
        for meta in head_metadatas(self.store):
            heads.setdefault(meta[records.DOC_ID], []).append(meta)
        return heads

    def _prepare(self, src: SourceFile, heads: list[dict]) -> _Pending | FileResult:
        """Read, hash and (when new or changed) load, clean and chunk one file."""
        result = FileResult(path=str(src.path), status="failed", doc_id=src.doc_id)
        if owner := _other_owner(src, heads):
            result.error = (
                f"document id {src.doc_id!r} is already used by {owner}, ingested from another folder "
                "of the same name: rename one folder, or delete that document first"
            )
            return result
        try:
            size = src.path.stat().st_size
            if size > self.max_file_bytes:
                raise LoadError(
                    f"{size / 1e6:.1f} MB is over the {self.max_file_bytes / 1e6:g} MB limit "
                    "(RAG_MAX_FILE_MB)"
                )
            data = src.path.read_bytes()
        except OSError as exc:
            result.error = f"cannot read: {exc.strerror or exc}"
            return result
        except LoadError as exc:
            result.error = str(exc)
            return result

        content_hash = hashlib.sha256(data).hexdigest()
        # Per document, so identical files in two places never share a version.
        version = hashlib.sha256(f"{self.pipeline}:{src.doc_id}:{content_hash}".encode()).hexdigest()[:16]
        for head in heads:
            if head[records.VERSION] == version and head[records.PATH] == str(src.path):
                result.status = "unchanged"
                result.chunks = int(head[records.N_CHUNKS])
                return _Pending(result, version, nodes=[])

        try:
            loaded = load_file(src.path, data)
            cleaned = clean_pages(loaded.pages, loaded.joins)
            if not cleaned.text:
                raise LoadError("no text left after cleaning")
            nodes = self._nodes(src, loaded, cleaned, content_hash, version)
        except LoadError as exc:
            result.error = str(exc)
            return result
        except Exception as exc:  # a parser bug on one odd file must not stop the ingest
            result.error = f"could not extract text ({type(exc).__name__}: {exc})"
            return result
        result.status = "updated" if heads else "added"
        result.chunks = len(nodes)
        result.warnings = loaded.warnings
        return _Pending(result, version, nodes)

    def _nodes(
        self, src: SourceFile, loaded: LoadedFile, cleaned: CleanResult, content_hash: str, version: str
    ) -> list[TextNode]:
        chunks = self.chunker.split(cleaned.text)
        sections = locate(cleaned.text, loaded.headings)
        now = self.clock().isoformat(timespec="seconds")
        title = loaded.title
        nodes = []
        for i, chunk in enumerate(chunks):
            metadata = {
                records.DOC_ID: src.doc_id,
                records.CONTENT_HASH: content_hash,
                records.VERSION: version,
                records.CHUNK_INDEX: i,
                records.N_CHUNKS: len(chunks),
                records.CHAR_START: chunk.start,
                records.CHAR_END: chunk.end,
                records.PATH: str(src.path),
                records.ROOT: str(src.root),
                records.TITLE: title,
                records.INGESTED_AT: now,
                records.EMBEDDER: self.embedder.name,
                **records.page_metadata(cleaned.page_starts, loaded.labels, chunk.start, chunk.end),
            }
            if section := sections.path(chunk.start):
                metadata[records.SECTION] = section
            if inner := sections.starts_within(chunk.start, chunk.end):
                metadata[records.SECTION_BREAKS] = json.dumps(inner)
            hidden = [k for k in metadata if k != records.TITLE]
            nodes.append(
                TextNode(
                    id_=records.chunk_id(src.doc_id, version, i),
                    text=chunk.text,
                    start_char_idx=chunk.start,
                    end_char_idx=chunk.end,
                    metadata=metadata,
                    excluded_embed_metadata_keys=hidden,
                    excluded_llm_metadata_keys=hidden,
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=src.doc_id)},
                )
            )
        return nodes

    # -- batches -------------------------------------------------------------------------

    def _flush(self, run: _Run) -> None:
        """Embed and write a batch (heads last), then delete its documents' other versions."""
        batch, run.batch = run.batch, []
        if not batch:
            return
        nodes = [node for pending in batch for node in pending.nodes]
        # Similar lengths side by side: the model's mini-batches then carry little padding.
        by_length = sorted(nodes, key=lambda n: len(n.text))
        for start in range(0, len(by_length), BATCH_CHUNKS):
            part = by_length[start : start + BATCH_CHUNKS]
            vectors = self.embedder.model.get_text_embedding_batch([n.text for n in part])
            for node, vector in zip(part, vectors, strict=True):
                node.embedding = vector
            run.chunk_bar.update(len(part))
        if nodes:
            # Chroma ignores an add of an existing id, so clear the ids first: the add becomes an upsert.
            self._delete([n.node_id for n in nodes])
            self._add([n for n in nodes if n.metadata[records.CHUNK_INDEX] != 0])
            self._add([n for n in nodes if n.metadata[records.CHUNK_INDEX] == 0])  # heads mark completion
            run.report.chunks_embedded += len(nodes)
        stale = self.store.get_nodes(
            None,
            filters=_filters(
                (records.DOC_ID, FilterOperator.IN, [p.result.doc_id for p in batch]),
                (records.VERSION, FilterOperator.NIN, [p.version for p in batch]),
            ),
        )
        self._delete([n.node_id for n in stale])
        run.report.chunks_removed += len(stale)
        run.file_bar.update(len(batch))

    def _add(self, nodes: list[TextNode]) -> None:
        for start in range(0, len(nodes), ADD_LIMIT):
            self._lease.before_write()
            self.store.add(nodes[start : start + ADD_LIMIT])
            self._crash.passed("add")

    def _delete(self, ids: list[str]) -> None:
        ids = sorted(ids, key=lambda i: not records.is_head(i))  # heads first: readers drop the version
        for start in range(0, len(ids), ADD_LIMIT):
            self._lease.before_write()
            self.store.delete_nodes(ids[start : start + ADD_LIMIT])
            self._crash.passed("delete")

    def _prune(self, roots: list[Path], keep: set[str], report: IngestReport) -> list[FileResult]:
        conditions = [(records.ROOT, FilterOperator.IN, [str(r) for r in roots])]
        if keep:
            conditions.append((records.DOC_ID, FilterOperator.NIN, sorted(keep)))
        gone = self.store.get_nodes(None, filters=_filters(*conditions))
        self._delete([n.node_id for n in gone])
        report.chunks_removed += len(gone)
        removed: dict[str, FileResult] = {}
        for node in gone:
            doc_id = node.metadata[records.DOC_ID]
            entry = removed.setdefault(
                doc_id, FileResult(path=node.metadata[records.PATH], status="removed", doc_id=doc_id)
            )
            entry.chunks += 1
        return list(removed.values())


def _other_owner(src: SourceFile, heads: list[dict]) -> str | None:
    """The file of another folder that holds `src`'s document id, if it is still there. A folder
    that was moved (its old file is gone) takes its documents along instead."""
    for head in heads:
        if head.get(records.ROOT) != str(src.root) and Path(head[records.PATH]).exists():
            return head[records.PATH]
    return None
