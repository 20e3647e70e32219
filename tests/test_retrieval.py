"""Hybrid retrieval over a real on-disk Chroma store (hash embedder) and a persisted BM25 index."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import records
from rag.records import MODES
from rag.retrieval import Retriever, index_version


@pytest.fixture
def ingested(make_ingestor, corpus: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    return ingestor


def _retriever(ingestor, tmp_path: Path) -> Retriever:
    return Retriever(ingestor.store, ingestor.embedder, tmp_path / "bm25")


@pytest.mark.parametrize("mode", MODES)
def test_each_mode_returns_top_k_with_its_scores(ingested, tmp_path: Path, mode):
    hits, timings = _retriever(ingested, tmp_path).retrieve("battery technology in China", mode, top_k=3)
    assert len(hits) == 3
    assert len({h.chunk.id for h in hits}) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "embed" in timings
    if mode == "dense":
        assert all(h.dense is not None and h.dense == h.score for h in hits)
    if mode == "bm25":
        assert all(h.bm25 is not None and h.bm25 == h.score > 0 for h in hits)
    if mode == "hybrid":
        assert {"dense", "bm25", "fuse"} <= timings.keys()
    # Every hit carries its cosine, whichever retriever found it: refusal decides on it.
    assert all(h.dense is not None and -1.0 <= h.dense <= 1.0 for h in hits)


def test_dense_scores_are_cosines_in_every_mode(ingested, tmp_path: Path):
    retriever = _retriever(ingested, tmp_path)
    by_mode = {
        mode: {h.chunk.id: h.dense for h in retriever.retrieve("refining capacity", mode, 3)[0]}
        for mode in MODES
    }
    shared = set(by_mode["dense"]) & set(by_mode["bm25"])
    assert shared, "dense and BM25 agree on at least one chunk for this query"
    for chunk_id in shared:
        assert by_mode["bm25"][chunk_id] == pytest.approx(by_mode["dense"][chunk_id], abs=1e-4)


def test_bm25_finds_the_refining_chunk(ingested, tmp_path: Path):
    hits, _ = _retriever(ingested, tmp_path).retrieve("refining capacity", "bm25", top_k=1)
    assert "refining capacity" in hits[0].chunk.text


def test_bm25_returns_only_chunks_that_share_a_term(ingested, tmp_path: Path):
    hits, _ = _retriever(ingested, tmp_path).retrieve("zeppelin", "bm25", top_k=3)
    assert hits == []


def test_bm25_index_is_persisted_and_rebuilt_only_when_the_store_changed(ingested, corpus, tmp_path: Path):
    first = _retriever(ingested, tmp_path)
    first.warm_up()
    stamp = tmp_path / "bm25" / "version.json"
    built_at = stamp.stat().st_mtime_ns
    again = _retriever(ingested, tmp_path)
    again.warm_up()
    assert stamp.stat().st_mtime_ns == built_at, "an unchanged store must reuse the index on disk"
    assert again.version == first.version == index_version(ingested.store)

    (corpus / "new.txt").write_text("Sodium-ion cells need no lithium refining at all.")
    ingested.ingest([corpus])
    again.warm_up()
    assert again.version != first.version
    hits, _ = again.retrieve("sodium-ion", "bm25", top_k=1)
    assert "Sodium-ion" in hits[0].chunk.text


def test_empty_store_returns_nothing(make_ingestor, tmp_path: Path):
    hits, _ = _retriever(make_ingestor(collection="empty_one"), tmp_path).retrieve("anything")
    assert hits == []


@pytest.mark.parametrize("fusion", ["dist", "rrf"])
def test_both_fusions_rank_hybrid_hits(ingested, tmp_path: Path, fusion):
    retriever = Retriever(ingested.store, ingested.embedder, tmp_path / "bm25", fusion=fusion)
    hits, _ = retriever.retrieve("refining capacity", "hybrid", top_k=3)
    assert len(hits) == 3
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert "refining capacity" in hits[0].chunk.text


def test_a_store_embedded_by_another_model_is_refused(ingested):
    from dataclasses import replace

    from rag.records import EmbedderMismatch
    from rag.retrieval import check_embedder

    check_embedder(ingested.store, ingested.embedder)  # the embedder that built it: fine
    other = replace(ingested.embedder, name="all-MiniLM-L6-v2+onnx-int8")
    with pytest.raises(EmbedderMismatch, match="run `rag ingest`"):
        check_embedder(ingested.store, other)


def test_bm25_is_built_from_the_store_in_pages(ingested, tmp_path: Path, monkeypatch):
    import rag.retrieval

    monkeypatch.setattr(rag.retrieval, "PAGE", 2)  # Chroma refuses one read of ~100k chunks
    retriever = _retriever(ingested, tmp_path)
    retriever.warm_up()
    stored = set(ingested.store.client.get(include=[])["ids"])
    assert len(stored) > 2 and {e["node_id"] for e in retriever._view.bm25.corpus} == stored


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ingest", ["removes before the build", "writes after the build"])
def test_an_ingest_beside_the_bm25_build_never_asks_bm25_for_more_than_it_holds(
    ingested, tmp_path: Path, monkeypatch, mode, ingest
):
    # Under load uploads changed the store while warm_up counted it and built BM25 from it, and
    # the candidate count (from the store) exceeded the index: bm25s raised "k of N is larger
    # than the number of available scores".
    retriever = _retriever(ingested, tmp_path)
    store = ingested.store
    count = store.client.count()
    doc_id = store.client.get(limit=1, include=["metadatas"])["metadatas"][0][records.DOC_ID]
    build = Retriever._load_or_build

    def build_beside_an_ingest(self, *args):
        if ingest == "removes before the build":
            store.client.delete(ids=store.client.get(include=[])["ids"][-2:])
            return build(self, *args)
        index = build(self, *args)
        _new_version(store, doc_id, "new0000000000000", with_head=False)
        return index

    monkeypatch.setattr(Retriever, "_load_or_build", build_beside_an_ingest)
    hits, _ = retriever.retrieve("battery refining capacity", mode, top_k=count)
    assert 0 < len(hits) <= count


def _new_version(store, doc_id: str, version: str, with_head: bool) -> None:
    """A new version of `doc_id` as an ingest writes it: the same chunks under new ids, and the head
    (chunk 0) last, so `with_head=False` is an ingest still writing (or killed while writing)."""
    got = store.client.get(where={records.DOC_ID: doc_id}, include=["embeddings"])
    vectors = dict(zip(got["ids"], got["embeddings"], strict=True))
    later = {records.VERSION: version, records.INGESTED_AT: "2999-01-01T00:00:00+00:00"}
    copies = [
        node.model_copy(update={
            "id_": records.chunk_id(doc_id, version, node.metadata[records.CHUNK_INDEX]),
            "metadata": node.metadata | later,
            "embedding": list(vectors[node.node_id]),
        })
        for node in store.get_nodes(got["ids"])
        if with_head or node.metadata[records.CHUNK_INDEX] > 0
    ]  # fmt: skip
    store.add(copies)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("with_head", [False, True], ids=["half-written", "two-complete"])
def test_readers_see_one_complete_version_per_document(ingested, tmp_path: Path, mode, with_head):
    store = ingested.store
    doc_id = store.client.get(where={records.CHUNK_INDEX: 0}, limit=1, include=["metadatas"])["metadatas"][0][
        records.DOC_ID
    ]
    old = {m[records.VERSION] for m in store.client.get(where={records.DOC_ID: doc_id})["metadatas"]}
    # Without its head the new version is still being written: readers keep the old one. With it,
    # the ingest crashed before deleting the old one: the newer complete version wins.
    _new_version(store, doc_id, "new0000000000000", with_head)
    want = {"new0000000000000"} if with_head else old
    retriever = _retriever(ingested, tmp_path)
    hits, _ = retriever.retrieve("battery refining capacity lithium supply", mode, top_k=50)
    assert hits
    assert {h.chunk.version for h in hits if h.chunk.doc_id == doc_id} <= want
    assert len({h.chunk.text for h in hits}) == len(hits), "no chunk twice, from two versions"
    in_bm25 = {entry[records.VERSION] for entry in retriever._view.bm25.corpus}
    assert in_bm25 & ({"new0000000000000"} | old) == want
