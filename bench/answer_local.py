"""The local model's speed and memory on the sample questions (issue 4).

Ingests the sample corpus, then answers each sample question with the `local` backend and
reports time to first token, generation tokens/s (llama.cpp's own token count) and the peak
RSS of the process (embedder + Chroma + llama.cpp). Writes bench/results/answer_local.json.

    .venv/bin/python bench/answer_local.py
"""

from __future__ import annotations

import json
import platform
import resource
import statistics
import tempfile
from pathlib import Path

from sample_questions import QUESTIONS as SAMPLE  # bench/ is on sys.path when run as a script

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = SAMPLE[:5]


class _Counting:
    """Counts what the backend streams: llama-cpp streams one token per piece."""

    def __init__(self, inner) -> None:
        self.inner, self.pieces = inner, 0
        self.backend, self.model, self.generative = inner.backend, inner.model, inner.generative

    def stream(self, messages, question, passages):
        for piece in self.inner.stream(messages, question, passages):
            self.pieces += 1
            yield piece


def main() -> None:
    from rag.offline import enforce_offline

    enforce_offline()
    from index.chunking import Chunker
    from index.sync import Ingestor
    from rag.answer import Answerer
    from rag.embeddings import build_embedder
    from rag.llm import build_llm
    from rag.retrieval import Retriever
    from rag.settings import Settings
    from rag.store import open_store
    from rag.support import SupportChecker

    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    settings = Settings(data_dir=work / "data", llm="local", _env_file=None)
    embedder = build_embedder(settings)
    store = open_store(settings)
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap, fits=embedder.fits)
    Ingestor(store, embedder, chunker, 25_000_000, work / "lock").ingest(
        [REPO / "index" / "samples" / "corpus"]
    )
    checker = SupportChecker(embedder, settings.support_threshold)
    llm = _Counting(build_llm(settings, checker))
    answerer = Answerer(Retriever(store, embedder, work / "bm25"), llm, checker, settings)
    answerer.ask("Which battery chemistries are mentioned?")  # warm-up, not a measured question

    rows = []
    for question in QUESTIONS:
        llm.pieces = 0
        answer = answerer.ask(question)
        t = answer.timings
        if "generate" not in t:
            rows.append({"question": question, "refused_by_retrieval": True})
            continue
        tokens = llm.pieces
        rows.append(
            {
                "question": question,
                "first_token_s": round(t["first_token"], 3),
                "generate_s": round(t["generate"], 3),
                "answer_tokens": tokens,
                "tokens_per_s": round(tokens / max(t["generate"] - t["first_token"], 1e-6), 1),
                "total_s": round(t["total"], 3),
                "refused": answer.refused,
                "supported": f"{sum(s.supported for s in answer.sentences)}/{len(answer.sentences)}",
            }
        )
    timed = [r for r in rows if "first_token_s" in r]
    out = {
        "what": "local backend (llama-cpp, 2 threads) on the sample questions, sample corpus",
        "model": llm.model,
        "first_token_s_median": round(statistics.median(r["first_token_s"] for r in timed), 3),
        "tokens_per_s_median": round(statistics.median(r["tokens_per_s"] for r in timed), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "questions": rows,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
    }
    (REPO / "bench" / "results" / "answer_local.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
