"""Filters on ask and retrieve: each restricts both retrievers (and so the fused hits) to matching
chunks, on real Chroma; the Answer records them; a filter the API does not know is a 422."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_fixtures import QUESTION, components, local_client
from pdf_fixtures import report_pdf

from api.app import create_app
from index.chunking import Chunker
from index.sync import Ingestor
from rag import records, retrieval
from rag.embeddings import hash_embedder
from rag.records import Filters
from rag.retrieval import Retriever
from rag.settings import Settings
from rag.store import open_store

# Every document mentions the turbine, so an unfiltered query finds them all.
DOCS = {
    "reports/2024/annual.md": "# Annual report 2024\n\nThe tidal turbine ran for 300 days in 2024.\n",
    "reports/2025/annual.md": "# Annual report 2025\n\nThe tidal turbine ran for 340 days in 2025.\n",
    "notes/maintenance.txt": "Maintenance notes: the turbine gearbox was replaced in spring.\n",
}
PDF_PAGES = [
    [("para", f"Page {n}: the turbine blade survey found {n} cracks on blade {n}.")] for n in (1, 2, 3)
]
QUERY = "turbine"


def ingest(root: Path, ingestor: Ingestor) -> None:
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "survey.pdf").write_bytes(report_pdf(PDF_PAGES))
    assert ingestor.ingest([root]).count("failed") == 0


def make_retriever(tmp_path: Path, settings: Settings) -> Retriever:
    embedder = hash_embedder()
    store = open_store(settings)
    ingest(tmp_path / "library", Ingestor(store, embedder, Chunker(64, 8, fits=embedder.fits), 10_000_000))
    retriever = Retriever(store, embedder, settings.bm25_dir)
    retriever.warm_up()
    return retriever


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory) -> Retriever:
    tmp = tmp_path_factory.mktemp("filters")
    return make_retriever(tmp, Settings(_env_file=None, data_dir=tmp / "data", collection="filters"))


def found(retriever: Retriever, filters: Filters | None, mode: str = "hybrid") -> list[records.StoredChunk]:
    hits, _ = retriever.retrieve(QUERY, mode, 50, filters)
    return [h.chunk for h in hits]


def test_without_filters_every_document_is_found(retriever: Retriever):
    assert {c.doc_id for c in found(retriever, None)} == {
        *(f"library/{d}" for d in DOCS),
        "library/survey.pdf",
    }


REPORTS, NOTES, PDF = "library/reports/", "library/notes/maintenance.txt", "library/survey.pdf"
REPORT_2025 = REPORTS + "2025/annual.md"
CASES: list[tuple[str, Callable[[], Filters], Callable[[records.StoredChunk], bool]]] = [
    ("doc_ids", lambda: Filters(doc_ids=[NOTES, PDF]), lambda c: c.doc_id in {NOTES, PDF}),
    ("path_prefix", lambda: Filters(path_prefix=REPORTS), lambda c: c.doc_id.startswith(REPORTS)),
    ("title", lambda: Filters(title_contains="REPORT 2025"), lambda c: c.doc_id == REPORT_2025),
    ("pages", lambda: Filters(pages=(2, 2)), lambda c: c.doc_id == PDF and c.page <= 2 <= c.page_end),
    ("combined", lambda: Filters(path_prefix="library/", pages=(3, 9)), lambda c: c.page and c.page_end >= 3),
]  # fmt: skip


# How dense search is restricted (rag.retrieval.Retriever._dense): the thresholds that pick each way.
DENSE_PATHS = {
    "exact": {},
    "wide": {"EXACT_MAX": 0, "WIDE_MAX": 10**6},
    "narrow": {"EXACT_MAX": 0, "WIDE_MAX": 0},
}


@pytest.mark.parametrize("path", DENSE_PATHS)
@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
@pytest.mark.parametrize(("name", "filters", "matches"), CASES, ids=[c[0] for c in CASES])
def test_each_filter_restricts_every_mode_to_matching_chunks(
    retriever: Retriever, name, filters, matches, mode, path, monkeypatch: pytest.MonkeyPatch
):
    for constant, value in DENSE_PATHS[path].items():
        monkeypatch.setattr(retrieval, constant, value)
    chunks = found(retriever, filters(), mode)
    assert chunks, f"{name}: something matches"
    assert all(matches(c) for c in chunks), [(c.doc_id, c.page) for c in chunks]
    # Nothing that matches is lost: the filter narrows, it does not cut the matching hits short.
    everything = [c for c in found(retriever, None, mode) if matches(c)]
    assert {c.id for c in everything} <= {c.id for c in chunks}


def test_ingested_before_and_after_split_on_the_ingest_time(retriever: Retriever):
    stamps = sorted({datetime.fromisoformat(c.ingested_at) for c in found(retriever, None)})
    later = stamps[-1] + timedelta(seconds=1)
    assert found(retriever, Filters(ingested_after=later)) == []
    assert len(found(retriever, Filters(ingested_before=later))) == len(found(retriever, None))
    assert found(retriever, Filters(ingested_before=stamps[0])) == []
    naive = Filters(ingested_after=later.replace(tzinfo=None))
    assert naive.ingested_after == later.astimezone(UTC), "a time without a zone is read as UTC"


def test_a_filter_matching_nothing_finds_nothing(retriever: Retriever):
    assert found(retriever, Filters(doc_ids=["library/none.txt"])) == []
    assert found(retriever, Filters(title_contains="Annual", pages=(1, 1))) == [], "the reports have no pages"


def test_the_api_takes_filters_records_them_and_refuses_unknown_ones(tmp_path: Path):
    built = components(tmp_path)
    with local_client(create_app(built.settings, built.workspaces, built.gate)) as client:
        docs = [d["doc_id"] for d in client.get("/v1/documents").json()["documents"]]
        only = {"doc_ids": docs[:1]}
        retrieved = client.post("/v1/retrieve", json={"query": QUESTION, "filters": only}).json()
        assert retrieved["filters"]["doc_ids"] == docs[:1]
        assert {c["doc_id"] for c in retrieved["chunks"]} == set(docs[:1])
        answer = client.post("/v1/ask", json={"question": QUESTION, "filters": only}).json()
        assert answer["filters"]["doc_ids"] == docs[:1]
        assert {s["doc_id"] for s in answer["sources"]} <= set(docs[:1])
        for bad, param in (({"author": "x"}, "author"), ({"pages": [3, 1]}, "pages"),
                           ({"ingested_after": "soon"}, "ingested_after")):  # fmt: skip
            response = client.post("/v1/ask", json={"question": QUESTION, "filters": bad})
            assert response.status_code == 422, response.text
            assert param in response.json()["error"]["param"], response.json()
