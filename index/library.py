"""The documents staff and other teams manage from the UI and the API: list, upload, delete.

Uploads go through the same loaders, cleaning and chunking as `rag ingest`, one file at a time
so each gets its own result and a progress step. Uploaded files are kept under
the collection's uploads folder (`Settings.uploads_dir`) with sanitised names; nothing is ever
written elsewhere.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

from filelock import FileLock, Timeout

from index.loaders import SUPPORTED_EXTENSIONS
from index.report import FileResult, IngestLocked
from index.sync import Ingestor
from rag import records
from rag.store import head_metadatas

MAX_NAME = 120  # characters kept of an uploaded file's name
NAME_WAIT_S = 120.0  # how long an upload waits for another upload or delete of the same name
Progress = Callable[[int, int, str], None]  # (files done, files in all, file name)


class UploadRejected(ValueError):
    """An upload refused before ingesting. The message names the file; `kind` says why."""

    def __init__(self, message: str, kind: Literal["name", "type", "size", "empty"]) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DocumentInfo:
    doc_id: str
    title: str
    path: str
    chunks: int
    ingested_at: str
    uploaded: bool


def safe_filename(name: str) -> str:
    """The last path component of a client's file name, reduced to safe characters.

    `../../etc/x.txt` becomes `x.txt`; hidden names lose their dots; an empty result or an
    unsupported extension is refused.
    """
    base = PurePosixPath(unicodedata.normalize("NFKC", name).replace("\\", "/")).name
    base = re.sub(r"[^\w.\-]+", "_", base).strip("._ ")
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem:
        raise UploadRejected(f"{name!r}: a file name with an extension is needed", "name")
    if f".{suffix.lower()}" not in SUPPORTED_EXTENSIONS:
        allowed = " ".join(sorted(SUPPORTED_EXTENSIONS))
        raise UploadRejected(f"{name!r}: unsupported file type .{suffix} (supported: {allowed})", "type")
    return f"{stem[: MAX_NAME - len(suffix) - 1]}.{suffix.lower()}"


class Library:
    def __init__(
        self,
        ingestor: Ingestor,
        upload_dir: Path,
        max_file_bytes: int,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.ingestor = ingestor
        self.upload_dir = upload_dir
        self.max_file_bytes = max_file_bytes
        self.on_change = on_change  # e.g. the retriever's warm_up, so BM25 sees the change at once

    def documents(self) -> list[DocumentInfo]:
        """Every complete document in the store (its head chunk is written last), by id."""
        upload_root = str(self.upload_dir.resolve())
        docs = {
            m[records.DOC_ID]: DocumentInfo(
                doc_id=m[records.DOC_ID],
                title=m[records.TITLE],
                path=m[records.PATH],
                chunks=int(m[records.N_CHUNKS]),
                ingested_at=m[records.INGESTED_AT],
                uploaded=m[records.ROOT] == upload_root,
            )
            for m in head_metadatas(self.ingestor.store)
        }
        return [docs[k] for k in sorted(docs)]

    def check(self, name: str, size: int) -> str:
        """The safe name for an upload, or UploadRejected (type, name or size)."""
        safe = safe_filename(name)
        if size > self.max_file_bytes:
            raise UploadRejected(
                f"{name!r}: {size / 1e6:.1f} MB is over the {self.max_file_bytes / 1e6:g} MB limit", "size"
            )
        if size == 0:
            raise UploadRejected(f"{name!r}: the file is empty", "empty")
        return safe

    def upload(self, files: list[tuple[str, bytes]], progress: Progress | None = None) -> list[FileResult]:
        """Store and ingest each (name, bytes); one result per file, in order. Never raises for a
        bad file: a refused or failed file gets status `failed` and its reason. Raises
        IngestLocked when another ingest holds the lock."""
        self.upload_dir.mkdir(parents=True, exist_ok=True)
        results: list[FileResult] = []
        for done, (name, data) in enumerate(files):
            if progress:
                progress(done, len(files), name)
            try:
                safe = self.check(name, len(data))
            except UploadRejected as exc:
                results.append(FileResult(path=name, status="failed", error=str(exc)))
                continue
            with self._name_lock(safe):
                results.append(self._store_and_ingest(self.upload_dir / safe, data))
        if progress:
            progress(len(files), len(files), "")
        if any(r.changed for r in results):
            self.on_change()
        return results

    @contextmanager
    def _name_lock(self, name: str) -> Iterator[None]:
        """One upload or delete of a name at a time, across threads and worker processes: both
        move the name's `.part` / `.previous` files around before and after they ingest, so two at
        once would restore each other's files and leave the folder unlike the store."""
        locks = self.upload_dir.with_name(self.upload_dir.name + ".locks")  # outside the ingested folder
        locks.mkdir(parents=True, exist_ok=True)
        lock = FileLock(locks / f"{name}.lock", timeout=NAME_WAIT_S)
        try:
            lock.acquire()
        except Timeout:
            raise IngestLocked(f"{name!r}: another upload of this name is still being ingested") from None
        try:
            yield
        finally:
            lock.release()

    def _store_and_ingest(self, target: Path, data: bytes) -> FileResult:
        """Put the file in place and ingest it. If that fails, the previous upload of the same
        name (whose chunks the store keeps) comes back, so the folder matches the store."""
        # Hidden names: an ingest of the folder skips them.
        tmp, previous = target.with_name(f".{target.name}.part"), target.with_name(f".{target.name}.previous")
        tmp.write_bytes(data)
        had_previous = target.exists()
        if had_previous:
            os.replace(target, previous)
        os.replace(tmp, target)

        def restore() -> None:
            if had_previous:
                os.replace(previous, target)
            else:
                target.unlink(missing_ok=True)

        try:
            result = self.ingestor.ingest([target]).files[0]
        except BaseException:  # e.g. IngestLocked: nothing of this upload stays
            restore()
            raise
        if result.status == "failed":
            restore()
        else:
            previous.unlink(missing_ok=True)
        return result

    def delete(self, doc_id: str) -> int:
        """Remove a document's chunks (and its file, when it was uploaded). Returns chunks removed;
        0 means there was no such document."""
        # Any one chunk names the file; every version of an upload lives at the same path.
        one = self.ingestor.store.client.get(where={records.DOC_ID: doc_id}, limit=1, include=["metadatas"])
        uploaded = [
            Path(m[records.PATH])
            for m in one["metadatas"]
            if m[records.ROOT] == str(self.upload_dir.resolve())
        ]
        with self._name_lock(uploaded[0].name) if uploaded else nullcontext():
            removed = self.ingestor.remove(doc_id)
            for path in uploaded:
                path.unlink(missing_ok=True)
        if removed:
            self.on_change()
        return removed
