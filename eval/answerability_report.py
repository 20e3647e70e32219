"""What `rag eval --fit-answerability` writes (the fit itself: eval/answerability.py): the report
(results.json, curve.png, report.md), the model as diff-friendly JSON, and the fold models that
`rag eval --held-out` reads back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag.answerability import AnswerabilityModel


def write_report(report: dict, spec: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    kept = {k: v for k, v in report.items() if k != "folds"}  # fold models go to the data folder
    (out / "results.json").write_text(json.dumps({"model": spec, **kept}, indent=1))
    fig, ax = plt.subplots(figsize=(9, 4.5))
    names = [k for k in report["curve"][0] if k != "threshold"]
    for name in names:
        ax.plot(
            [p["threshold"] for p in report["curve"]],
            [p.get(name, np.nan) for p in report["curve"]],
            label=name,
        )
    ax.axvline(report["threshold"], color="grey", linestyle="--", label="operating point")
    ax.set_xlabel("answerability threshold (refuse below)")
    ax.set_ylabel("rate, held out by document")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "curve.png", dpi=100)
    plt.close(fig)
    lines = [
        "# Answerability model: held-out results",
        "",
        f"Chosen: **{report['chosen']}**, operating point **{report['threshold']}** "
        f"({spec['fitted']['operating_point']}). Held-out AUC: "
        + ", ".join(f"{k} {v['held_out_auc']}" for k, v in report["comparison"].items())
        + " (the mean over corpora; "
        + ", ".join(f"{c} {a}" for c, a in report["comparison"][report["chosen"]]["per_corpus"].items())
        + ").",
        "",
        "Every number below comes from a model fitted without the document the question was written "
        "against (leave-one-document-out; off-topic questions, about no document, group by their "
        "file).",
        "",
        "| corpus | metric | rate [95 % CI] | n |",
        "|---|---|---|---|",
    ]
    for corpus, block in report["held_out"].items():
        for metric, v in block.items():
            low, high = v["ci95"]
            lines.append(f"| {corpus} | {metric} | {v['rate']:.3f} [{low:.3f}, {high:.3f}] | {v['n']} |")
    lines += ["", "![curve](curve.png)", ""]
    if spec["kind"] == "logistic":
        lines += ["Weights (standardised features):", "", "| feature | coef |", "|---|---|"]
        lines += [f"| {f} | {c:+.3f} |" for f, c in zip(spec["features"], spec["coef"], strict=True)]
    else:
        lines += [
            f"{len(spec['trees'])} trees of depth <= 3 over {len(spec['features'])} features "
            "(rag/answerability_model.json)."
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def dump_model(spec: dict) -> str:
    """The model as JSON a person can read in a diff: one key per line, one tree per line."""
    lines = []
    for key, value in spec.items():
        if key == "trees":
            trees = ",\n  ".join(json.dumps(tree, separators=(",", ":")) for tree in value)
            lines.append(f'"trees": [\n  {trees}\n]')
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def save_folds(folds: dict[str, dict], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index = {}
    for i, (group, spec) in enumerate(sorted(folds.items())):
        (folder / f"fold-{i:02d}.json").write_text(json.dumps(spec))
        index[group] = f"fold-{i:02d}.json"
    (folder / "index.json").write_text(json.dumps(index, indent=1))


def load_folds(folder: Path) -> dict[str, AnswerabilityModel]:
    """The fold models `--fit-answerability` saved, by group."""
    index_path = folder / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(f"no fold models in {folder}: run `rag eval --fit-answerability` first")
    index = json.loads(index_path.read_text())
    return {group: AnswerabilityModel.load(folder / name) for group, name in index.items()}
