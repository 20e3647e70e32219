"""Embedding backends (`RAG_EMBED_BACKEND`) on a tiny random BERT saved as a sentence-transformers
folder: the real export, quantisation, onnxruntime session and caching, in seconds. The real
MiniLM is checked in tests/integration/test_embed_backends_real.py."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import rag.embed_onnx as emb
from rag.embed_onnx import onnx_model_path
from rag.embeddings import BACKENDS, build_embedder, default_model_dir
from rag.settings import Settings

TEXTS = [
    "The oil crisis began in October 1973.",
    "Huguenots were French Protestants who followed the teachings of John Calvin. " * 8,  # > 64 pieces
    "x",
    "Harvard is a private research university in Cambridge, Massachusetts.",
]


def _tiny_model(folder: Path, pooling: str = "pooling_mode_mean_tokens") -> Path:
    """A 2-layer BERT with random weights and MiniLM's tokenizer, as a sentence-transformers folder."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=30522
    )
    BertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(default_model_dir() / name, folder / name)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    (folder / "1_Pooling").mkdir()
    modes = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
    pooling_config = {"word_embedding_dimension": 32} | {f"pooling_mode_{m}": False for m in modes}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling_config | {pooling: True}))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return _tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """One data dir for the module: the tiny model is exported once and reused."""
    return tmp_path_factory.mktemp("data")


def _build(tiny: Path, data_dir: Path, backend: str):
    return build_embedder(
        Settings(_env_file=None, embed_model=str(tiny), embed_backend=backend, data_dir=data_dir)
    )


@pytest.fixture(scope="module")
def embedders(tiny: Path, data_dir: Path) -> dict:
    return {backend: _build(tiny, data_dir, backend) for backend in BACKENDS}


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1)


def test_backend_setting_defaults_to_onnx_int8_and_rejects_unknown_values():
    # The measured choice (bench/embed_backends.py): fastest with SQuAD hit@5 within 0.5 points.
    assert Settings(_env_file=None).embed_backend == "onnx-int8"
    with pytest.raises(ValidationError):
        Settings(_env_file=None, embed_backend="cuda")


def test_every_backend_the_setting_accepts_builds_a_working_embedder(embedders: dict):
    assert len(BACKENDS) > 1
    for backend in BACKENDS:
        vectors = embedders[backend].unit_vectors(TEXTS)
        assert vectors.shape == (len(TEXTS), 32), backend
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5), backend


@pytest.mark.parametrize("backend", ["onnx", "torch"])
def test_embedding_and_counting_from_8_threads_match_one_thread(embedders: dict, backend: str):
    # The server embeds queries from a thread pool while ingests count tokens: under load a shared
    # tokenizer re-configured by one call mid-way through another gave ragged batches.
    embedder = embedders[backend]
    batches = [TEXTS[i:] + TEXTS[:i] for i in range(len(TEXTS))] + [[t] for t in TEXTS]
    expected = [embedder.unit_vectors(b) for b in batches]
    counts = [embedder.count_tokens(t) for t in TEXTS]

    def work(n: int) -> bool:
        if n % 2:
            return [embedder.count_tokens(t) for t in TEXTS] == counts
        i = (n // 2) % len(batches)
        return np.abs(embedder.unit_vectors(batches[i]) - expected[i]).max() < 1e-5

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(400)))


def test_the_frozen_tokenizer_encodes_as_the_transformers_one(embedders: dict):
    from transformers import AutoTokenizer

    model = embedders["onnx"].model
    reference = AutoTokenizer.from_pretrained(str(default_model_dir()))
    expected = reference(
        TEXTS, padding=True, truncation=True, max_length=model.max_length, return_tensors="np"
    )
    got = model.encode(TEXTS)
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert np.array_equal(got[name], expected[name]), name


def test_each_backend_names_the_embedder_differently(embedders: dict):
    names = {backend: e.name for backend, e in embedders.items()}
    assert names == {
        "torch": "tiny-bert",  # unchanged: stores embedded before backends existed stay valid
        "torch-int8": "tiny-bert+torch-int8",
        "onnx": "tiny-bert+onnx",
        "onnx-int8": "tiny-bert+onnx-int8",
    }


def test_onnx_vectors_match_torch(embedders: dict):
    torch_vectors = embedders["torch"].unit_vectors(TEXTS)
    onnx_vectors = embedders["onnx"].unit_vectors(TEXTS)
    # fp32 all the way: only float summation order differs (measured 1 - 1e-7).
    assert _cosines(torch_vectors, onnx_vectors).min() > 0.9999
    assert np.abs(np.linalg.norm(onnx_vectors, axis=1) - 1).max() < 1e-5
    # Distinct texts stay distinct (a constant vector would pass the check above only by luck).
    assert _cosines(onnx_vectors[:1], onnx_vectors[3:]).max() < 0.999


def test_int8_vectors_stay_close_to_torch(embedders: dict):
    torch_vectors = embedders["torch"].unit_vectors(TEXTS)
    # Random weights quantise worse than trained ones; MiniLM's bounds are in the integration test.
    for backend in ("onnx-int8", "torch-int8"):
        assert _cosines(torch_vectors, embedders[backend].unit_vectors(TEXTS)).min() > 0.9, backend


