"""Prometheus metrics of one app: its own registry, so two apps in a process never mix counts.

With `rag serve --workers N`, each worker counts its own requests; a scrape sees one worker.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from rag.records import Answer

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_requests_total", "HTTP requests by route and status", ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.latency = Histogram(
            "rag_request_seconds", "HTTP request time by route (streams: until the last byte)",
            ["route"], buckets=_SECONDS, registry=self.registry,
        )  # fmt: skip
        self.stages = Histogram(
            "rag_stage_seconds", "Answer time per stage (embed, dense, bm25, fuse, generate, check...)",
            ["stage"], buckets=_SECONDS, registry=self.registry,
        )  # fmt: skip
        self.answers = Counter("rag_answers_total", "Answers given", registry=self.registry)
        self.refusals = Counter(
            "rag_refusals_total", "Answers refused (the documents don't hold it)", registry=self.registry
        )
        self.usage = Counter(
            "rag_usage_total",
            "Requests, answers, refusals and documents changed, per key name and collection",
            ["key", "collection", "kind"], registry=self.registry,
        )  # fmt: skip
        self.errors = Counter("rag_errors_total", "Errors by type", ["type"], registry=self.registry)
        self.generating = Gauge("rag_generations_active", "Answers generating", registry=self.registry)
        self.waiting = Gauge("rag_generations_waiting", "Questions in the queue", registry=self.registry)

    def observe(self, answer: Answer) -> None:
        self.answers.inc()
        if answer.refused:
            self.refusals.inc()
        for stage, seconds in answer.timings.items():
            self.stages.labels(stage).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
