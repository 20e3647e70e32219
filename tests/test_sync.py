"""Incremental sync against a real on-disk Chroma store, with the hash embedder."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from conftest import store_rows

from index import sync
from index.clean import clean_text
from index.report import IngestLocked
from rag import records

REQUIRED_METADATA = (
    records.DOC_ID,
    records.CONTENT_HASH,
    records.VERSION,
    records.CHUNK_INDEX,
    records.N_CHUNKS,
    records.CHAR_START,
    records.CHAR_END,
    records.PATH,
    records.ROOT,
    records.TITLE,
    records.INGESTED_AT,
)


def test_first_ingest_stores_every_chunk_with_its_metadata(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    report = ingestor.ingest([corpus])
    assert (report.count("added"), report.count("failed")) == (2, 0)
    rows = store_rows(ingestor.store)
    assert len(rows) == report.chunks_embedded == report.chunks_in_store > 2
    for chunk_id, text, meta in rows:
        assert all(key in meta for key in REQUIRED_METADATA), chunk_id
        assert meta[records.DOC_ID].startswith("corpus/")
        cleaned = clean_text(Path(meta[records.PATH]).read_text()).text
        # A citation can always be turned back into the exact span of the cleaned text.
        assert cleaned[meta[records.CHAR_START] : meta[records.CHAR_END]] == text
        assert chunk_id == records.chunk_id(
            meta[records.DOC_ID], meta[records.VERSION], meta[records.CHUNK_INDEX]
        )


def test_second_ingest_embeds_nothing(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    before = store_rows(ingestor.store)
    report = ingestor.ingest([corpus])
    assert report.chunks_embedded == 0
    assert report.count("unchanged") == 2
    assert sorted(store_rows(ingestor.store)) == sorted(before)


def test_editing_one_file_reembeds_only_that_file(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    edited = corpus / "004_dd6e77b3f402edf5.txt"
    edited.write_text(edited.read_text() + "\n\nA new closing paragraph about sodium-ion cells.\n")
    report = ingestor.ingest([corpus])
    by_status = {f.doc_id: f.status for f in report.files}
    assert by_status == {
        "corpus/000_6aae78438c92dd18.txt": "unchanged",
        "corpus/004_dd6e77b3f402edf5.txt": "updated",
    }
    rows = store_rows(ingestor.store)
    edited_rows = [m for _, _, m in rows if m[records.DOC_ID] == "corpus/004_dd6e77b3f402edf5.txt"]
    assert report.chunks_embedded == len(edited_rows)
    assert len({m[records.VERSION] for m in edited_rows}) == 1, "old version's chunks must be gone"
    assert any("sodium-ion" in text for _, text, _ in rows)


def test_prune_removes_deleted_files_only_with_flag(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    (corpus / "000_6aae78438c92dd18.txt").unlink()
    assert ingestor.ingest([corpus]).count("removed") == 0
    assert any(
        m[records.DOC_ID].endswith("000_6aae78438c92dd18.txt") for _, _, m in store_rows(ingestor.store)
    )
    report = ingestor.ingest([corpus], prune=True)
    assert report.count("removed") == 1
    assert {m[records.DOC_ID] for _, _, m in store_rows(ingestor.store)} == {
        "corpus/004_dd6e77b3f402edf5.txt"
    }


def test_prune_given_a_file_never_removes_its_siblings(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    report = ingestor.ingest([corpus / "004_dd6e77b3f402edf5.txt"], prune=True)
    assert report.count("removed") == 0
    assert len({m[records.DOC_ID] for _, _, m in store_rows(ingestor.store)}) == 2


def test_doc_id_is_the_same_for_a_folder_or_a_file(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus / "004_dd6e77b3f402edf5.txt"])
    report = ingestor.ingest([corpus])
    assert {f.doc_id: f.status for f in report.files}["corpus/004_dd6e77b3f402edf5.txt"] == "unchanged"


def test_duplicated_sample_document_stores_no_text_twice(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus / "000_6aae78438c92dd18.txt"])
    stored = "\n".join(
        text for _, text, _ in sorted(store_rows(ingestor.store), key=lambda r: r[2][records.CHUNK_INDEX])
    )
    paragraphs = [p for p in (corpus / "000_6aae78438c92dd18.txt").read_text().splitlines() if len(p) > 40]
    assert paragraphs
    for paragraph in set(paragraphs):
        # Chunks overlap by design; what must hold is that the document itself has each paragraph once.
        cleaned = clean_text((corpus / "000_6aae78438c92dd18.txt").read_text()).text
        assert cleaned.count(paragraph.strip()) == 1, paragraph
        assert paragraph.strip()[:60] in stored
    texts = [text for _, text, _ in store_rows(ingestor.store)]
    assert len(texts) == len(set(texts))


def test_bad_inputs_fail_one_by_one_and_everything_else_is_ingested(
    make_ingestor, corpus: Path, tmp_path: Path
):
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.4\n" + os.urandom(2000))
    (corpus / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00" + os.urandom(4000))
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "latin1.txt").write_bytes(
        "Le café était très animé ce soir-là, près de la gare.".encode("cp1252")
    )
    (corpus / "big.txt").write_bytes(b"word " * 10_000_000)  # 50 MB, over the default 25 MB limit
    (corpus / "missing.txt").symlink_to(tmp_path / "does-not-exist")  # unreadable, even for root
    (corpus / "notes.xyz").write_text("unknown extension")
    report = make_ingestor().ingest([corpus])
    results = {Path(f.path).name: f for f in report.files}
    expected_failures = {
        "corrupt.pdf": "unreadable PDF",
        "binary.txt": "binary",
        "empty.txt": "empty file",
        "big.txt": "50.0 MB is over the 25 MB limit (RAG_MAX_FILE_MB)",
        "missing.txt": "cannot read",
    }
    for name, reason in expected_failures.items():
        assert results[name].status == "failed", name
        assert reason in results[name].error, (name, results[name].error)
    assert results["latin1.txt"].status == "added"
    assert "decoded as" in results["latin1.txt"].warnings[0]
    assert results["notes.xyz"].status == "skipped"
    assert results["000_6aae78438c92dd18.txt"].status == results["004_dd6e77b3f402edf5.txt"].status == "added"
    assert report.count("failed") == len(expected_failures)


def test_a_changed_file_that_now_fails_keeps_its_previous_version(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    before = store_rows(ingestor.store)
    (corpus / "004_dd6e77b3f402edf5.txt").write_bytes(b"")
    report = ingestor.ingest([corpus])
    assert report.count("failed") == 1
    assert sorted(store_rows(ingestor.store)) == sorted(before)


def test_a_second_ingest_into_the_same_collection_is_refused_naming_the_holder(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    held = r"another ingest is running into 'test_docs': held by pid \d+ on .+ until \d{4}-\d\d-\d\dT"
    with ingestor.store.state.take().kept(), pytest.raises(IngestLocked, match=held):
        ingestor.ingest([corpus])
    assert ingestor.ingest([corpus]).count("added") == 2  # the lock was not left behind


def test_an_ingest_that_lost_its_lease_stops_before_its_next_write(make_ingestor, corpus: Path, monkeypatch):
    ingestor = make_ingestor()
    real_take = ingestor.store.state.take

    def take_then_lose():
        lease = real_take()
        monkeypatch.setattr(lease, "_lost", "the ingest lease was taken over (by pid 1 on elsewhere)")
        return lease

    monkeypatch.setattr(ingestor.store.state, "take", take_then_lose)
    with pytest.raises(IngestLocked, match="this ingest stopped: the ingest lease was taken over"):
        ingestor.ingest([corpus])
    assert ingestor.store.client.count() == 0, "nothing written without the lease"


def test_missing_path_is_a_usage_error(make_ingestor, tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        make_ingestor().ingest([tmp_path / "no-such-folder"])


class _CrashingEmbedding:
    """Wraps a real embedding model and dies after `limit` batches, like a killed process."""

    def __init__(self, inner, limit: int) -> None:
        self.inner, self.limit = inner, limit

    def get_text_embedding_batch(self, texts):
        if self.limit == 0:
            raise KeyboardInterrupt("simulated crash")
        self.limit -= 1
        return self.inner.get_text_embedding_batch(texts)


def _many_files(folder: Path, n: int) -> None:
    for i in range(n):
        (folder / f"doc{i:03d}.txt").write_text(
            "\n\n".join(f"Document {i} paragraph {j} talks about topic {i * 7 + j}." for j in range(60))
        )


@pytest.mark.parametrize("crash_after", [0, 1, 3])
def test_an_interrupted_ingest_converges_on_rerun(
    make_ingestor, tmp_path: Path, crash_after: int, monkeypatch
):
    from dataclasses import replace

    # Small batches and add calls, so a handful of files spans several of each.
    monkeypatch.setattr(sync, "BATCH_CHUNKS", 8)
    monkeypatch.setattr(sync, "ADD_LIMIT", 5)
    folder = tmp_path / "many"
    folder.mkdir()
    _many_files(folder, 5)
    reference = make_ingestor(collection="reference")
    reference.ingest([folder])
    ingestor = make_ingestor()
    real = ingestor.embedder
    ingestor.embedder = replace(real, model=_CrashingEmbedding(real.model, crash_after))
    with pytest.raises(KeyboardInterrupt):
        ingestor.ingest([folder])
    ingestor.embedder = real
    ingestor.ingest([folder])
    got = store_rows(ingestor.store)
    assert Counter(i for i, _, _ in got).most_common(1)[0][1] == 1
    assert sorted((i, t) for i, t, _ in got) == sorted((i, t) for i, t, _ in store_rows(reference.store))


def _folder(parent: Path, text: str) -> Path:
    docs = parent / "docs"
    docs.mkdir(parents=True)
    (docs / "notes.txt").write_text(text)
    return docs


def test_a_second_folder_with_the_same_name_never_replaces_the_first(make_ingestor, tmp_path: Path):
    ingestor = make_ingestor()
    first = _folder(tmp_path / "a", "Lithium refining is concentrated in a few countries.")
    second = _folder(tmp_path / "b", "Cobalt mining has its own supply problems.")
    ingestor.ingest([first])
    report = ingestor.ingest([second])
    (result,) = report.files
    assert result.status == "failed"
    assert "docs/notes.txt" in result.error and str(first / "notes.txt") in result.error
    texts = [text for _, text, m in store_rows(ingestor.store) if m[records.DOC_ID] == "docs/notes.txt"]
    assert texts and all("Lithium" in t for t in texts)


def test_a_moved_folder_takes_its_documents_along(make_ingestor, tmp_path: Path):
    ingestor = make_ingestor()
    first = _folder(tmp_path / "a", "Lithium refining is concentrated in a few countries.")
    ingestor.ingest([first])
    moved = tmp_path / "c" / "docs"
    moved.parent.mkdir()
    first.rename(moved)
    (result,) = ingestor.ingest([moved]).files
    assert result.status == "updated"
    paths = {m[records.PATH] for _, _, m in store_rows(ingestor.store)}
    assert paths == {str(moved / "notes.txt")}
