"""The real pipeline: MiniLM from the installed package, on-disk Chroma, the sample corpus."""

from __future__ import annotations

from pathlib import Path

from conftest import store_rows

from index.chunking import Chunker
from index.clean import clean_text
from rag import records
from rag.retrieval import Retriever
from rag.settings import Settings


def test_sample_corpus_ingests_incrementally_and_answers_retrieval(make_ingestor, minilm, corpus: Path):
    ingestor = make_ingestor(embedder=minilm)
    first = ingestor.ingest([corpus])
    assert (first.count("added"), first.count("failed")) == (2, 0)
    assert ingestor.ingest([corpus]).chunks_embedded == 0

    edited = corpus / "000_6aae78438c92dd18.txt"
    edited.write_text(edited.read_text() + "\nA reply: refining capacity is being added in Odisha.\n")
    second = ingestor.ingest([corpus])
    assert {f.doc_id: f.status for f in second.files}["corpus/000_6aae78438c92dd18.txt"] == "updated"
    assert second.chunks_embedded == next(f.chunks for f in second.files if f.status == "updated")

    retriever = Retriever(ingestor.store, minilm, corpus.parent / "bm25")
    hits, _ = retriever.retrieve("What does the author say about refining capacity?", "hybrid", 3)
    assert "refining capacity" in hits[0].chunk.text
    assert hits[0].chunk.doc_id == "corpus/000_6aae78438c92dd18.txt"

    (corpus / "004_dd6e77b3f402edf5.txt").unlink()
    assert ingestor.ingest([corpus], prune=True).count("removed") == 1
    assert {m[records.DOC_ID] for _, _, m in store_rows(ingestor.store)} == {
        "corpus/000_6aae78438c92dd18.txt"
    }


def _hard_document() -> str:
    """Long text where MiniLM needs far more word pieces than tiktoken tokens (measured here:
    Russian 1.8x, Python code 1.35x), so 192-token chunks would overflow its 256-piece window."""
    paragraphs = []
    for i in range(80):
        paragraphs.append(
            f"Литий-ионные аккумуляторы партии {i} производятся на заводе номер {i % 13}, "
            f"и перерабатывающие мощности региона {i % 7} растут каждый год на {i % 9 + 2} процента. "
            f"def refine_{i}(capacity_gw: float) -> dict[str, float]: "
            f"return {{'gw_{i}': capacity_gw * {1 + i / 100:.2f}}}"
        )
    return "\n\n".join(paragraphs)


def test_no_chunk_is_truncated_by_the_embedder(minilm, corpus: Path):
    settings = Settings(_env_file=None)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, fits=minilm.fits)
    texts = [clean_text(p.read_text()).text for p in corpus.glob("*.txt")] + [_hard_document()]
    for text in texts:
        chunks = chunker.split(text)
        assert chunks
        for chunk in chunks:
            assert minilm.count_tokens(chunk.text) <= minilm.max_tokens == 256
            assert text[chunk.start : chunk.end] == chunk.text
    # The hard document only fits because the guard re-splits: without it, chunks overflow.
    unguarded = Chunker(settings.chunk_size, settings.chunk_overlap).split(_hard_document())
    assert max(minilm.count_tokens(c.text) for c in unguarded) > minilm.max_tokens
