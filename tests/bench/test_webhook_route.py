"""bench.webhook_route, once at a tiny size on SQLite: the served app's receiving route answers
every signed webhook below 300 and records each one in webhook_events, and the follow-up syncs
reach the sandbox (so the benchmark keeps measuring what it says)."""

from __future__ import annotations

from bench.webhook_route import measure


def test_every_webhook_through_the_served_route_is_answered_recorded_and_followed() -> None:
    result = measure(db="sqlite", clients=2, seconds=1.5, connections=2)
    assert result.accounts == 4  # two Schwab connections of two accounts each
    assert result.health.requests > 0
    assert result.health.errors == 0, result.health.statuses
    assert result.webhooks.requests > 0
    assert result.webhooks.errors == 0, result.webhooks.statuses
    assert result.settled, result.events
    assert result.rows == result.webhooks.requests, result.events
    assert set(result.events) <= {"handled", "failed"}, result.events
    assert result.syncs >= 1
    assert result.ok
