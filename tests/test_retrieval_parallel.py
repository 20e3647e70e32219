"""Retrieval runs in parallel: calls overlap, and each keeps its own top k and mode."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from pydantic import PrivateAttr

from rag.embed_hash import HashEmbedding
from rag.records import MODES
from rag.retrieval import Retriever

QUERIES = ["battery technology in China", "refining capacity", "oil prices", "electric vehicles"]


class _Meeting(HashEmbedding):
    """Embeds a query only once `parties` queries are being embedded at the same time: a retriever
    that runs one query at a time breaks the barrier (after its timeout) instead."""

    _barrier: threading.Barrier = PrivateAttr()

    def __init__(self, barrier: threading.Barrier) -> None:
        super().__init__()
        self._barrier = barrier

    def _get_query_embedding(self, query: str) -> list[float]:
        self._barrier.wait()
        return super()._get_query_embedding(query)


def test_two_retrievals_run_at_once(make_ingestor, corpus: Path, tmp_path: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    embedder = replace(ingestor.embedder, model=_Meeting(threading.Barrier(2, timeout=20)))
    retriever = Retriever(ingestor.store, embedder, tmp_path / "bm25")
    retriever.warm_up()
    with ThreadPoolExecutor(2) as pool:
        hits = list(pool.map(lambda q: retriever.retrieve(q, "hybrid", 3)[0], QUERIES[:2]))
    assert [len(h) for h in hits] == [3, 3]


def test_parallel_calls_keep_their_own_top_k_and_mode(make_ingestor, corpus: Path, tmp_path: Path):
    ingestor = make_ingestor()
    ingestor.ingest([corpus])
    retriever = Retriever(ingestor.store, ingestor.embedder, tmp_path / "bm25")
    calls = [(q, mode, k) for q in QUERIES for mode in MODES for k in (1, 4, 9)]
    expected = {call: [h.chunk.id for h in retriever.retrieve(*call)[0]] for call in calls}
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda call: [h.chunk.id for h in retriever.retrieve(*call)[0]], calls * 4))
    assert got == [expected[call] for call in calls * 4]


def test_a_hit_that_lost_its_metadata_mid_query_is_dropped():
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from rag.retrieval import _Recording

    class Chroma(BaseRetriever):  # as Chroma answers when a chunk is deleted during the query
        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            whole = TextNode(id_="a", text="kept", metadata={"version": "v1", "doc_id": "d"})
            return [NodeWithScore(node=TextNode(id_="gone", text="", metadata={}), score=0.9),
                    NodeWithScore(node=whole, score=0.5)]  # fmt: skip

    got = _Recording(Chroma()).retrieve(QueryBundle("q"))
    assert [h.node.node_id for h in got] == ["a"]
