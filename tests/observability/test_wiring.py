"""The composition root wires the call log and the metrics into every client and sync engine:
a call made through `open_services` is a provider_call_log row once the services close (the
buffer is flushed on shutdown), and each finished sync is counted."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from brokerlink.composition import embedded_sandboxes, open_services
from brokerlink.config import Settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain.enums import Provider
from brokerlink.models import ProviderCall
from brokerlink.observability import metrics
from brokerlink.sync.summary import ConnectionOutcome

pytestmark = pytest.mark.asyncio


def _syncs(provider: str, result: str) -> float:
    labels = {"provider": provider, "result": result}
    return metrics.REGISTRY.get_sample_value("brokerlink_syncs_total", labels) or 0.0


async def test_a_call_through_the_services_is_logged_by_shutdown(fresh_db_url):
    await migrate.upgrade_async(fresh_db_url)
    settings = Settings(database_url=fresh_db_url, call_log_flush_seconds=3600)
    async with embedded_sandboxes(plaid=False) as (snaptrade_url, _):
        async with open_services(settings, snaptrade_url=snaptrade_url) as services:
            assert services.clients.snaptrade is not None
            await services.clients.snaptrade.api_status()
            assert services.calls is not None
            assert len(services.calls) == 1  # not written yet: the flusher waits an hour
    engine = create_engine(fresh_db_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = (await session.scalars(select(ProviderCall))).all()
    finally:
        await engine.dispose()
    assert [(r.provider, r.operation, r.result) for r in rows] == [
        (Provider.SNAPTRADE, "ApiStatus_check", "ok")
    ]


async def test_every_sync_engine_of_the_services_counts_finished_syncs(fresh_db_url):
    await migrate.upgrade_async(fresh_db_url)
    seen: list[ConnectionOutcome] = []
    async with open_services(Settings(database_url=fresh_db_url)) as services:
        before = (_syncs("plaid", "failed"), _syncs("plaid", "ok"))
        failed = ConnectionOutcome(1, Provider.PLAID, False, "provider_unavailable")
        skipped = ConnectionOutcome(2, Provider.PLAID, True, "elsewhere", skipped=True)
        for outcome in (failed, skipped):
            assert services.sync.on_connection is not None
            services.sync.on_connection(outcome)
        engine = services.sync_engine(on_connection=seen.append)
        assert engine.on_connection is not None
        engine.on_connection(ConnectionOutcome(3, Provider.PLAID, True))
    assert (_syncs("plaid", "failed"), _syncs("plaid", "ok")) == (before[0] + 1, before[1] + 1)
    assert [o.connection_id for o in seen] == [3]
