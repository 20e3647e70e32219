"""Hybrid retrieval with the real MiniLM: it keeps what each retriever alone would miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.retrieval import Retriever

DOCS = {
    "parts.txt": "Maintenance log for the pumping station: order the replacement gasket XQ-4471 "
    "before the spring shutdown, and check the pressure valves.",
    # Near-identical part codes: to an embedding they look alike, to BM25 they are other tokens.
    "inventory.txt": "Spare parts: gasket XQ-4417, seal XR-4741, valve QX-7144, flange XQ-1447 in stock.",
    "catalog.txt": "Catalogue codes XA-4470, XQ-4472 and XK-4471B replace the discontinued gaskets.",
    "engine.txt": "The automobile's engine overheated on the motorway, so the driver stopped at once.",
    "weather.txt": "Rain is expected on the coast this weekend, with strong winds in the afternoon.",
    "cooking.txt": "Simmer the tomatoes slowly and add basil just before serving the sauce.",
    "finance.txt": "The quarterly report shows revenue grew while operating costs stayed flat.",
    "garden.txt": "Prune the roses in late winter and water the seedlings every morning.",
    "music.txt": "The orchestra rehearsed the symphony twice before the evening concert.",
    "travel.txt": "The train to the mountains leaves at dawn and arrives around noon.",
}


@pytest.fixture
def retriever(make_ingestor, minilm, tmp_path: Path) -> Retriever:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in DOCS.items():
        (folder / name).write_text(text)
    ingestor = make_ingestor(embedder=minilm)
    ingestor.ingest([folder])
    return Retriever(ingestor.store, minilm, tmp_path / "bm25")


def _docs(retriever: Retriever, query: str, mode: str, k: int = 2) -> list[str]:
    hits, _ = retriever.retrieve(query, mode, top_k=k)
    return [h.chunk.doc_id.split("/")[-1] for h in hits]


def test_rare_term_dense_misses_bm25_and_hybrid_find(retriever):
    query = "gasket XQ-4471"
    assert "parts.txt" not in _docs(retriever, query, "dense")
    assert _docs(retriever, query, "bm25")[0] == "parts.txt"
    assert "parts.txt" in _docs(retriever, query, "hybrid")


def test_paraphrase_bm25_misses_dense_and_hybrid_find(retriever):
    query = "my car's motor got too hot"
    assert "engine.txt" not in _docs(retriever, query, "bm25")
    assert _docs(retriever, query, "dense")[0] == "engine.txt"
    assert _docs(retriever, query, "hybrid")[0] == "engine.txt"


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> Path:
    """A real (randomly initialised, 2-layer) BERT cross-encoder saved locally: no download."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag.embeddings import default_model_dir

    folder = tmp_path_factory.mktemp("cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(default_model_dir()))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_rescores_a_larger_pool_down_to_top_k(retriever, tiny_cross_encoder):
    from rag.retrieval import RERANK_POOL, build_reranker

    pool, _ = retriever.retrieve("gasket XQ-4471", "hybrid", top_k=2 * RERANK_POOL)
    reranking = Retriever(
        retriever.store, retriever.embedder, retriever.bm25_dir, build_reranker(tiny_cross_encoder)
    )
    hits, timings = reranking.retrieve("gasket XQ-4471", "hybrid", top_k=2)
    assert "rerank" in timings
    assert len(hits) == 2
    assert all(h.rerank is not None for h in hits)
    assert [h.rerank for h in hits] == sorted((h.rerank for h in hits), reverse=True)
    assert {h.chunk.id for h in hits} <= {h.chunk.id for h in pool}
