"""The benchmark machinery: generated corpora, the embedding cache, derived stores, the load loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench import run as bench
from bench.corpus_gen import generate, seed_documents, variant
from bench.load import percentiles
from index.chunking import Chunker
from rag.embeddings import HashEmbedding, hash_embedder
from rag.settings import Settings


def test_generated_corpus_reaches_its_size_with_distinct_copies(tmp_path: Path):
    chunker = Chunker(192, 32)
    per_doc = bench.chunks_per_seed(chunker)
    target = 2 * sum(per_doc.values())  # twice the seed corpus: copies are needed
    made = generate(tmp_path / "c", target, per_doc)
    texts = bench.chunk_texts(sorted(made.folder.glob("*.txt")), chunker)
    assert target <= len(texts) <= target + max(per_doc.values())
    assert made.files > len(seed_documents()), "copies were needed"
    assert len(set(texts)) > 0.9 * len(texts), "copies differ from their originals"


def test_a_copy_keeps_the_paragraphs_with_numbers_shifted():
    import random

    paragraphs = ["In 1973 prices rose 4 times.", "Oil is a commodity."]
    copy = variant(paragraphs, 3, random.Random(1)).split("\n\n")
    assert sorted(copy) == sorted(["In 1976 prices rose 7 times.", "Oil is a commodity."])
    assert variant(paragraphs, 0, random.Random(1)) == "In 1973 prices rose 4 times.\n\nOil is a commodity."


def test_percentiles_use_nearest_rank():
    values = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    assert percentiles(values) == {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}


class Counting(HashEmbedding):
    calls: int = 0

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        self.calls += len(texts)
        return super()._get_text_embeddings(texts)


def test_embedding_cache_embeds_each_text_once(tmp_path: Path):
    inner = Counting(dim=16)
    cached = bench.CachedEmbedding(inner, tmp_path / "cache.sqlite3")
    first = cached.get_text_embedding_batch(["a b", "c d"])
    again = bench.CachedEmbedding(inner, tmp_path / "cache.sqlite3").get_text_embedding_batch(
        ["c d", "a b", "e"]
    )
    assert inner.calls == 3
    assert np.allclose(again[:2], first[::-1], atol=1e-6)


@pytest.mark.parametrize("target", [700, 1000])
def test_derived_store_copies_chunks_with_distinct_ids_and_unit_vectors(tmp_path: Path, target: int):
    settings = Settings(_env_file=None, data_dir=tmp_path / "d", embedder="hash")
    config = bench.BenchConfig(work=tmp_path / "w", chunks=300)
    base = bench.base_store(settings, hash_embedder(), config)
    base_rows = bench.open_store(base).client.count()
    derived = bench.derived_store(base, target, config)
    got = bench.open_store(derived).client.get(include=["embeddings", "metadatas"])
    assert len(got["ids"]) == len(set(got["ids"])) == target > base_rows
    assert np.allclose(np.linalg.norm(np.asarray(got["embeddings"]), axis=1), 1.0, atol=1e-4)
    assert len({m["doc_id"] for m in got["metadatas"]}) > len(
        {m["doc_id"].split("#")[0] for m in got["metadatas"]}
    )
    # LlamaIndex (and so BM25) rebuilds nodes from their metadata: the ids must be the copies'.
    nodes = bench.open_store(derived).get_nodes(got["ids"][-5:])
    assert sorted(n.node_id for n in nodes) == sorted(got["ids"][-5:])


def test_a_failed_load_run_finds_the_first_server_traceback_with_its_chained_cause():
    from bench.load_api import first_traceback

    log = "\n".join([
        "INFO:     127.0.0.1:5000 - \"POST /v1/ask HTTP/1.1\" 200 OK",
        "ERROR rag.api unhandled error on /v1/ask",
        "Traceback (most recent call last):",
        '  File "rag/embed_onnx.py", line 230, in _embed',
        "    hidden = self._session.run(None, batch)",
        "ValueError: setting an array element with a sequence.",
        "",
        "The above exception was the direct cause of the following exception:",
        "",
        "Traceback (most recent call last):",
        '  File "api/routes/answers.py", line 25, in ask',
        "RuntimeError: embedding failed",
        "INFO:     127.0.0.1:5001 - \"POST /v1/ask HTTP/1.1\" 500 Internal Server Error",
        "Traceback (most recent call last):",
        "KeyError: 'later'",
    ])  # fmt: skip
    found = first_traceback(log)
    assert found.splitlines()[0] == "ERROR rag.api unhandled error on /v1/ask"
    assert "ValueError: setting an array element" in found and found.endswith(
        "RuntimeError: embedding failed"
    )
    assert "later" not in found
    assert first_traceback("INFO: all fine\n") is None
