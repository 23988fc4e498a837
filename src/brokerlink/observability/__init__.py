"""What brokerlink tells its operators: the provider call log and the Prometheus metrics.

    metrics     counters and histograms every process records (multiprocess-safe)
    calls       `CallRecorder`: one provider_call_log row per provider call, written in batches
    scrape      `GET /metrics`, for a bearer token only

The request pipeline reports each finished call to the sinks the composition root gives it
(`providers.observe.Observer`); `metrics.webhook_event(provider, type, result)` counts webhooks.
"""

from brokerlink.observability.calls import CallRecorder
from brokerlink.observability.metrics import CallMetrics, webhook_event
from brokerlink.observability.scrape import MetricsEndpoint, install_metrics

__all__ = ["CallMetrics", "CallRecorder", "MetricsEndpoint", "install_metrics", "webhook_event"]
