"""The connection flow's unhappy paths in real Chromium, each with a clear message and a retry:
the popup blocked, the flow cancelled in the provider's page, the window closed, the start
failing; and reconnecting a broken connection. Also signing in with the keyboard alone.

Screenshots: test-artifacts/connect-*.png, login-*.png.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, ViewportSize, expect
from sqlalchemy import update

from brokerlink.models import Connection, ConnectionStatus
from tests.web.browser import DESKTOP, PHONE, ConsoleWatch, shot, sign_in
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio

# The first window.open is refused, as a popup blocker would; later ones go through.
BLOCK_FIRST_POPUP = """
(() => {
  const open = window.open.bind(window);
  let refused = false;
  window.open = (...args) => {
    if (!refused) { refused = true; return null; }
    return open(...args);
  };
})();
"""


async def _page(
    browser: Browser, watch: ConsoleWatch, viewport: ViewportSize = DESKTOP
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=viewport)
    page = await context.new_page()
    watch.watch(page)
    return context, page


async def _approve_schwab(page: Page, trigger: str) -> None:
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name=trigger).click()
    popup = await opened.value
    await popup.get_by_role("button", name="Connect", exact=True).click()
    await expect(page.locator("#connected-title")).to_have_text(
        "Connected Charles Schwab through SnapTrade", timeout=30_000
    )


async def test_blocked_popup_says_so_and_retries(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context, page = await _page(browser, watch)
    await context.add_init_script(BLOCK_FIRST_POPUP)
    await sign_in(page, site.url, site.email, site.password)
    await page.goto(site.url + "/connect?q=schwab")
    await page.get_by_role("button", name="Connect Charles Schwab").click()
    problem = page.locator("[data-problem=blocked]")
    await expect(problem).to_contain_text("Your browser blocked the window")
    await expect(problem.get_by_role("button", name="Try again")).to_be_focused()
    await shot(page, "connect-popup-blocked")
    await _approve_schwab(page, "Try again")
    assert watch.unexpected() == []
    await context.close()


async def test_cancelled_in_the_portal_says_so_and_retries(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context, page = await _page(browser, watch)
    await sign_in(page, site.url, site.email, site.password)
    await page.goto(site.url + "/connect?q=schwab")
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Connect Charles Schwab").click()
    popup = await opened.value
    await popup.get_by_role("button", name="Cancel").click()
    problem = page.locator("[data-problem=cancelled]")
    await expect(problem).to_contain_text(
        "Connecting Charles Schwab was cancelled in SnapTrade. Nothing was connected."
    )
    await shot(page, "connect-cancelled")
    assert (await (await page.request.get(site.url + "/api/connections")).json()) == []
    await _approve_schwab(page, "Try again")
    assert watch.unexpected() == []
    await context.close()


async def test_closing_the_window_says_so(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context, page = await _page(browser, watch)
    await sign_in(page, site.url, site.email, site.password)
    await page.goto(site.url + "/connect?q=chase")
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Connect Chase", exact=True).click()
    popup = await opened.value
    await popup.get_by_label("Username").wait_for()
    await popup.close()
    problem = page.locator("[data-problem=cancelled]")
    await expect(problem).to_contain_text("The Plaid window was closed before Chase was connected")
    await expect(problem.get_by_role("button", name="Try again")).to_be_visible()
    await shot(page, "connect-window-closed")
    assert watch.unexpected() == []
    await context.close()


async def test_a_failed_start_says_why_and_retries(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch(expected=["status of 502"])
    context, page = await _page(browser, watch)
    await sign_in(page, site.url, site.email, site.password)
    await page.goto(site.url + "/connect?q=schwab")

    async def unavailable(route: Route) -> None:
        body = {"error": {"code": "provider_unavailable", "message": "SnapTrade is unavailable"}}
        await route.fulfill(status=502, content_type="application/json", body=json.dumps(body))

    await page.route(re.compile(r".*/api/connections$"), unavailable)
    await page.get_by_role("button", name="Connect Charles Schwab").click()
    problem = page.locator("[data-problem=failed]")
    await expect(problem).to_contain_text(
        "Could not start connecting Charles Schwab: SnapTrade is unavailable"
    )
    await shot(page, "connect-failed")
    await page.unroute(re.compile(r".*/api/connections$"))
    await _approve_schwab(page, "Try again")
    assert watch.unexpected() == []
    await context.close()


async def test_a_broken_connection_reconnects(site: Site, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=site.url, headers={"X-Brokerlink-CSRF": "1"}) as api:
        await api.post("/api/auth/login", json={"email": site.email, "password": site.password})
        linked = await link_via_api(api, "schwab")
    await site.state.syncs.drain()
    async with site.state.sessionmaker() as session:
        await session.execute(
            update(Connection)
            .where(Connection.id == linked["id"])
            .values(status=ConnectionStatus.BROKEN, status_reason="the brokerage login expired")
        )
        await session.commit()

    watch = ConsoleWatch()
    context, page = await _page(browser, watch)
    await sign_in(page, site.url, site.email, site.password)
    card = page.locator("article.account").first
    await expect(card.locator(".badge.status")).to_have_text("Broken")
    await shot(page, "connect-broken")
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Reconnect").click()
    popup = await opened.value
    await popup.get_by_role("button", name="Reconnect").click()
    await expect(page.locator("#flash")).to_contain_text(
        "Charles Schwab is reconnected", timeout=30_000
    )
    await expect(page.get_by_role("button", name="Reconnect")).to_have_count(0)
    assert watch.unexpected() == []
    await context.close()


async def test_keyboard_sign_in_wrong_password_then_right(site: Site, browser: Browser) -> None:
    # The failed sign-in's 401 is the browser's own network log line, not a script error.
    watch = ConsoleWatch(expected=["status of 401"])
    context, page = await _page(browser, watch, viewport=PHONE)
    await page.goto(site.url + "/connect")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fconnect$"))
    await expect(page.get_by_label("Email")).to_be_focused()
    await page.keyboard.type(site.email)
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Password")).to_be_focused()
    await page.keyboard.type("not the password")
    await page.keyboard.press("Enter")
    await expect(page.locator("#login-error")).to_have_text(
        "That email and password do not match an account."
    )
    await expect(page.get_by_label("Password")).to_be_focused()
    await shot(page, "login-wrong-password-phone")
    await page.keyboard.press("Control+A")
    await page.keyboard.type(site.password)
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(site.url + "/connect")
    # Focus is visible: the first Tab lands on the skip link, outlined.
    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    await expect(focused).to_have_text("Skip to content")
    outline = await focused.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="brokerlink")).to_be_focused()
    assert watch.unexpected() == []
    await context.close()
