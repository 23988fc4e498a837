"""`GET /metrics` on the real app: 404 without the operator's bearer token (a web session
included), 200 and parseable with it; the stale-accounts gauge read from the store (SQLite and
PostgreSQL) and cached; the queue depth read from a real Redis."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from redis.asyncio import Redis

from brokerlink.api import AppState, create_app
from brokerlink.api.deps import SESSION_COOKIE
from brokerlink.auth import AuthService
from brokerlink.composition import Connectors
from brokerlink.domain.enums import Provider
from brokerlink.models import Account, Connection
from brokerlink.models.enums import AccountSyncStatus
from brokerlink.observability import MetricsEndpoint, webhook_event
from brokerlink.routing.coverage import CoverageRegistry, load_coverage
from brokerlink.routing.router import ProviderFlags
from brokerlink.sync import SyncEngine
from brokerlink.sync.tasks import BackgroundSyncs
from brokerlink.worker import QUEUE

TOKEN = "metrics-token-for-tests-0123456789"
pytestmark = pytest.mark.asyncio


class Ticks:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _families(text: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            found.setdefault(sample.name, {})[key] = sample.value
    return found


@pytest_asyncio.fixture
async def app_for(sessionmaker):
    built: list[BackgroundSyncs] = []

    def make(endpoint: MetricsEndpoint | None):
        syncs = BackgroundSyncs(SyncEngine(sessionmaker, {}))
        built.append(syncs)
        state = AppState(
            sessionmaker=sessionmaker,
            coverage=CoverageRegistry(load_coverage()),
            flags=ProviderFlags(),
            connectors=Connectors(),
            syncs=syncs,
        )
        return create_app(state, web=False, metrics=endpoint)

    yield make
    for syncs in built:
        await syncs.close()


def _get(app, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app.test", headers=headers
    )


async def _accounts(sessionmaker, statuses: dict[Provider, list[AccountSyncStatus]]) -> int:
    async with sessionmaker() as session:
        auth = AuthService(session)
        user = await auth.create_user("gauge@example.com", name="Gauge")
        for provider, wanted in statuses.items():
            connection = Connection(
                user_id=user.id,
                provider=provider,
                provider_connection_id=f"{provider.value}-conn",
                institution_slug="schwab",
                institution_name="Charles Schwab",
            )
            session.add(connection)
            await session.flush()
            for n, status in enumerate(wanted):
                session.add(
                    Account(
                        connection_id=connection.id,
                        provider_account_id=f"{provider.value}-{n}",
                        sync_status=status,
                    )
                )
        await session.commit()
        return user.id


class TestProtection:
    async def test_unset_token_is_404_even_with_a_bearer(self, app_for, sessionmaker):
        endpoint = MetricsEndpoint(token=None, reads=sessionmaker)
        for app in (app_for(None), app_for(endpoint)):
            async with _get(app, Authorization=f"Bearer {TOKEN}") as client:
                assert (await client.get("/metrics")).status_code == 404

    async def test_without_the_right_token_404_with_it_200_and_parseable(
        self, app_for, sessionmaker
    ):
        app = app_for(MetricsEndpoint(token=SecretStr(TOKEN), reads=sessionmaker))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            async with _get(app, **headers) as client:
                response = await client.get("/metrics")
                assert response.status_code == 404
                assert response.json()["error"]["code"] == "not_found"
        webhook_event("plaid", "HOLDINGS:DEFAULT_UPDATE", "accepted")
        async with _get(app, Authorization=f"Bearer {TOKEN}") as client:
            response = await client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        found = _families(response.text)
        labels = (
            ("provider", "plaid"),
            ("result", "accepted"),
            ("type", "HOLDINGS:DEFAULT_UPDATE"),
        )
        assert found["brokerlink_webhook_events_total"][labels] >= 1
        assert "brokerlink_stale_accounts" in found
        assert "brokerlink_queue_depth" not in found  # no queue configured

    async def test_a_web_session_is_not_enough(self, app_for, sessionmaker):
        async with sessionmaker() as session:
            auth = AuthService(session)
            user = await auth.create_user("admin@example.com", name="Admin")
            user.is_admin = True
            issued = await auth.issue(user.id, kind="session")
            await session.commit()
        app = app_for(MetricsEndpoint(token=SecretStr(TOKEN), reads=sessionmaker))
        async with _get(app) as client:
            client.cookies.set(SESSION_COOKIE, issued.token)
            assert (await client.get("/api/auth/me")).status_code == 200  # a working session
            assert (await client.get("/metrics")).status_code == 404


class TestGauges:
    async def test_stale_accounts_by_provider_and_status_cached_for_a_while(self, sessionmaker):
        await _accounts(
            sessionmaker,
            {
                Provider.SNAPTRADE: [
                    AccountSyncStatus.STALE,
                    AccountSyncStatus.STALE,
                    AccountSyncStatus.FRESH,
                ],
                Provider.PLAID: [AccountSyncStatus.BROKEN, AccountSyncStatus.PENDING],
            },
        )
        ticks = Ticks()
        endpoint = MetricsEndpoint(
            token=SecretStr(TOKEN), reads=sessionmaker, cache_seconds=5, clock=ticks
        )
        gauge = _families((await endpoint.render()).decode())["brokerlink_stale_accounts"]
        assert gauge == {
            (("provider", "plaid"), ("status", "broken")): 1,
            (("provider", "plaid"), ("status", "stale")): 0,
            (("provider", "snaptrade"), ("status", "broken")): 0,
            (("provider", "snaptrade"), ("status", "stale")): 2,
        }
        async with sessionmaker() as session:
            await session.execute(
                Account.__table__.update().values(sync_status=AccountSyncStatus.STALE)
            )
            await session.commit()
        ticks.now += 4.9  # within the cache: the same figures
        gauge = _families((await endpoint.render()).decode())["brokerlink_stale_accounts"]
        assert gauge[(("provider", "snaptrade"), ("status", "stale"))] == 2
        ticks.now += 0.2  # past it: read again
        gauge = _families((await endpoint.render()).decode())["brokerlink_stale_accounts"]
        assert gauge[(("provider", "snaptrade"), ("status", "stale"))] == 3
        assert gauge[(("provider", "plaid"), ("status", "stale"))] == 2
        assert gauge[(("provider", "plaid"), ("status", "broken"))] == 0

    async def test_queue_depth_is_the_length_of_the_celery_queue(self, sessionmaker, redis_url):
        redis = Redis.from_url(redis_url)
        try:
            await redis.rpush(QUEUE, "job-1", "job-2", "job-3")
            await redis.rpush("another.queue", "other")
            ticks = Ticks()
            endpoint = MetricsEndpoint(
                token=SecretStr(TOKEN),
                reads=sessionmaker,
                queue_url=redis_url,
                queue=QUEUE,
                clock=ticks,
            )
            depth = _families((await endpoint.render()).decode())["brokerlink_queue_depth"]
            assert depth == {(("queue", QUEUE),): 3}
            await redis.lpop(QUEUE)
            ticks.now += 10
            depth = _families((await endpoint.render()).decode())["brokerlink_queue_depth"]
            assert depth == {(("queue", QUEUE),): 2}
        finally:
            await redis.aclose()
