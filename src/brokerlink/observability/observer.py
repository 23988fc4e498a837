"""What the composition root hands every provider client and sync engine.

call_observer(settings, recorder)   the Observer: metrics, then the call log, priced
count_sync(outcome)                 a sync engine's `on_connection`: the syncs counter
"""

from __future__ import annotations

from brokerlink.config import Settings
from brokerlink.observability import metrics
from brokerlink.policies.cost_policy import CostPolicy
from brokerlink.providers.observe import CallSink, Observer
from brokerlink.sync.summary import ConnectionOutcome

__all__ = ["call_observer", "count_sync"]


def call_observer(settings: Settings, *sinks: CallSink) -> Observer:
    """What every client reports its calls to: the Prometheus counters, then `sinks` (the call
    log writer); billed calls priced as the cost policy prices them (the ledger's names)."""
    return Observer(
        sinks=(metrics.CallMetrics(), *sinks),
        prices=dict(CostPolicy.from_settings(settings).call_prices),
    )


def count_sync(outcome: ConnectionOutcome) -> None:
    """A connection's sync ended; one skipped (another process holds its lease) is not one."""
    if not outcome.skipped:
        metrics.sync_finished(outcome.provider.value, "ok" if outcome.ok else "failed")
