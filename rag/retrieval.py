"""Hybrid retrieval: dense (Chroma) + BM25 over the same chunks, fused.

All three pieces are LlamaIndex's: the `VectorStoreIndex` retriever, `BM25Retriever`
(bm25s + PyStemmer) and `QueryFusionRetriever` (distribution-based score fusion, `dist`, by
default; reciprocal rank, `rrf`, as an option). The BM25 index is
persisted beside the store and rebuilt only when the store's chunk ids changed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from filelock import FileLock
from llama_index.core import VectorStoreIndex
from llama_index.core.llms.mock import MockLLM
from llama_index.core.retrievers import BaseRetriever, QueryFusionRetriever
from llama_index.core.retrievers.fusion_retriever import FUSION_MODES
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from llama_index.vector_stores.chroma import ChromaVectorStore

from rag import records
from rag.answerability import TermWeights
from rag.embeddings import Embedder, unit_rows
from rag.question import stem
from rag.records import Mode
from rag.store import readable_heads

# Each retriever offers this many candidates (at least) before fusion cuts to top_k: reciprocal
# rank fusion over two top-3 lists can only reorder six chunks.
CANDIDATES = 20
RERANK_POOL = 3  # a reranker re-scores this many times top_k hits
PAGE = 5_000  # chunks read from the store per call when (re)building BM25
# Dense under filters (see Retriever._dense): at most this many allowed chunks are scored exactly;
# more are searched WIDEN times as widely as their share needs, up to WIDE_MAX hits, before
# Chroma's own search over the allowed ids. (A second, wider try measured slower: when the first
# falls short, the neighbours lie outside the filter and the second falls short too.)
EXACT_MAX = 1_000
WIDEN = 2.0
WIDE_MAX = 200

# How hybrid fuses: `dist` normalises each retriever's scores by their distribution (mean +- 3
# std) and sums them; `rrf` adds reciprocal ranks. On 1,000 SQuAD questions dist measured
# hit@1 0.796 / hit@5 0.951 / MRR 0.864 against rrf's 0.737 / 0.935 / 0.824.
Fusion = Literal["dist", "rrf"]
FUSIONS = {"dist": FUSION_MODES.DIST_BASED_SCORE, "rrf": FUSION_MODES.RECIPROCAL_RANK}


@dataclass(frozen=True)
class Hit:
    chunk: records.StoredChunk
    score: float  # the score the mode ranks by: fused (dist or rrf) for hybrid, else the retriever's own
    dense: float | None  # cosine similarity (-1..1), when dense retrieval returned this chunk
    bm25: float | None  # BM25 score, when BM25 returned this chunk
    rerank: float | None = None  # cross-encoder score, when a reranker is configured


def index_version(store: ChromaVectorStore) -> str:
    """A short hash of the collection's chunk ids, `Retriever.version`: changes whenever an ingest
    changed anything. It reads every id, so `warm_up` computes it only when the store's change
    stamp moved."""
    ids = sorted(store.client.get(include=[])["ids"])
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]


def check_embedder(store: ChromaVectorStore, embedder: Embedder) -> None:
    """Refuse to compare query vectors with document vectors of another model or backend.

    One chunk is enough: an ingest re-embeds every chunk when the embedder changes.
    """
    got = store.client.get(limit=1, include=["metadatas"])
    stored = got["metadatas"][0].get(records.EMBEDDER) if got["metadatas"] else None
    if stored is not None and stored != embedder.name:
        raise records.EmbedderMismatch(
            f"the store's chunks were embedded by {stored!r} but queries would be embedded by "
            f"{embedder.name!r}: run `rag ingest` on the documents again (it re-embeds them), or set "
            "RAG_EMBED_BACKEND / RAG_EMBED_MODEL back to what built the store"
        )


@dataclass(frozen=True)
class _Rows:
    """Per BM25 row, what filters test: its document (as a code) and its pages (0 without)."""

    doc: np.ndarray
    codes: dict[str, int]  # doc id -> code
    first_page: np.ndarray
    last_page: np.ndarray
    node_ids: list[str]
    row_of: dict[str, int]  # node id -> row

    @classmethod
    def of(cls, corpus: list[dict]) -> _Rows:
        # A row's flat `doc_id` is LlamaIndex's ref doc id, which ingest sets to ours (index.sync).
        codes: dict[str, int] = {}
        doc = np.array([codes.setdefault(row[records.DOC_ID], len(codes)) for row in corpus], dtype=np.int64)
        first = np.array([row.get(records.PAGE) or 0 for row in corpus], dtype=np.int64)
        last = np.array([row.get(records.PAGE_END) or 0 for row in corpus], dtype=np.int64)
        node_ids = [row["node_id"] for row in corpus]
        return cls(doc, codes, first, last, node_ids, {node_id: i for i, node_id in enumerate(node_ids)})


@dataclass(frozen=True)
class _View:
    """What one retrieval reads of the index, swapped whole by `warm_up` so none sees it midway."""

    chunk_count: int  # the size of the BM25 index itself: no k derived from it can exceed what bm25s holds
    bm25: object  # a BM25Retriever, None when the store is empty
    heads: dict[str, dict]  # doc id -> head metadata of its readable version
    unreadable: bool  # the store also holds chunks of incomplete or superseded versions
    rows: _Rows | None
    term_weights: TermWeights

    @property
    def readable(self) -> set[str]:
        return {head[records.VERSION] for head in self.heads.values()}


@dataclass(frozen=True)
class _Restriction:
    """Filters resolved against one view into the chunks they allow: the same set for BM25 (a
    weight mask over its rows) and dense (those chunks' ids)."""

    mask: np.ndarray  # per BM25 row: allowed
    rows: _Rows

    @classmethod
    def of(cls, filters: records.Filters, view: _View) -> _Restriction | None:
        """None when the filters allow every chunk: nothing to restrict."""
        rows = view.rows
        assert rows is not None  # a view with documents has rows
        doc_ids = [d for d, head in view.heads.items() if filters.matches_document(head)]
        mask = np.isin(rows.doc, [rows.codes[d] for d in doc_ids if d in rows.codes])
        if filters.pages is not None:
            first, last = filters.pages
            mask &= (rows.first_page > 0) & (rows.first_page <= last) & (rows.last_page >= first)
        return None if mask.all() else cls(mask, rows)

    @cached_property
    def count(self) -> int:
        return int(self.mask.sum())

    @cached_property
    def ids(self) -> list[str]:
        """The allowed chunks' ids (built only for the searches that pass them to Chroma)."""
        return [self.rows.node_ids[i] for i in np.flatnonzero(self.mask)]

    def allows(self, node_id: str) -> bool:
        row = self.rows.row_of.get(node_id)
        return row is not None and bool(self.mask[row])

    @property
    def bm25_mask(self) -> _WeightMask:
        return _WeightMask(self.mask)


class _WeightMask:
    """The mask as LlamaIndex's BM25Retriever takes it without a copy through a Python list: it
    tests the mask's truth, then calls np.array on it (a 100k-row list cost ~10 ms a query)."""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def __bool__(self) -> bool:
        return True

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.mask.astype(dtype or np.float32)


class _Exact(BaseRetriever):
    """Dense retrieval over a few pre-selected chunks, their vectors read and scored exactly.

    Chroma's filtered search (a `where`, or its `ids`) measured about 60 ms at 100k chunks whatever
    the filter, ten times its plain search; reading a few hundred vectors costs a few ms.
    """

    def __init__(self, store: ChromaVectorStore, ids: list[str], top_k: int) -> None:
        super().__init__()
        self.store, self.ids, self.top_k = store, ids, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        got = self.store.client.get(ids=self.ids, include=["embeddings"])
        cosines = unit_rows(got["embeddings"]) @ unit_rows([query_bundle.embedding])[0]
        best = np.argsort(-cosines)[: self.top_k]
        nodes = {n.node_id: n for n in self.store.get_nodes([got["ids"][i] for i in best])}
        # The scale LlamaIndex reports for Chroma's cosine distance d, exp(-d) (see _cosine).
        return [NodeWithScore(node=nodes[got["ids"][i]], score=math.exp(float(cosines[i]) - 1.0))
                for i in best if got["ids"][i] in nodes]  # fmt: skip


class _Kept(BaseRetriever):
    """A wider search cut to the allowed chunks; when too few of them are among its hits (the
    question's neighbours lie outside the filter), the search over the allowed ids alone."""

    def __init__(
        self, wide: BaseRetriever, narrow: Callable[[], BaseRetriever], only: _Restriction, top_k: int
    ) -> None:
        super().__init__()
        self.wide, self.narrow, self.only, self.top_k = wide, narrow, only, top_k

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = [h for h in self.wide.retrieve(query_bundle) if self.only.allows(h.node.node_id)]
        return hits[: self.top_k] if len(hits) >= self.top_k else self.narrow().retrieve(query_bundle)


class _Recording(BaseRetriever):
    """Passes through to a retriever, keeping its scores and time, so fused hits can show both."""

    def __init__(
        self, inner: BaseRetriever, matches_only: bool = False, readable: set[str] | None = None
    ) -> None:
        super().__init__()
        self.inner = inner
        self.matches_only = matches_only
        self.readable = readable  # versions a reader may see; None: all (the BM25 index holds no other)
        self.scores: dict[str, float] = {}
        self.seconds = 0.0

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        started = time.perf_counter()
        hits = self.inner.retrieve(query_bundle)
        if self.matches_only:  # BM25 pads its top k with score-0 chunks that share no term
            hits = [h for h in hits if (h.score or 0.0) > 0.0]
        # A chunk deleted while Chroma answers comes back without its metadata (seen in the soak,
        # an upload replacing a document mid-query): it is no chunk any reader may see.
        hits = [h for h in hits if records.VERSION in h.node.metadata]
        if self.readable is not None:
            hits = [h for h in hits if h.node.metadata.get(records.VERSION) in self.readable]
        self.seconds = time.perf_counter() - started
        self.scores = {h.node.node_id: float(h.score or 0.0) for h in hits}
        return hits


def _term_weights(bm25) -> TermWeights:
    """Chunk frequency of every stem, read off the BM25 index's sparse matrix (one column per stem)."""
    if bm25 is None:
        return TermWeights({}, 0, stem)
    index = bm25.bm25
    frequencies = np.diff(np.asarray(index.scores["indptr"]))
    doc_freq = {token: int(frequencies[i]) for token, i in index.vocab_dict.items() if i < len(frequencies)}
    return TermWeights(doc_freq, int(index.scores["num_docs"]), stem)


def _bm25(nodes: list[TextNode], top_k: int):
    import Stemmer
    from llama_index.retrievers.bm25 import BM25Retriever

    return BM25Retriever.from_defaults(
        nodes=nodes, stemmer=Stemmer.Stemmer("english"), language="en", similarity_top_k=top_k
    )


class Retriever:
    """Retrieves from one collection; `warm_up()` loads or builds the BM25 index once.

    With a `reranker` (a LlamaIndex node postprocessor, e.g. `SentenceTransformerRerank`), the
    mode's top `RERANK_POOL x top_k` hits are re-scored by it and the best `top_k` kept.
    """

    def __init__(
        self,
        store: ChromaVectorStore,
        embedder: Embedder,
        bm25_dir: Path,
        reranker=None,
        fusion: Fusion = "dist",
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.bm25_dir = bm25_dir
        self.reranker = reranker
        self.fusion = FUSIONS[fusion]
        self.version = ""
        self._view = _View(0, None, {}, False, None, _term_weights(None))
        self._lock = threading.Lock()
        self._rerank_lock = threading.Lock()
        self._stamp: str | None = None  # the store's change stamp, read just before `version` was

    def warm_up(self) -> None:
        """Bring the BM25 index in step with the store: load it if current, else rebuild it.

        `retrieve` does this once; a long-lived process calls it after its own ingests and
        periodically, to see other processes'. While the store's change stamp is quiet and the
        one seen last, that is one small read; otherwise it reads every chunk id.
        Thread-safe: the new index is built aside and swapped in while queries go on.
        """
        stamp = self.store.state.quiet_stamp()  # before the chunks: a write after this moves it
        if stamp is not None and stamp == self._stamp:
            return
        self.store.refresh()  # another process wrote: the embedded client must see it
        version = index_version(self.store)
        with self._lock:  # stamp and version change together, so the stamp is never newer
            if version == self.version:
                self._stamp = stamp
                return
        heads = readable_heads(self.store)
        bm25 = self._load_or_build(version, {h[records.VERSION] for h in heads.values()}) if heads else None
        count = len(bm25.corpus) if bm25 else 0
        unreadable = self.store.client.count() > count
        rows = _Rows.of(bm25.corpus) if bm25 else None
        view = _View(count, bm25, heads, unreadable, rows, _term_weights(bm25))
        with self._lock:
            self.version, self._view, self._stamp = version, view, stamp

    @property
    def chunk_count(self) -> int:
        """Chunks a reader may see, of complete versions only."""
        return self._view.chunk_count

    def term_weights(self) -> TermWeights:
        """How specific each word is in this collection (document frequencies from the BM25 index)."""
        if not self.version:
            self.warm_up()
        return self._view.term_weights

    def _load_or_build(self, version: str, readable: set[str]):
        from llama_index.retrievers.bm25 import BM25Retriever

        self.bm25_dir.parent.mkdir(parents=True, exist_ok=True)
        # Several server workers share the persisted index: one builds it, the others load it.
        with FileLock(self.bm25_dir.with_name(self.bm25_dir.name + ".lock")):
            stamp = self.bm25_dir / "version.json"
            if stamp.exists() and json.loads(stamp.read_text()).get("version") == version:
                return BM25Retriever.from_persist_dir(str(self.bm25_dir), show_progress=False)
            # In pages: Chroma fails one get() of ~100k chunks ("too many SQL variables").
            ids = self.store.client.get(include=[])["ids"]
            nodes = [
                node
                for i in range(0, len(ids), PAGE)
                for node in self.store.get_nodes(ids[i : i + PAGE])
                if node.metadata.get(records.VERSION) in readable
            ]
            bm25 = _bm25(nodes, top_k=min(CANDIDATES, len(nodes)))
            # Write to a fresh folder and swap it in: a crash never leaves a half-written index current.
            tmp = self.bm25_dir.with_name(self.bm25_dir.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            bm25.persist(str(tmp), show_progress=False)
            (tmp / "version.json").write_text(json.dumps({"version": version, "chunks": len(nodes)}))
            shutil.rmtree(self.bm25_dir, ignore_errors=True)
            tmp.rename(self.bm25_dir)
            return bm25

    def retrieve(
        self, query: str, mode: Mode = "hybrid", top_k: int = 5, filters: records.Filters | None = None
    ) -> tuple[list[Hit], dict[str, float]]:
        """Top chunks for `query`, with per-stage timings in seconds (embed, dense, bm25, fuse),
        only from chunks that pass `filters` when given.

        Thread-safe and parallel: each call takes one consistent view of the index (`warm_up`
        swaps all of it at once) and sets its own top k and mask on a copy of the BM25 retriever.
        """
        if not self.version:
            self.warm_up()
        with self._lock:
            view = self._view
        return self._retrieve(view, query, mode, top_k, filters)

    def _retrieve(
        self, view: _View, query: str, mode: Mode, top_k: int, filters: records.Filters | None
    ) -> tuple[list[Hit], dict[str, float]]:
        timings: dict[str, float] = {}
        only = None
        if filters and view.chunk_count:
            started = time.perf_counter()
            only = _Restriction.of(filters, view)
            timings["filter"] = time.perf_counter() - started
        if view.chunk_count == 0 or (only is not None and not only.count):
            return [], timings
        final_k = min(top_k, view.chunk_count)
        k = min(top_k * RERANK_POOL, view.chunk_count) if self.reranker else final_k
        candidates = min(max(CANDIDATES, top_k), view.chunk_count)
        started = time.perf_counter()
        bundle = QueryBundle(query, embedding=self.embedder.model.get_query_embedding(query))
        timings["embed"] = time.perf_counter() - started

        # Chunks of versions a reader may not see are dropped after the search: ask for twice as
        # many while an ingest (or a crash) has left such chunks, each a near-copy of a visible one.
        dense_k = (k if mode == "dense" else candidates) * (2 if view.unreadable else 1)
        dense = _Recording(
            self._dense(only, dense_k), readable=view.readable if view.unreadable and not only else None
        )
        # A shallow copy shares the (read-only) bm25s index; only the top k and mask are this call's.
        bm25_k = copy.copy(view.bm25)
        bm25_k.similarity_top_k = k if mode == "bm25" else candidates
        bm25_k.corpus_weight_mask = only.bm25_mask if only else None
        bm25 = _Recording(bm25_k, matches_only=True)
        if mode == "hybrid":
            started = time.perf_counter()
            fusion = QueryFusionRetriever(
                [dense, bm25],
                llm=MockLLM(),  # never called with num_queries=1; keeps LlamaIndex off its global Settings
                mode=self.fusion,
                similarity_top_k=k,
                num_queries=1,
                use_async=False,
            )
            hits = fusion.retrieve(bundle)
            timings["dense"], timings["bm25"] = dense.seconds, bm25.seconds
            timings["fuse"] = time.perf_counter() - started - dense.seconds - bm25.seconds
        else:
            recording = dense if mode == "dense" else bm25
            hits = recording.retrieve(bundle)[:k]  # dense may have fetched extra (see dense_k)
            timings[mode] = recording.seconds
        self._fill_dense(hits, bundle.embedding, dense.scores)
        result = [self._hit(h, dense.scores, bm25.scores, mode) for h in hits]
        if self.reranker is not None:
            started = time.perf_counter()
            with self._rerank_lock:  # its top n is set per call, and its tokenizer is shared
                self.reranker.top_n = final_k
                reranked = self.reranker.postprocess_nodes(hits, query_bundle=bundle)
            by_id = {hit.chunk.id: hit for hit in result}
            result = [replace(by_id[n.node.node_id], rerank=float(n.score or 0.0)) for n in reranked]
            timings["rerank"] = time.perf_counter() - started
        return result, timings

    def _dense(self, only: _Restriction | None, top_k: int) -> BaseRetriever:
        """Dense retrieval, restricted by pre-selecting chunk ids (measured in `rag bench --parts
        filters`): exactly over a few; a wider search cut to the allowed when they are many."""
        index = VectorStoreIndex.from_vector_store(self.store, embed_model=self.embedder.model)
        if only is None:
            return index.as_retriever(similarity_top_k=top_k)
        if only.count <= EXACT_MAX:
            return _Exact(self.store, only.ids, top_k)

        def narrow() -> BaseRetriever:  # made only when used: the id list can be long
            return index.as_retriever(similarity_top_k=top_k, vector_store_kwargs={"ids": only.ids})

        wide_k = math.ceil(top_k * len(only.mask) / only.count * WIDEN)
        if wide_k > WIDE_MAX:
            return narrow()
        return _Kept(index.as_retriever(similarity_top_k=wide_k), narrow, only, top_k)

    def _fill_dense(self, hits: list[NodeWithScore], query: list[float], scores: dict[str, float]) -> None:
        """Give every hit its dense score, also those only BM25 found: refusal reads it."""
        missing = [h.node.node_id for h in hits if h.node.node_id not in scores]
        if not missing:
            return
        got = self.store.client.get(ids=missing, include=["embeddings"])
        cosines = unit_rows(got["embeddings"]) @ unit_rows([query])[0]
        for node_id, cosine in zip(got["ids"], cosines, strict=True):
            scores[node_id] = math.exp(float(cosine) - 1.0)  # the scale LlamaIndex reports (see _cosine)

    @staticmethod
    def _hit(hit: NodeWithScore, dense: dict[str, float], bm25: dict[str, float], mode: Mode) -> Hit:
        node = hit.node
        cosine = _cosine(dense[node.node_id]) if node.node_id in dense else None
        return Hit(
            chunk=records.StoredChunk.from_metadata(node.node_id, node.get_content(), node.metadata),
            score=cosine if mode == "dense" else float(hit.score or 0.0),
            dense=cosine,
            bm25=bm25.get(node.node_id),
        )


def _cosine(similarity: float) -> float:
    """LlamaIndex reports Chroma's cosine distance d as exp(-d); give back the cosine, 1 - d."""
    return 1.0 + math.log(similarity) if similarity > 0 else -1.0


def build_reranker(model_dir: Path | None):
    """A cross-encoder from a local folder, or None (the default: no reranker ships in a package)."""
    if model_dir is None:
        return None
    from llama_index.core.postprocessor import SentenceTransformerRerank

    if not (Path(model_dir) / "config.json").exists():
        raise FileNotFoundError(f"no cross-encoder model in {model_dir}")
    return SentenceTransformerRerank(model=str(model_dir), device="cpu", trust_remote_code=False)
