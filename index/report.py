"""What an ingest reports: one result per file and the run's totals (`rag ingest --json`), and the
error when another ingest holds the lock."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Status = Literal["added", "updated", "unchanged", "removed", "failed", "skipped"]


class IngestLocked(RuntimeError):
    """Another ingest holds the lock on this data dir."""


@dataclass
class FileResult:
    path: str
    status: Status
    doc_id: str | None = None
    chunks: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """The store now holds something it did not (a new document or a new version of one)."""
        return self.status in ("added", "updated")


@dataclass
class IngestReport:
    files: list[FileResult] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_removed: int = 0
    chunks_in_store: int = 0
    seconds: float = 0.0

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    def to_dict(self) -> dict:
        counts = {s: self.count(s) for s in ("added", "updated", "unchanged", "removed", "failed", "skipped")}
        return {
            **counts,
            "chunks_embedded": self.chunks_embedded,
            "chunks_removed": self.chunks_removed,
            "chunks_in_store": self.chunks_in_store,
            "seconds": round(self.seconds, 3),
            "chunks_per_second": round(self.chunks_embedded / self.seconds, 2) if self.seconds else 0.0,
            "files": [asdict(f) for f in self.files],
        }

    def summary(self) -> str:
        d = self.to_dict()
        return (
            f"documents: {d['added']} added, {d['updated']} updated, {d['unchanged']} unchanged, "
            f"{d['removed']} removed, {d['failed']} failed, {d['skipped']} skipped (unsupported type); "
            f"chunks: {d['chunks_embedded']} embedded, {d['chunks_removed']} removed, "
            f"{d['chunks_in_store']} in store; {d['seconds']:.1f} s"
            + (f" ({d['chunks_per_second']:.1f} chunks/s)" if d["chunks_embedded"] else "")
        )
