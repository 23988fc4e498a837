"""The operator dashboard in real Chromium: an admin signs in, follows the Operator link and sees
the charts and figures (rows written as the pipeline, the sync and the webhook routes would,
beside a real Schwab connection); a signed-in non-admin and a signed-out visitor get the 404
page at /operator, and no Operator link.

Screenshots: test-artifacts/operator-*.png.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from playwright.async_api import Browser, expect

from brokerlink.auth import AuthService
from brokerlink.domain.enums import Provider
from brokerlink.models import ConnectionStatus, RefreshTrigger
from brokerlink.repositories import (
    ConnectionRepository,
    CostLedgerRepository,
    ProviderCallLogRepository,
    RefreshLogRepository,
    WebhookEventRepository,
)
from tests.web.browser import DESKTOP, PHONE, ConsoleWatch, shot, sign_in
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio

CSRF = {"X-Brokerlink-CSRF": "1"}
OTHER_EMAIL = "bob@example.com"
OTHER_PASSWORD = "another horse battery staple"


async def _make_admin(site: Site) -> None:
    async with site.state.sessionmaker() as session:
        user = await AuthService(session).users.get_by_email(site.email)
        assert user is not None
        user.is_admin = True
        await session.commit()


async def _operations(site: Site) -> None:
    """What a day of running writes: provider calls, refreshes and their cost, webhooks, a
    connection broken at the provider."""
    now = datetime.now(UTC)
    async with site.state.sessionmaker() as session:
        admin = await AuthService(session).users.get_by_email(site.email)
        assert admin is not None
        calls = ProviderCallLogRepository.from_session(session)
        results = [("ok", 3), ("provider_unavailable", 1)]
        n = 0
        for result, count in results:
            for _ in range(count):
                n += 1
                await calls.record(
                    provider=Provider.SNAPTRADE,
                    operation="AccountInformation_getAllAccountPositions",
                    institution="SCHWAB",
                    latency_ms=120,
                    result=result,
                    status_code=200 if result == "ok" else 502,
                    at=now - timedelta(minutes=n),
                )
        for hours, result in ((3, "ok"), (5, "rate_limited")):
            await calls.record(
                provider=Provider.PLAID,
                operation="/investments/holdings/get",
                institution="chase",
                latency_ms=300,
                result=result,
                at=now - timedelta(hours=hours),
            )
        connections = ConnectionRepository.from_session(session)
        broken = await connections.upsert(
            user_id=admin.id,
            provider=Provider.PLAID,
            provider_connection_id="item-broken-1",
            institution_name="Chase",
        )
        broken.status = ConnectionStatus.BROKEN
        broken.status_reason = "ITEM_LOGIN_REQUIRED: the user changed their password"
        log = RefreshLogRepository.from_session(session)
        ledger = CostLedgerRepository.from_session(session)
        for days, count in ((0, 2), (1, 1), (3, 4)):
            for k in range(count):
                at = now - timedelta(days=days, minutes=k + 1)
                await log.record(broken, trigger=RefreshTrigger.MANUAL, at=at)
                await ledger.record(
                    provider=Provider.PLAID,
                    operation="/investments/refresh",
                    amount=Decimal("0.12"),
                    user_id=admin.id,
                    at=at,
                )
        hooks = WebhookEventRepository.from_session(session)
        for k, lag in enumerate((4, 9, 40)):
            await hooks.record(
                provider=Provider.SNAPTRADE,
                event_id=f"wh-{k}",
                event_type="CONNECTION_UPDATED",
                event_at=now - timedelta(minutes=k + 1, seconds=lag),
                received_at=now - timedelta(minutes=k + 1),
            )
        await session.commit()


async def _other_user(site: Site) -> None:
    async with site.state.sessionmaker() as session:
        await AuthService(session).create_user(OTHER_EMAIL, password=OTHER_PASSWORD, name="Bob")
        await session.commit()


async def test_an_admin_sees_the_dashboard_and_others_get_404(site: Site, browser: Browser):
    async with httpx.AsyncClient(base_url=site.url, headers=CSRF, timeout=20) as api:
        signed_in = await api.post(
            "/api/auth/login", json={"email": site.email, "password": site.password}
        )
        assert signed_in.status_code == 200, signed_in.text
        await link_via_api(api, "schwab")
    await site.state.syncs.drain()
    await _make_admin(site)
    await _operations(site)
    await _other_user(site)

    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch = ConsoleWatch()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    await page.get_by_role("link", name="Operator").click()
    await page.wait_for_url(site.url + "/operator")
    await expect(page.get_by_role("heading", name="Operator", level=1)).to_be_visible()

    success = page.locator("#success")
    await expect(success.locator("svg.chart")).to_have_count(1)
    await expect(success.locator("svg.chart title").first).to_have_text("Success rate by provider")
    snap_hour = page.locator('#success-table tr[data-provider="snaptrade"][data-window="1h"]')
    await expect(snap_hour.locator(".rate")).to_have_text("75.0%")
    plaid_day = page.locator('#success-table tr[data-provider="plaid"][data-window="24h"]')
    await expect(plaid_day.locator(".rate")).to_have_text("50.0%")
    # The real Schwab accounts were synced moments ago: their staleness is drawn.
    await expect(page.locator("#staleness svg.chart")).to_have_count(1)
    await expect(page.locator('#staleness-table tr[data-provider="snaptrade"]')).to_be_visible()
    await expect(page.locator("#refreshes svg.chart")).to_have_count(2)
    await expect(page.locator("#refreshes")).to_contain_text("$0.24")
    await expect(page.locator("#webhooks svg.chart")).to_have_count(1)
    await expect(page.locator("#broken")).to_contain_text("ITEM_LOGIN_REQUIRED")
    await expect(page.locator("#errors")).to_contain_text("provider_unavailable")
    await expect(page.locator("#errors")).to_contain_text("rate_limited")
    # Synced a minute ago, no webhook yet: not silent for 36 hours.
    await expect(page.locator("#missing-webhooks")).to_contain_text(
        "Every account has had a holdings webhook or a sync in the last 36 hours."
    )
    await shot(page, "operator-01-dashboard")
    await page.set_viewport_size(PHONE)
    await shot(page, "operator-02-dashboard-phone")
    assert not watch.unexpected(), watch.unexpected()
    await context.close()

    other = await browser.new_context(viewport=DESKTOP)
    page = await other.new_page()
    watch = ConsoleWatch(expected=["404"])
    watch.watch(page)
    await sign_in(page, site.url, OTHER_EMAIL, OTHER_PASSWORD)
    await expect(page.get_by_role("link", name="Operator")).to_have_count(0)
    answer = await page.goto(site.url + "/operator")
    assert answer is not None
    assert answer.status == 404
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    await expect(page.locator(".error-text")).to_contain_text("There is no page at /operator")
    await shot(page, "operator-03-not-an-admin")
    await other.close()

    anonymous = await browser.new_context(viewport=DESKTOP)
    page = await anonymous.new_page()
    answer = await page.goto(site.url + "/operator")
    assert answer is not None
    assert answer.status == 404
    assert page.url == site.url + "/operator"  # not sent to the sign-in page
    await anonymous.close()
