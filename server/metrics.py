"""`/metrics`: Prometheus metrics, kept in a registry of the server's own (prometheus-client). HTTP requests
and generations are observed as they happen; the scheduler's and the registry client's state is read at
each scrape. Every metric is listed in the README."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from engine.scheduler import Scheduler
from registry.transfers import TRANSFERS, TransferTotals
from server.observe import RequestRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "unmatched"  # requests for paths no route has: one label, whatever the path
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120)
RATE_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 1000)


class EngineCollector(Collector):
    """Loaded models, runners and the queue from the scheduler; pull/push bytes from the registry client."""

    def __init__(self, scheduler: Scheduler, transfers: TransferTotals) -> None:
        self.scheduler = scheduler
        self.transfers = transfers

    def collect(self) -> Iterator[Metric]:
        loaded = self.scheduler.loaded()
        yield GaugeMetricFamily("pollama_loaded_models", "Models loaded now", value=len(loaded))
        memory = GaugeMetricFamily("pollama_model_memory_bytes", "Memory a loaded model takes, in system RAM "
                                   "and in GPU VRAM", labels=["model", "memory"])
        for model in loaded:
            memory.add_metric([model.spec.name, "ram"], model.memory.total - model.memory.vram)
            memory.add_metric([model.spec.name, "vram"], model.memory.vram)
        yield memory
        counters = self.scheduler.counters
        starts = CounterMetricFamily("pollama_runner_starts", "Runner processes started", labels=["model"])
        for name, count in sorted(counters.runner_starts.items()):
            starts.add_metric([name], count)
        yield starts
        crashes = CounterMetricFamily("pollama_runner_crashes", "Runner processes that exited unasked, while "
                                      "loading or after", labels=["model"])
        for name, count in sorted(counters.runner_crashes.items()):
            crashes.add_metric([name], count)
        yield crashes
        yield GaugeMetricFamily("pollama_queue_depth", "Requests waiting for a model to load or for a "
                                "free slot of a loaded one (bounded by OLLAMA_MAX_QUEUE)",
                                value=self.scheduler.queue_depth())
        yield CounterMetricFamily("pollama_queue_rejections", "Requests refused with 503 because the queue "
                                  "was full (OLLAMA_MAX_QUEUE)", value=counters.queue_rejections)
        yield CounterMetricFamily("pollama_pull_bytes", "Bytes received from registries by pulls",
                                  value=self.transfers.pulled)
        yield CounterMetricFamily("pollama_push_bytes", "Bytes sent to registries by pushes",
                                  value=self.transfers.pushed)


class Metrics:
    def __init__(self, scheduler: Scheduler, transfers: TransferTotals = TRANSFERS) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("pollama_http_requests", "HTTP requests answered, by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("pollama_http_request_duration_seconds", "Time to answer an HTTP request, "
                                 "to the last byte of a streamed answer", ["method", "route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.ttft = Histogram("pollama_time_to_first_token_seconds", "From a generation request's arrival to "
                              "its first token (a load and a wait in the queue included)", ["model"],
                              buckets=TTFT_BUCKETS, registry=self.registry)
        self.decode_rate = Histogram("pollama_decode_tokens_per_second", "Tokens generated per second of "
                                     "decoding, one sample per generation", ["model"], buckets=RATE_BUCKETS,
                                     registry=self.registry)
        self.prompt_tokens = Counter("pollama_prompt_tokens", "Prompt tokens evaluated (generations, "
                                     "embeddings and reranking)", ["model"], registry=self.registry)
        self.generated_tokens = Counter("pollama_generated_tokens", "Tokens generated", ["model"],
                                        registry=self.registry)
        self.registry.register(EngineCollector(scheduler, transfers))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # server.observe's observers

    def request_done(self, record: RequestRecord) -> None:
        route = record.route or UNMATCHED
        self.requests.labels(record.method, route, str(record.status)).inc()
        self.latency.labels(record.method, route).observe(record.duration)

    def first_token(self, model: str, seconds: float) -> None:
        self.ttft.labels(model).observe(seconds)

    def finished(self, model: str, final: dict[str, Any]) -> None:
        prompt, generated = final.get("prompt_eval_count") or 0, final.get("eval_count") or 0
        if prompt:
            self.prompt_tokens.labels(model).inc(prompt)
        if generated:
            self.generated_tokens.labels(model).inc(generated)
            decode_ns = final.get("eval_duration") or 0
            if decode_ns > 0:
                self.decode_rate.labels(model).observe(generated / (decode_ns / 1e9))
