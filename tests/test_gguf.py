"""Joining a model that ships in parts: checksum verified, never a partial file in place."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rag.gguf import join_parts, model_path


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