def test_queries_embed_like_texts(embedders: dict):
    model = embedders["onnx"].model
    assert np.allclose(model.get_query_embedding(TEXTS[0]), model.get_text_embedding(TEXTS[0]), atol=1e-6)


def test_batch_equals_one_at_a_time(embedders: dict):
    model = embedders["onnx"].model
    batch = np.asarray(model.get_text_embedding_batch(TEXTS))
    single = np.asarray([model.get_text_embedding(t) for t in TEXTS])
    # Padding must not leak into the mean: the short texts are padded to the long one in the batch.
    assert np.abs(batch - single).max() < 1e-5


def test_token_window_matches_the_torch_embedder(embedders: dict):
    torch_e, onnx_e = embedders["torch"], embedders["onnx"]
    assert onnx_e.max_tokens == torch_e.max_tokens == 64
    for text in TEXTS:
        assert onnx_e.count_tokens(text) == torch_e.count_tokens(text)
        assert onnx_e.fits(text) == torch_e.fits(text)
    assert not onnx_e.fits(TEXTS[1])  # the long text is truncated, as sentence-transformers does


def test_mean_pooling_ignores_padding():
    hidden = np.array([[[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    pooled = emb._mean_pooled(hidden, np.array([[1, 1, 0]]))
    assert np.allclose(pooled, [[1.0, 0.0]])


def test_export_is_cached_and_a_corrupt_or_missing_one_is_rebuilt(tiny: Path, tmp_path: Path, monkeypatch):
    exports, quantisations = [], []
    export, quantize = emb._export_onnx, emb._quantize_int8
    monkeypatch.setattr(emb, "_export_onnx", lambda *a: (exports.append(a), export(*a))[1])
    monkeypatch.setattr(emb, "_quantize_int8", lambda *a: (quantisations.append(a), quantize(*a))[1])
    models = tmp_path / "models"

    path = onnx_model_path(tiny, models, int8=True)
    assert (len(exports), len(quantisations)) == (1, 1)
    assert path.name == "model-int8.onnx" and path.parent.parent == models
    fp32 = path.parent / "model.onnx"
    good = fp32.read_bytes()

    assert onnx_model_path(tiny, models, int8=True) == path
    assert onnx_model_path(tiny, models, int8=False) == fp32
    assert (len(exports), len(quantisations)) == (1, 1), "a verified export is reused"

    corrupt = bytearray(good)
    corrupt[len(corrupt) // 2] ^= 0xFF  # same size, one byte off: only the checksum can tell
    fp32.write_bytes(bytes(corrupt))
    assert onnx_model_path(tiny, models, int8=False) == fp32
    assert len(exports) == 2 and fp32.read_bytes() == good

    fp32.write_bytes(good[: len(good) // 3])  # truncated
    onnx_model_path(tiny, models, int8=False)
    assert len(exports) == 3

    path.unlink()  # missing
    onnx_model_path(tiny, models, int8=True)
    assert (len(exports), len(quantisations)) == (3, 2)

    (path.parent / "model.onnx.json").write_text("not json")  # unreadable record
    onnx_model_path(tiny, models, int8=False)
    assert len(exports) == 4
    assert not list(path.parent.glob("*.partial"))


def test_a_failed_export_leaves_nothing_in_place(tmp_path: Path):
    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half an export")
        raise RuntimeError("killed mid-export")

    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError):
        emb._cached(target, broken)
    assert list(tmp_path.iterdir()) == []


def test_new_weights_get_a_new_export(tiny: Path, tmp_path: Path):
    copy = shutil.copytree(tiny, tmp_path / "tiny-bert")
    first = onnx_model_path(copy, tmp_path / "models", int8=False)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes())  # rewritten: new mtime, as a reinstall would
    second = onnx_model_path(copy, tmp_path / "models", int8=False)
    assert first.parent != second.parent


def test_models_the_onnx_path_would_get_wrong_are_refused(tmp_path: Path):
    cls_pooled = _tiny_model(tmp_path / "cls-bert", pooling="pooling_mode_cls_token")
    with pytest.raises(ValueError, match="RAG_EMBED_BACKEND=torch"):
        build_embedder(
            Settings(_env_file=None, embed_model=str(cls_pooled), embed_backend="onnx", data_dir=tmp_path)
        )
    assert not (tmp_path / "models").exists(), "refused before exporting anything"


def test_switching_backend_re_embeds_the_store(make_ingestor, corpus: Path, embedders: dict):
    first = make_ingestor(embedder=embedders["torch"]).ingest([corpus])
    again = make_ingestor(embedder=embedders["torch"]).ingest([corpus])
    switched = make_ingestor(embedder=embedders["onnx-int8"]).ingest([corpus])
    assert first.chunks_embedded > 0 and again.chunks_embedded == 0
    assert switched.chunks_embedded == first.chunks_embedded
    assert switched.chunks_in_store == first.chunks_in_store, "old vectors removed, none mixed in"
