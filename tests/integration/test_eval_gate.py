"""`make eval`'s gate on the real embedder: the committed baseline holds for the current code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sample_gold_set_does_not_regress_against_its_baseline(tmp_path: Path):
    command = [
        "eval", str(REPO / "eval" / "cases" / "sample.jsonl"), "--llm", "extractive", "--mode", "all",
        "--compare", str(REPO / "eval" / "baselines" / "sample.json"), "--out", str(tmp_path / "run"),
    ]  # fmt: skip
    env = {**os.environ, "RAG_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "app.cli", *command], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "REGRESSION" not in out.stdout
    compared = out.stdout.split("compared with")[1].strip().splitlines()[1:]
    assert len(compared) >= 3 * 6, "every retrieval metric of every mode was compared"
