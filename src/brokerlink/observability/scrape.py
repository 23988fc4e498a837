"""`GET /metrics`: the Prometheus exposition, for an operator's bearer token only.

    install_metrics(app, endpoint)      the route; `endpoint` None or without a token: 404

A scrape answers every process's counters and histograms (`observability.metrics`), plus two
gauges computed here, each at most `cache_seconds` old so that frequent scrapes (or several
Prometheus servers) cost one query: accounts whose last sync failed, per provider and status
(`stale`, `broken`), from the store; and the jobs waiting in the Celery queue (Redis `LLEN`),
when a queue is configured.

The token is compared in constant time. Anything else (no token configured, no header, a wrong
token, a web session cookie) answers 404 as an unknown address would, so the route's existence
is not disclosed.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.domain.enums import Provider
from brokerlink.errors import NotFoundError
from brokerlink.models import Account, Connection
from brokerlink.models.enums import AccountSyncStatus
from brokerlink.observability import metrics

__all__ = ["MetricsEndpoint", "install_metrics", "queue_depth", "stale_accounts"]

_T = TypeVar("_T")
_STALE = (AccountSyncStatus.STALE, AccountSyncStatus.BROKEN)


async def stale_accounts(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> dict[tuple[str, str], int]:
    """(provider, status) -> accounts whose last sync failed; every provider and status named,
    zero included (manual accounts are never synced)."""
    counts = {(p.value, s.value): 0 for p in Provider if p is not Provider.MANUAL for s in _STALE}
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Connection.provider, Account.sync_status, func.count())
            .join(Connection, Account.connection_id == Connection.id)
            .where(Connection.provider != Provider.MANUAL, Account.sync_status.in_(_STALE))
            .group_by(Connection.provider, Account.sync_status)
        )
        for provider, status, count in rows.all():
            counts[(Provider(provider).value, AccountSyncStatus(status).value)] = int(count)
    return counts


async def queue_depth(queue_url: str, queue: str) -> int:
    """Jobs waiting in a Celery queue on Redis (the broker keeps each queue as a list)."""
    from redis.asyncio import Redis

    client = Redis.from_url(queue_url)
    try:
        return int(await client.llen(queue))
    finally:
        await client.aclose()


@dataclass
class _Cached:
    value: object = None
    at: float = float("-inf")


@dataclass
class MetricsEndpoint:
    """What `/metrics` needs: the token, where the gauges are read from, how long they last."""

    token: SecretStr | None
    reads: async_sessionmaker[AsyncSession]
    queue_url: str | None = None
    queue: str = "brokerlink.sync"
    cache_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[str, _Cached] = field(default_factory=dict)

    def allows(self, authorization: str | None) -> bool:
        if self.token is None or not authorization:
            return False
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return False
        return hmac.compare_digest(
            presented.strip().encode(), self.token.get_secret_value().encode()
        )

    async def _read(self, name: str, read: Callable[[], Awaitable[_T]]) -> _T:
        cached = self._cache.setdefault(name, _Cached())
        now = self.clock()
        if now - cached.at >= self.cache_seconds:
            cached.value, cached.at = await read(), now
        return cached.value  # type: ignore[return-value]

    async def gauges(self) -> list[Collector]:
        stale = await self._read("stale", lambda: stale_accounts(self.reads))
        found: list[Collector] = [_Gauges(_stale_family(stale))]
        if self.queue_url is not None:
            url = self.queue_url
            depth = await self._read("queue", lambda: queue_depth(url, self.queue))
            family = GaugeMetricFamily(
                "brokerlink_queue_depth", "Jobs waiting in the queue.", labels=["queue"]
            )
            family.add_metric([self.queue], depth)
            found.append(_Gauges(family))
        return found

    async def render(self) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        metrics.collect_into(registry, await self.gauges())
        return generate_latest(registry)


def _stale_family(counts: dict[tuple[str, str], int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(
        "brokerlink_stale_accounts",
        "Accounts whose last sync failed (stale: kept data; broken: needs the user to reconnect).",
        labels=["provider", "status"],
    )
    for (provider, status), count in sorted(counts.items()):
        family.add_metric([provider, status], count)
    return family


class _Gauges(Collector):
    def __init__(self, *families: GaugeMetricFamily) -> None:
        self._families = families

    def collect(self) -> Iterable[GaugeMetricFamily]:
        return self._families


def install_metrics(app: FastAPI) -> None:
    """`GET /metrics`, answering from `app.state.metrics` (a `MetricsEndpoint`, or absent)."""

    @app.get("/metrics", include_in_schema=False)
    async def metrics_route(request: Request) -> Response:
        endpoint: MetricsEndpoint | None = getattr(request.app.state, "metrics", None)
        if endpoint is None or not endpoint.allows(request.headers.get("authorization")):
            raise NotFoundError("Not found.")
        return Response(await endpoint.render(), media_type=CONTENT_TYPE_LATEST)
