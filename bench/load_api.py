"""Loopback load on the HTTP API: start `rag serve` on the sample corpus, drive it, write JSON.

    .venv/bin/python bench/load_api.py --llm extractive --clients 20 --seconds 120 --mix ask=1
    .venv/bin/python bench/load_api.py --llm local --clients 4 --seconds 120 --mix ask=1
    .venv/bin/python bench/load_api.py --clients 20 --seconds 300 --mix ask=2,retrieve=2,upload=0.2

The server runs with the real MiniLM embedder and the default limits, except the per-client rate
limit (off: every client shares 127.0.0.1) and the queue (deep enough for every client).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.load import run
from bench.local_server import free_port, wait_until_up

REPO = Path(__file__).resolve().parent.parent


CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


def first_traceback(log: str) -> str | None:
    """The first traceback in a server log, with the line that announced it and any exceptions
    chained to it: what a failed run prints, so the failure explains itself."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call")), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines):
        line = lines[end]
        end += 1
        if line.startswith(("Traceback (most recent call", *CHAINED)):
            continue
        if line and not line[0].isspace():  # the exception line ends one traceback...
            rest = [later for later in lines[end:] if later.strip()]
            if not (rest and rest[0].startswith(CHAINED)):  # ...unless another is chained to it
                break
    return "\n".join(lines[max(0, start - 1) : end])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--llm", default="extractive", choices=["extractive", "local"])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--mix", default="ask=1", help="kind=weight,... of ask, retrieve, upload")
    parser.add_argument("--out", help="JSON file (default: bench/results/load_<llm>_<clients>.json)")
    args = parser.parse_args()
    mix = {k: float(v) for k, v in (part.split("=") for part in args.mix.split(","))}

    work = Path(tempfile.mkdtemp(prefix="rag-load-"))
    port = free_port()
    env = {**os.environ, "RAG_DATA_DIR": str(work / "data"), "RAG_LLM": args.llm,
           "RAG_RATE_LIMIT_PER_MINUTE": "0", "RAG_MAX_QUEUE": str(args.clients)}  # fmt: skip
    rag = [sys.executable, "-m", "app.cli"]
    subprocess.run([*rag, "ingest", str(REPO / "index" / "samples" / "corpus")], env=env, check=True,
                   capture_output=True)  # fmt: skip
    log = (work / "serve.log").open("w")
    server = subprocess.Popen(
        [*rag, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_until_up(f"{base}/readyz", server, 300, work / "serve.log")
        except RuntimeError as exc:
            raise SystemExit(str(exc)) from None
        httpx.post(f"{base}/v1/ask", json={"question": "warm up"}, timeout=120)
        print(f"load: {args.clients} clients, {args.seconds:g} s, mix {mix}, backend {args.llm}")
        result = run(base, args.clients, args.seconds, mix, server_pid=server.pid)
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()

    summary = result.summary() | {
        "backend": args.llm,
        "mix": mix,
        "server_metrics_errors": [
            line for line in metrics.splitlines() if line.startswith("rag_errors_total")
        ],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(args.out or REPO / "bench" / "results" / f"load_{args.llm}_{args.clients}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rss_series_mb"}, indent=2))
    print(f"wrote {out}")
    if summary["server_errors"]:
        traceback = first_traceback((work / "serve.log").read_text(errors="replace"))
        print(f"first server traceback ({work / 'serve.log'}):\n{traceback or '(none in the log)'}")
        raise SystemExit(f"{summary['server_errors']} server error(s) (5xx or failed connections)")


if __name__ == "__main__":
    main()
