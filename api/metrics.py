"""Prometheus metrics of one app: its own registry, so two apps in a process never mix counts.

With `rag serve --workers N`, each worker counts its own requests; a scrape sees one worker.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from rag.records import Answer
from rag.usage import KINDS, UsageLog

_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class UsageCollector(Collector):
    """`rag_usage_total{key,collection,kind}`, read from the usage log at each scrape: the API's and
    the UI's counts, every worker's, since the log began (a counter that survives restarts)."""

    def __init__(self, log: UsageLog) -> None:
        self.log = log

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "rag_usage", "Requests, answers, refusals and documents changed, per key name and collection",
            labels=["key", "collection", "kind"],
        )  # fmt: skip
        for row in self.log.rows():
            for kind in KINDS:
                if count := getattr(row, kind):
                    family.add_metric([row.key, row.collection, kind], count)
        yield family


class Metrics:
    def __init__(self, usage: UsageLog) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(UsageCollector(usage))
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
