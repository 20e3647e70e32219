"""Write an evaluation's results: results.json (everything) and report.md (the summary table)."""

from __future__ import annotations

import json
from pathlib import Path


def summary_table(results: dict) -> str:
    """Markdown table: one row per metric, one column per mode, `mean [low, high]`."""
    modes = list(results["modes"])
    metrics: list[str] = []
    for mode in modes:
        metrics += [m for m, v in results["modes"][mode].items() if "mean" in v and m not in metrics]
    lines = ["| metric | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for metric in metrics:
        cells = []
        for mode in modes:
            v = results["modes"][mode].get(metric)
            cells.append(f"{v['mean']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}] (n={v['n']})" if v else "")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    for mode in modes:
        latency = results["modes"][mode].get("latency_ms")
        if latency:
            lines.append(f"\nAnswer latency ({mode}): p50 {latency['p50']} ms, p95 {latency['p95']} ms")
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    meta = results.get("meta", {})
    header = "\n".join(f"- {key}: {value}" for key, value in meta.items())
    (out / "report.md").write_text(f"# Evaluation\n\n{header}\n\n{summary_table(results)}\n")
