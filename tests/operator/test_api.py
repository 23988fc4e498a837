"""`/api/operator/summary` and `/operator` through the app: admins see the figures; anyone else,
signed in or not, gets exactly what an unknown address gets."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest

from brokerlink.db import migrate
from brokerlink.domain.enums import Provider
from brokerlink.models import ConnectionStatus, User
from brokerlink.repositories import (
    CostLedgerRepository,
    ProviderCallLogRepository,
    WebhookEventRepository,
)
from tests.fixtures.api import assert_error
from tests.operator.rows import account, connection

pytestmark = pytest.mark.asyncio


@pytest.fixture
def db_url(db_backend: str, new_database: Callable[[str], str]) -> str:
    """A database per test: the app commits, and the figures count every user's rows."""
    url = new_database(db_backend)
    migrate.upgrade(url)
    return url


async def _admin(api):
    user = await api.user()
    async with api.state.sessionmaker() as session:
        row = await session.get(User, user.id)
        assert row is not None
        row.is_admin = True
        await session.commit()
    return user


async def _rows(api) -> int:
    now = api.clock.now
    async with api.state.sessionmaker() as session:
        calls = ProviderCallLogRepository.from_session(session)
        for n, result in enumerate(("ok", "ok", "ok", "provider_unavailable")):
            await calls.record(
                provider=Provider.SNAPTRADE,
                operation="AccountInformation_listUserAccounts",
                latency_ms=30,
                result=result,
                at=now - timedelta(minutes=5 + n),
            )
        await CostLedgerRepository.from_session(session).record(
            provider=Provider.PLAID,
            operation="/investments/refresh",
            amount=Decimal("0.12"),
            at=now - timedelta(minutes=1),
        )
        broken = await connection(
            session,
            Provider.PLAID,
            institution="Chase",
            status=ConnectionStatus.BROKEN,
            reason="ITEM_LOGIN_REQUIRED",
        )
        snap = await connection(session, Provider.SNAPTRADE)
        quiet = await account(session, snap, last_synced_at=now - timedelta(hours=37))
        await WebhookEventRepository.from_session(session).record(
            provider=Provider.PLAID,
            event_id="evt-1",
            event_type="ITEM:ERROR",
            event_at=now - timedelta(seconds=90),
            received_at=now - timedelta(seconds=60),
            connection_id=broken.id,
        )
        await session.commit()
    return quiet.id


class TestSummary:
    async def test_an_admin_gets_the_figures(self, api):
        quiet = await _rows(api)
        admin = await _admin(api)
        response = await admin.get("/api/operator/summary")
        assert response.status_code == 200, response.text
        body = response.json()
        rates = {(r["provider"], r["window"]): r for r in body["success_rates"]}
        assert rates["snaptrade", "1h"] == {
            "provider": "snaptrade",
            "window": "1h",
            "calls": 4,
            "ok": 3,
            "rate": 0.75,
        }
        assert len(body["refreshes"]) == 14
        assert body["refreshes"][-1]["cost"] == {"USD": "0.12000000"}
        assert [b["reason"] for b in body["broken_connections"]] == ["ITEM_LOGIN_REQUIRED"]
        assert body["recent_errors"][0]["error"] == "provider_unavailable"
        assert body["webhook_lag"] == [
            {"provider": "plaid", "events": 1, "p50_seconds": 30.0, "worst_seconds": 30.0}
        ]
        assert body["missing_webhooks"]["count"] == 1
        assert body["missing_webhooks"]["accounts"][0]["account_id"] == quiet

    async def test_a_signed_in_user_who_is_not_an_admin_gets_404(self, api):
        user = await api.user()
        unknown = await user.get("/api/operator/nothing-here")
        response = await user.get("/api/operator/summary")
        assert_error(response, 404, "not_found")
        assert response.json() == unknown.json()

    async def test_signed_out_gets_404_not_401(self, api):
        anonymous = api.client()
        assert_error(await anonymous.get("/api/operator/summary"), 404, "not_found")
        forged = api.client("blk_api_" + "x" * 43)
        assert_error(await forged.get("/api/operator/summary"), 404, "not_found")

    async def test_revoking_the_role_hides_it_again(self, api):
        admin = await _admin(api)
        assert (await admin.get("/api/operator/summary")).status_code == 200
        async with api.state.sessionmaker() as session:
            row = await session.get(User, admin.id)
            row.is_admin = False
            await session.commit()
        assert_error(await admin.get("/api/operator/summary"), 404, "not_found")

    async def test_documented_in_openapi_for_admins(self, api):
        spec = (await api.client().get("/openapi.json")).json()
        operation = spec["paths"]["/api/operator/summary"]["get"]
        assert set(operation["responses"]) == {"200", "404"}
        assert operation["security"] == [{"bearerAuth": []}, {"sessionCookie": []}]
        assert "OperatorSummary" in spec["components"]["schemas"]


class TestPage:
    async def test_an_admin_sees_the_charts_and_figures(self, api):
        await _rows(api)
        admin = await _admin(api)
        page = await admin.get("/operator")
        assert page.status_code == 200, page.text
        html = page.text
        assert "<h1>Operator</h1>" in html
        assert html.count('<svg class="chart columns"') == 4  # success, staleness, cost, lag
        assert "75.0%" in html
        assert "ITEM_LOGIN_REQUIRED" in html
        assert "No refreshes in the last 14 days." in html
        assert 'href="/operator"' in html  # the admin's nav link

    async def test_a_non_admin_gets_the_404_page_and_no_nav_link(self, api):
        user = await api.user()
        page = await user.get("/operator")
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert "There is no page at /operator" in page.text
        home = await user.get("/portfolio")
        assert 'href="/operator"' not in home.text

    async def test_signed_out_gets_the_404_page_not_the_login_page(self, api):
        page = await api.client().get("/operator")
        assert page.status_code == 404
        assert "There is no page at /operator" in page.text
