"""The extractive answer path of this checkout against another one, side by side, as a ratio.

    git worktree add /tmp/baseline <commit>
    .venv/bin/rag bench --chunks 10000 --parts extractive      # builds the 10k store once
    .venv/bin/python bench/answer_path_ab.py --baseline /tmp/baseline --rounds 5

Each round runs both checkouts one after the other, each in a fresh process on the same store
(`RAG_DATA_DIR/bench/base-10000/data`, collection `bench`) with the same 40 questions, after one
warm-up question; the order alternates between rounds so neither side always runs on a warmer
machine. Both use only what every version of the project has (Settings, the component builders,
`Answerer.ask`), so the baseline may be any commit since the API existed. The ratio is of the
medians over all rounds; per-round medians show the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs inside the checkout under test (PYTHONPATH points at it): prints per-question seconds.
_MEASURE = """
import json, sys, time
from pathlib import Path
from rag.offline import enforce_offline
enforce_offline()
from bench.run import questions
from app.components import build_answerer, build_retriever
from rag.embeddings import build_embedder
from app.components import load_settings
settings = load_settings(env_file=False, data_dir=Path(sys.argv[1]), collection="bench", llm="extractive")
retriever = build_retriever(settings, build_embedder(settings))
retriever.warm_up()
answerer = build_answerer(settings, retriever)
asked = questions(int(sys.argv[2]), seed=11)
answerer.ask(asked[0])
seconds = []
for q in asked:
    started = time.perf_counter()
    answerer.ask(q)
    seconds.append(time.perf_counter() - started)
print(json.dumps(seconds))
"""


def measure(checkout: Path, store: Path, n: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(store), str(n)],
        capture_output=True, text=True, env=env, cwd=checkout, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"answer_path_ab: measuring {checkout} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True, help="another checkout of the project (a git worktree)")
    parser.add_argument(
        "--store", help="data folder holding the bench store (default: RAG_DATA_DIR/bench/...)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "answer_path_10k.json"))
    args = parser.parse_args()
    store = Path(args.store or Path(os.environ.get("RAG_DATA_DIR", "data")) / "bench" / "base-10000" / "data")
    if not (store / "chroma").is_dir():
        raise SystemExit(
            f"answer_path_ab: no store in {store}: run `rag bench --chunks 10000 --parts extractive`"
        )
    sides = {"ours": REPO, "baseline": Path(args.baseline).resolve()}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    rounds = []
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        medians = {}
        for name in order:
            got = measure(sides[name], store, args.questions)
            seconds[name] += got
            medians[name] = round(statistics.median(got) * 1000, 1)
        rounds.append(medians)
        print(f"round {r + 1}: " + ", ".join(f"{k} p50 {v} ms" for k, v in medians.items()), file=sys.stderr)
    p50 = {name: statistics.median(values) * 1000 for name, values in seconds.items()}
    result = {
        "what": "extractive Answerer.ask p50, side by side",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": str(store),
        "questions_per_round": args.questions,
        "rounds": rounds,
        "baseline": str(sides["baseline"]),
        "baseline_commit": _commit(sides["baseline"]),
        "ours_commit": _commit(REPO),
        "p50_ms": {k: round(v, 1) for k, v in p50.items()},
        "ratio_ours_to_baseline": round(p50["ours"] / p50["baseline"], 3),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _commit(checkout: Path) -> str:
    out = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip()


if __name__ == "__main__":
    main()
