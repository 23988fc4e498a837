"""Linking journeys that must tell the truth, in real Chromium: a failure inside the provider's
window reaches the page in plain words with a retry; Cancel in Hosted Link; what is connected
shows in the picker with Reconnect; "Other institution…" opens Plaid's own search; trading
intent at a bank is explained.

Screenshots: test-artifacts/link-*.png.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.web.browser import DESKTOP, PHONE, ConsoleWatch, shot, sign_in
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio


async def _signed_in(
    browser: Browser, site: Site, watch: ConsoleWatch, *, phone: bool = False
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport=PHONE if phone else DESKTOP)
    page = await context.new_page()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    return context, page


async def _connections(page: Page, site: Site) -> list[dict[str, object]]:
    listed: list[dict[str, object]] = await (
        await page.request.get(site.url + "/api/connections")
    ).json()
    return listed


async def test_an_error_in_hosted_link_reaches_the_page_with_a_retry(
    site: Site, browser: Browser
) -> None:
    watch = ConsoleWatch()
    context, page = await _signed_in(browser, site, watch)
    await page.goto(site.url + "/connect?q=chase")
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Connect Chase", exact=True).click()
    popup = await opened.value
    await popup.get_by_label("Username").fill("user_good")
    # The sandbox's credentials for an institution that is down.
    await popup.get_by_label("Password").fill("error_INSTITUTION_DOWN")
    await popup.get_by_role("button", name="Submit").click()
    problem = page.locator("[data-problem=failed]")
    await expect(problem).to_contain_text(
        "Chase isn't responding right now. Nothing was connected; try again in a few minutes."
    )
    await expect(problem).to_have_attribute("data-error-code", "INSTITUTION_DOWN")
    await expect(problem.get_by_role("button", name="Try again")).to_be_focused()
    await expect(page.locator("#flow-status")).not_to_contain_text("finish in the window")
    # The page closed the provider's window itself.
    if not popup.is_closed():
        await popup.wait_for_event("close")
    await shot(page, "link-error-in-popup")
    assert await _connections(page, site) == []
    # The retry opens a fresh window that links.
    async with page.expect_popup() as reopened:
        await problem.get_by_role("button", name="Try again").click()
    again = await reopened.value
    await again.get_by_label("Username").fill("user_good")
    await again.get_by_label("Password").fill("pass_good")
    await again.get_by_role("button", name="Submit").click()
    await expect(page.locator("#connected-title")).to_have_text(
        "Connected Chase through Plaid", timeout=30_000
    )
    assert watch.unexpected() == []
    await context.close()


async def test_cancel_in_hosted_link_says_so(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context, page = await _signed_in(browser, site, watch)
    await page.goto(site.url + "/connect?q=chase")
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Connect Chase", exact=True).click()
    popup = await opened.value
    await popup.get_by_role("button", name="Cancel").click()
    problem = page.locator("[data-problem=cancelled]")
    await expect(problem).to_contain_text(
        "Connecting Chase was cancelled in Plaid. Nothing was connected."
    )
    await shot(page, "link-cancelled-in-plaid")
    assert await _connections(page, site) == []
    assert watch.unexpected() == []
    await context.close()


async def test_the_picker_shows_what_is_connected_and_reconnects_it(
    site: Site, browser: Browser
) -> None:
    async with httpx.AsyncClient(base_url=site.url, headers={"X-Brokerlink-CSRF": "1"}) as api:
        await api.post("/api/auth/login", json={"email": site.email, "password": site.password})
        linked = await link_via_api(api, "chase")
    await site.state.syncs.drain()
    watch = ConsoleWatch()
    context, page = await _signed_in(browser, site, watch)
    await page.goto(site.url + "/connect")
    chase = page.locator("section[aria-labelledby=popular-title] li.institution[data-slug=chase]")
    await expect(chase.locator(".badge.connected")).to_have_text("Connected")
    await expect(chase.get_by_role("button", name="Reconnect Chase")).to_be_visible()
    schwab = page.locator("li.institution[data-slug=schwab]")
    await expect(schwab.locator(".badge.connected")).to_have_count(0)
    await expect(schwab.get_by_role("button", name="Connect Charles Schwab")).to_be_visible()
    await shot(page, "link-picker-connected")
    async with page.expect_popup() as opened:
        await chase.get_by_role("button", name="Reconnect Chase").click()
    popup = await opened.value
    await popup.get_by_label("Username").fill("user_good")
    await popup.get_by_label("Password").fill("pass_good")
    await popup.get_by_role("button", name="Submit").click()
    await expect(page.locator("#flash")).to_contain_text("Chase is reconnected", timeout=30_000)
    # Linking the same login again made no second connection.
    assert [c["id"] for c in await _connections(page, site)] == [linked["id"]]
    assert watch.unexpected() == []
    await context.close()


async def test_other_institution_opens_plaids_own_search(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context, page = await _signed_in(browser, site, watch, phone=True)
    await page.goto(site.url + "/connect?q=zzz+credit+union")
    await expect(page.locator("#results-title")).to_be_visible()
    other = page.get_by_role("button", name="Connect another institution")
    await expect(other).to_be_visible()
    await shot(page, "link-other-institution-phone")
    async with page.expect_popup() as opened:
        await other.click()
    popup = await opened.value
    await popup.get_by_label("Institution").select_option(label="Vanguard")
    await popup.get_by_label("Username").fill("user_good")
    await popup.get_by_label("Password").fill("pass_good")
    await popup.get_by_role("button", name="Submit").click()
    await expect(page.locator("#connected-title")).to_have_text(
        "Connected Vanguard through Plaid", timeout=30_000
    )
    await shot(page, "link-other-institution-connected-phone")
    assert watch.unexpected() == []
    await context.close()


async def test_trading_at_a_bank_is_explained(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context, page = await _signed_in(browser, site, watch)
    await page.goto(site.url + "/connect?q=chase&trading=true")
    card = page.locator("li.institution[data-slug=chase]")
    await expect(card.locator(".badge.provider")).to_have_text("via Plaid")
    await expect(card.locator(".reason")).to_contain_text("Chase accounts can't place trades here")
    await shot(page, "link-trading-at-a-bank")
    assert watch.unexpected() == []
    await context.close()
