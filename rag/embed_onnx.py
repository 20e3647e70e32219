"""The `onnx` and `onnx-int8` backends (described in rag/embeddings.py): the ONNX export of the
packaged weights, its int8 quantisation, the sha256-checked cache of both in
`RAG_DATA_DIR/models/`, and the onnxruntime session that pools and normalises as
sentence-transformers does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import Field, PrivateAttr

from rag.embed_base import Embedder, frozen_tokenizer, token_counter
from rag.gguf import sha256_file

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
    _encoder: Any = PrivateAttr()  # a frozen copy: safe from every thread (see frozen_tokenizer)
    _inputs: list[str] = PrivateAttr()

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
        self._encoder = frozen_tokenizer(tokenizer, self.max_length, pad=True)

    @classmethod
    def class_name(cls) -> str:
        return "OnnxEmbedding"

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The model's inputs for `texts`: padded to the longest, truncated to the window."""
        encodings = self._encoder.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    def _embed(self, texts: list[str]) -> list[list[float]]:
        batch = self.encode(texts)
        hidden = self._session.run(None, {k: batch[k] for k in self._inputs})[0]
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
        model=model, name=name, max_tokens=model.max_length, count_tokens=token_counter(model._tokenizer)
    )
