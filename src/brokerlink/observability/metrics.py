"""The Prometheus metrics every process records, and the functions that record them.

    provider_call(record)                  a finished provider call (the pipeline's sink)
    sync_finished(provider, result)        a connection's sync ended ("ok" or "failed")
    webhook_event(provider, type, result)  a webhook was received and recorded
    call_log_dropped()                     a call log row the full buffer could not keep

With `PROMETHEUS_MULTIPROC_DIR` set (before the process starts: prometheus-client reads it when
it is imported), every process writes its own files there and one scrape of any web process sums
them all (`collect`): uvicorn/gunicorn web workers and Celery workers each count their own calls,
and a per-process endpoint would show a scraper whichever process the load balancer picked.
Without it the figures are this process's own. Gauges read from the store and Redis are not
kept here: the scrape computes them (`observability.scrape`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.registry import Collector

from brokerlink.providers.observe import CallRecord

__all__ = [
    "REGISTRY",
    "CallMetrics",
    "call_log_dropped",
    "collect_into",
    "mark_process_dead",
    "multiprocess_dir",
    "provider_call",
    "sync_finished",
    "webhook_event",
]

# This process's metrics, apart from prometheus-client's default registry (and its process and
# platform collectors, which are meaningless summed across processes).
REGISTRY = CollectorRegistry(auto_describe=True)

# Latency buckets in seconds: provider calls take from tens of milliseconds to a timeout (30 s).
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

PROVIDER_CALLS = Counter(
    "brokerlink_provider_calls",
    "Provider calls, each with all its attempts, by how they ended.",
    ("provider", "operation", "result"),
    registry=REGISTRY,
)
PROVIDER_CALL_SECONDS = Histogram(
    "brokerlink_provider_call_seconds",
    "Provider call latency, from the first attempt to the outcome.",
    ("provider", "operation", "result"),
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "brokerlink_provider_rate_limited",
    "HTTP 429 answers received from providers (every attempt).",
    ("provider", "operation"),
    registry=REGISTRY,
)
REFRESH_COST = Counter(
    "brokerlink_refresh_cost_usd",
    "USD of billed calls the provider accepted, at the configured prices.",
    ("provider",),
    registry=REGISTRY,
)
SYNCS = Counter(
    "brokerlink_syncs",
    "Connection syncs, by how they ended.",
    ("provider", "result"),
    registry=REGISTRY,
)
WEBHOOK_EVENTS = Counter(
    "brokerlink_webhook_events",
    "Provider webhooks received, by event type and result.",
    ("provider", "type", "result"),
    registry=REGISTRY,
)
CALL_LOG_DROPPED = Counter(
    "brokerlink_call_log_dropped",
    "Provider call log rows dropped because the write buffer was full.",
    registry=REGISTRY,
)


def provider_call(record: CallRecord) -> None:
    labels = (record.provider, record.operation, record.result)
    PROVIDER_CALLS.labels(*labels).inc()
    PROVIDER_CALL_SECONDS.labels(*labels).observe(record.latency_ms / 1000)
    if record.throttled:
        RATE_LIMITED.labels(record.provider, record.operation).inc(record.throttled)
    if record.ok and record.cost is not None and record.cost.amount:
        REFRESH_COST.labels(record.provider).inc(float(record.cost.amount))


class CallMetrics:
    """The pipeline's sink that counts each call (`providers.observe.CallSink`)."""

    def observe(self, record: CallRecord) -> None:
        provider_call(record)


def sync_finished(provider: str, result: str) -> None:
    SYNCS.labels(provider, result).inc()


def webhook_event(provider: str, type: str, result: str) -> None:  # noqa: A002 - the label
    """Count one webhook: `type` as the webhook events table names it (SnapTrade's `eventType`,
    Plaid's `webhook_type:webhook_code`; `other` for a type this product does not know, so the
    label stays bounded), `result` `accepted|handled|ignored|failed|refused:<code>`."""
    WEBHOOK_EVENTS.labels(provider, type, result).inc()


def call_log_dropped(count: int = 1) -> None:
    CALL_LOG_DROPPED.inc(count)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def collect_into(registry: CollectorRegistry, extra: Iterable[Collector] = ()) -> None:
    """Register, for one scrape: every process's files in multiprocess mode (else this
    process's metrics), and `extra` collectors."""
    path = multiprocess_dir()
    if path is not None:
        _multiprocess.MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
    else:
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)


class _Forward(Collector):
    """This process's registry as one collector of a scrape's registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self._source = source

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        return self._source.collect()


def mark_process_dead(pid: int | None = None) -> None:
    """At a process's exit in multiprocess mode: its live gauges stop counting (its counters
    and histograms stay in the sums, as Prometheus expects of counters)."""
    path = multiprocess_dir()
    if path is not None:
        _multiprocess.mark_process_dead(os.getpid() if pid is None else pid, path)  # type: ignore[no-untyped-call]
