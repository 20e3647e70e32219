"""Loopback load against a running `rag serve`: N clients in a loop for a while, then numbers.

Each client is a thread with its own connection, picking a request kind by weight (ask,
retrieve, upload) and a question from a list. Reported per kind: requests, requests/s,
latency p50/p95/p99, status codes; plus the server's RSS at start and end (all its processes)
when its pid is given.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from eval.metrics import nearest_rank

QUESTIONS = [
    "What does the author say about refining capacity?",
    "What upstream capabilities does the commenter say India must build?",
    "Which deal shows why India still needs China's expertise for batteries?",
    "What is the capital of Peru?",  # off-topic: exercises refusal
    "How do sodium-ion batteries compare with lithium-ion?",
]


@dataclass
class Sample:
    kind: str
    status: int  # 0: the request failed before an HTTP status (connection error, timeout)
    seconds: float


@dataclass
class LoadResult:
    clients: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    rss_start_mb: float | None = None
    rss_end_mb: float | None = None
    rss_series_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds in, MB)

    def summary(self) -> dict:
        out: dict = {"clients": self.clients, "seconds": round(self.seconds, 1), "kinds": {}}
        for kind in sorted({s.kind for s in self.samples}):
            mine = [s for s in self.samples if s.kind == kind]
            ok = sorted(s.seconds for s in mine if 200 <= s.status < 300)
            statuses: dict[str, int] = {}
            for s in mine:
                statuses[str(s.status)] = statuses.get(str(s.status), 0) + 1
            out["kinds"][kind] = {
                "requests": len(mine),
                "per_second": round(len(mine) / self.seconds, 2),
                **(percentiles(ok, ndigits=1) if ok else dict.fromkeys(("p50_ms", "p95_ms", "p99_ms"))),
                "statuses": statuses,
            }
        total = len(self.samples)
        out["requests"] = total
        out["per_second"] = round(total / self.seconds, 2)
        out["server_errors"] = sum(1 for s in self.samples if s.status >= 500 or s.status == 0)
        out["rss_start_mb"], out["rss_end_mb"] = self.rss_start_mb, self.rss_end_mb
        if self.rss_series_mb:
            # Flat means no growth once warm: compare the first sample after a fifth of the run
            # (caches and allocator pools filled) with the last.
            warm = next(mb for at, mb in self.rss_series_mb if at >= self.seconds / 5)
            out["rss_warm_mb"] = warm
            out["rss_growth_after_warm_pct"] = round(100 * (self.rss_series_mb[-1][1] - warm) / warm, 1)
            out["rss_series_mb"] = self.rss_series_mb
        return out


def percentiles(seconds: Sequence[float], ndigits: int = 2) -> dict[str, float]:
    """p50, p95 and p99 in milliseconds, by nearest rank (one method for every benchmark)."""
    return {f"p{p}_ms": round(nearest_rank(seconds, p) * 1000, ndigits) for p in (50, 95, 99)}


def memory_kb(pid: int) -> dict[str, int]:
    """A process's memory counters from /proc (VmRSS, VmHWM = peak RSS, ...), in kB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {line.split(":")[0]: int(line.split()[1]) for line in status.splitlines() if line.startswith("Vm")}


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (uvicorn workers), from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            total += memory_kb(current)["VmRSS"]
            pending += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except OSError:
            continue
    return round(total / 1024, 1)


def run(base_url: str, clients: int, seconds: float, mix: dict[str, float], api_key: str | None = None,
        server_pid: int | None = None, seed: int = 7) -> LoadResult:  # fmt: skip
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    result = LoadResult(clients=clients, seconds=seconds)
    result.rss_start_mb = rss_mb(server_pid) if server_pid else None
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    kinds, weights = list(mix), list(mix.values())

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as http:
            while time.monotonic() < deadline:
                kind = rng.choices(kinds, weights)[0]
                started = time.perf_counter()
                try:
                    status = _request(http, kind, rng, number).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    result.samples.append(Sample(kind, status, time.perf_counter() - started))

    def sample_memory() -> None:
        while time.monotonic() < deadline:
            result.rss_series_mb.append((round(time.monotonic() - started, 1), rss_mb(server_pid)))
            time.sleep(min(10.0, seconds / 20))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    if server_pid:
        threads.append(threading.Thread(target=sample_memory))
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - started
    result.rss_end_mb = rss_mb(server_pid) if server_pid else None
    if server_pid:
        result.rss_series_mb.append((round(result.seconds, 1), result.rss_end_mb))
    return result


def _request(http: httpx.Client, kind: str, rng: random.Random, number: int) -> httpx.Response:
    question = rng.choice(QUESTIONS)
    match kind:
        case "ask":
            return http.post("/v1/ask", json={"question": question})
        case "retrieve":
            return http.post("/v1/retrieve", json={"query": question})
        case "upload":
            # Each client rewrites its own small file: an update, so the store does not grow.
            text = f"Load note {number}: shipment {rng.randrange(10**6)} of cobalt left the port."
            return http.post(
                "/v1/documents", files=[("files", (f"load-{number}.txt", text.encode(), "text/plain"))]
            )
        case _:
            raise ValueError(f"unknown request kind {kind!r}")
