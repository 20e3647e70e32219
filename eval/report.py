"""Write an evaluation's results: results.json (everything, every Answer record), report.md and
report.html (summary table, plots, unanswered questions, documents never retrieved)."""

from __future__ import annotations

import json
from pathlib import Path

from eval.harness import RETRIEVAL_METRICS, metric_names, stat


def summary_table(results: dict) -> str:
    """Markdown table: one row per metric, one column per mode, `mean [low, high]`."""
    modes = list(results["modes"])
    metrics: list[str] = []
    for mode in modes:
        metrics += [m for m in metric_names(results["modes"][mode]) if m not in metrics]
    lines = ["| metric | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for metric in metrics:
        cells = []
        for mode in modes:
            v = stat(results["modes"][mode], metric)
            cells.append(f"{v.mean:.3f} [{v.low:.3f}, {v.high:.3f}] (n={v.n})" if v else "")
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _latency_table(results: dict) -> str:
    mode = next(iter(results["modes"]))
    latency = results["modes"][mode].get("latency_ms")
    if not latency:
        return ""
    rows = [f"| {stage} | {v['p50']} | {v['p95']} |" for stage, v in latency.items()]
    return "| stage | p50 ms | p95 ms |\n|---|---|---|\n" + "\n".join(rows)


def _plots(results: dict, out: Path) -> list[tuple[str, str]]:
    """PNG files (title, file name): metric bars with CIs, the refusal curve, latency histogram."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    made = []
    modes = [m for m in results["modes"] if stat(results["modes"][m], "hit@1")]
    if modes:
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / len(modes)
        for i, mode in enumerate(modes):
            values = [stat(results["modes"][mode], m) for m in RETRIEVAL_METRICS]
            means = [v.mean if v else 0 for v in values]
            errors = [
                [v.mean - v.low if v else 0 for v in values],
                [v.high - v.mean if v else 0 for v in values],
            ]
            ax.bar(
                [x + i * width for x in range(len(RETRIEVAL_METRICS))],
                means,
                width,
                yerr=errors,
                capsize=3,
                label=mode,
            )
        ax.set_xticks(
            [x + width * (len(modes) - 1) / 2 for x in range(len(RETRIEVAL_METRICS))], RETRIEVAL_METRICS
        )
        ax.set_ylim(0, 1)
        ax.set_title("Retrieval, mean with 95 % CI")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "retrieval.png", dpi=100)
        plt.close(fig)
        made.append(("Retrieval metrics per mode", "retrieval.png"))
    curve = results.get("calibration", {}).get("curve")
    if curve:
        fig, ax = plt.subplots(figsize=(8, 4))
        ax.plot(
            [p["threshold"] for p in curve],
            [p["refusal_rate"] for p in curve],
            label="refusal rate (unanswerable)",
        )
        ax.plot(
            [p["threshold"] for p in curve],
            [p["false_refusal_rate"] for p in curve],
            label="false refusals (answerable)",
        )
        used = next((c["record"]["settings"].get("answerability_threshold") for c in results["cases"]
                     if "record" in c), None)  # fmt: skip
        if used is not None:
            ax.axvline(used, color="grey", linestyle="--", label="threshold used")
        ax.set_xlabel("answerability threshold (refuse when P(answerable) is below)")
        ax.set_ylim(0, 1)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "refusal_curve.png", dpi=100)
        plt.close(fig)
        made.append(("Refusal and false refusal over the threshold", "refusal_curve.png"))
    totals = [c["record"]["timings"]["total"] * 1000 for c in results["cases"] if "record" in c]
    if totals:
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.hist(totals, bins=30)
        ax.set_xlabel("answer latency, ms")
        fig.tight_layout()
        fig.savefig(out / "latency.png", dpi=100)
        plt.close(fig)
        made.append(("Answer latency", "latency.png"))
    return made


def markdown(results: dict, plots: list[tuple[str, str]]) -> str:
    meta = results.get("meta", {})
    parts = [
        "# Evaluation",
        "\n".join(f"- {k}: {v}" for k, v in meta.items() if k != "settings"),
        summary_table(results),
    ]
    if latency := _latency_table(results):
        parts.append("## Latency per stage\n\n" + latency)
    parts += [f"## {title}\n\n![{title}]({name})" for title, name in plots]
    unanswered = [c for c in results["cases"] if c.get("answerable") and c.get("answer", {}).get("refused")]
    unsupported = [c for c in results["cases"] if c.get("answer", {}).get("support_rate", 1.0) < 1.0]
    if unanswered or unsupported:
        rows = [f"- refused: `{c['id']}` {c['question']}" for c in unanswered]
        rows += [
            f"- partly unsupported ({c['answer']['support_rate']:.0%}): `{c['id']}` {c['question']}"
            for c in unsupported
        ]
        parts.append("## Unanswered questions\n\n" + "\n".join(rows))
    never = results.get("never_retrieved", [])
    parts.append(
        "## Documents never retrieved\n\n" + ("\n".join(f"- {d}" for d in never) if never else "none")
    )
    return "\n\n".join(p for p in parts if p) + "\n"


def write(results: dict, out: Path) -> None:
    from markdown_it import MarkdownIt

    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    text = markdown(results, _plots(results, out))
    (out / "report.md").write_text(text)
    body = MarkdownIt("commonmark").enable("table").render(text)
    (out / "report.html").write_text(
        "<!doctype html><meta charset='utf-8'><title>Evaluation</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:auto}"
        "td,th{border:1px solid #ccc;padding:.2em .5em}table{border-collapse:collapse}</style>\n" + body
    )
