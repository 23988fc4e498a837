"""The journey in real Chromium: sign in, connect Schwab through the SnapTrade portal popup
and Chase through Plaid's Hosted Link popup, see the accounts and their badges, the
consolidated portfolio (AAPL 150 from two sources), refresh the Plaid connection twice (the
second is blocked with its next time, and the override states its cost), sync all, at desktop
and phone width, sign out; and an order at Schwab (preview, confirm, status) with none offered
at Chase. No console errors anywhere.

Screenshots: test-artifacts/journey-*.png, order-*.png.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import (
    DESKTOP,
    PHONE,
    ConsoleWatch,
    account_card,
    connection_card,
    shot,
    sign_in,
)
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio

CSRF = {"X-Brokerlink-CSRF": "1"}


async def _sign_in(page: Page, site: Site) -> None:
    await page.goto(site.url + "/")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.get_by_label("Email").fill(site.email)
    await page.get_by_label("Password").fill(site.password)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(site.url + "/")


async def _connect_schwab(page: Page) -> None:
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Connect Charles Schwab").click()
    popup = await opened.value
    # SnapTrade's sandbox portal, opened for Schwab: approve.
    await popup.get_by_role("button", name="Connect", exact=True).click()
    result = page.locator("#flow-status")
    await expect(result.get_by_role("heading", level=2).first).to_have_text(
        "Connected Charles Schwab through SnapTrade", timeout=30_000
    )
    await expect(result.get_by_text("Schwab Individual Brokerage")).to_be_visible()


async def _connect_chase(page: Page) -> None:
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name="Connect Chase", exact=True).click()
    popup = await opened.value
    # Plaid's sandbox Hosted Link: log in with the sandbox's test credentials.
    await popup.get_by_label("Username").fill("user_good")
    await popup.get_by_label("Password").fill("pass_good")
    await popup.get_by_role("button", name="Submit").click()
    result = page.locator("#flow-status")
    await expect(result.get_by_role("heading", level=2).first).to_have_text(
        "Connected Chase through Plaid", timeout=30_000
    )
    await expect(result.get_by_text("Self-Directed Investing")).to_be_visible()


async def test_connect_refresh_and_portfolio(site: Site, browser: Browser) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch = ConsoleWatch()
    watch.watch(page)

    # Signed out: every page sends you to the login page.
    await page.goto(site.url + "/portfolio")
    await expect(page).to_have_url(re.compile(r"/login\?next=%2Fportfolio$"))
    await shot(page, "journey-01-login")
    await _sign_in(page, site)
    await expect(page.get_by_text("No accounts connected yet.")).to_be_visible()

    # The picker: popular first, then all; each card names its provider and why.
    await page.get_by_role("link", name="Connect an account").click()
    await expect(page).to_have_url(site.url + "/connect")
    headings = await page.locator("main h2").all_inner_texts()
    assert headings[:2] == ["Popular", "All institutions"]
    schwab = page.locator("li.institution[data-slug=schwab]")
    await expect(schwab).to_contain_text("via SnapTrade")
    await expect(schwab).to_contain_text("Charles Schwab connects through SnapTrade")
    await expect(schwab.locator(".logo")).to_have_text("CS")
    chase = page.locator("li.institution[data-slug=chase]")
    await expect(chase).to_contain_text("via Plaid")
    await expect(chase).to_contain_text("Bank")
    await shot(page, "journey-02-picker")

    # Search, then connect Schwab from the results.
    await page.get_by_label("Search institutions").fill("schwab")
    await page.get_by_label("Search institutions").press("Enter")
    await expect(page.get_by_role("heading", name="Results for “schwab”")).to_be_visible()
    await _connect_schwab(page)
    await shot(page, "journey-03-schwab-connected")

    await page.goto(site.url + "/connect?q=chase")
    await _connect_chase(page)
    await shot(page, "journey-04-chase-connected")

    # Account cards: provider and capability badges, balances, freshness.
    await page.get_by_role("link", name="Accounts", exact=True).click()
    individual = account_card(page, "Schwab Individual Brokerage")
    await expect(individual.locator(".badge.provider")).to_have_text("SnapTrade")
    await expect(individual.locator(".badge.cap-trading")).to_have_text("Trading")
    await expect(individual.locator(".badge.cap-realtime")).to_have_count(0)  # daily plan
    await expect(individual.locator(".badge.status")).to_have_text("Fresh")
    await expect(individual.locator(".mask")).to_have_text("••2207")
    await expect(individual.locator(".balances")).to_contain_text("$")
    await expect(individual).to_contain_text("Last synced")
    brokerage = account_card(page, "Self-Directed Investing")
    await expect(brokerage.locator(".badge.provider")).to_have_text("Plaid")
    await expect(brokerage.locator(".badge.cap-trading")).to_have_count(0)
    await expect(brokerage.locator(".badge.status")).to_have_text("Fresh")
    # The order ticket is offered at Schwab and nowhere at Chase.
    await expect(individual.get_by_role("button", name="Trade")).to_be_visible()
    chase_section = connection_card(page, "Chase")
    await expect(chase_section.get_by_role("button", name="Trade")).to_have_count(0)
    await expect(chase_section.locator(".no-trading").first).to_contain_text("No trading here")
    await shot(page, "journey-05-accounts")

    # The consolidated portfolio: AAPL 150 from SnapTrade (50) and Plaid (100).
    await page.get_by_role("link", name="Portfolio").click()
    aapl = page.locator("tr[data-ticker=AAPL]")
    await expect(aapl.locator(".quantity")).to_have_text("150")
    await expect(aapl.locator(".sources li")).to_have_count(2)
    await expect(aapl.locator(".sources")).to_contain_text("SnapTrade")
    await expect(aapl.locator(".sources")).to_contain_text("Plaid")
    quantities = await aapl.locator(".source-quantity").all_inner_texts()
    assert sorted(quantities) == ["100", "50"]
    for title in ("By asset type", "By provider", "By account"):
        figure = page.locator("figure.chart-card").filter(
            has=page.get_by_role("heading", name=title)
        )
        await expect(figure.locator("svg[role=img]")).to_have_count(1)
    # Cash in one currency is the "Cash (USD)" figure; a chart of one bar would be an empty box.
    await expect(page.get_by_role("heading", name="Cash per currency")).to_have_count(0)
    await shot(page, "journey-06-portfolio")

    # Refresh the Plaid connection: the first goes out, the second is blocked with its time.
    await page.get_by_role("link", name="Accounts", exact=True).click()
    refresh = connection_card(page, "Chase").locator("button.refresh")
    await expect(refresh).to_have_text("Refresh")
    await refresh.click()
    await expect(connection_card(page, "Chase").locator(".refresh-note")).to_contain_text(
        "Chase refreshed", timeout=20_000
    )
    refresh = connection_card(page, "Chase").locator("button.refresh")
    await expect(refresh).to_contain_text("next allowed")
    await refresh.click()
    blocked = connection_card(page, "Chase").locator(".refresh-blocked")
    await expect(blocked).to_contain_text("Refresh blocked")
    connections = await (await page.request.get(site.url + "/api/connections")).json()
    plaid = next(c for c in connections if c["provider"] == "plaid")
    assert plaid["next_refresh_allowed_at"] is not None
    shown = await page.evaluate(
        "iso => document.querySelector('.refresh-blocked').textContent.includes("
        "(() => { const d = new Date(iso); const p = n => String(n).padStart(2, '0');"
        " return p(d.getUTCHours()) + ':' + p(d.getUTCMinutes()) + ' UTC'; })())",
        plaid["next_refresh_allowed_at"],
    )
    assert shown, await blocked.inner_text()
    # The server agrees: a second refresh without override is refused with the same time.
    refused = await page.request.post(
        f"{site.url}/api/connections/{plaid['id']}/refresh",
        data={"override": False},
        headers=CSRF,
    )
    assert refused.status == 429
    error = (await refused.json())["error"]
    assert error["code"] == "refresh_too_soon"
    assert error["next_allowed_at"][:16] == plaid["next_refresh_allowed_at"][:16]
    await shot(page, "journey-07-refresh-blocked")

    # The override asks first, stating the cost of a Plaid refresh.
    price = site.state.policy.price("plaid.investments.refresh")
    await blocked.get_by_role("button", name=f"Refresh anyway (${price:.2f})").click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(f"${price:.2f}")
    await shot(page, "journey-08-override-confirm")
    await dialog.get_by_role("button", name=f"Refresh for ${price:.2f}").click()
    await expect(connection_card(page, "Chase").locator(".refresh-note")).to_contain_text(
        f"Chase refreshed (billed ${price:.2f})", timeout=20_000
    )

    # Sync all.
    await page.get_by_role("button", name="Sync all").click()
    await expect(page.locator("#sync-summary")).to_contain_text(
        "Synced 2 connections", timeout=30_000
    )

    # Phone width: nothing wider than the screen, the ticket still there.
    await page.set_viewport_size(PHONE)
    await page.reload()
    await expect(account_card(page, "Schwab Individual Brokerage")).to_be_visible()
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await shot(page, "journey-09-accounts-phone")
    await page.goto(site.url + "/portfolio")
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await shot(page, "journey-10-portfolio-phone")

    # Sign out: back to the login page, and the pages need signing in again.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page).to_have_url(re.compile(r"/login$"))
    await page.goto(site.url + "/")
    await expect(page).to_have_url(re.compile(r"/login$"))

    assert watch.unexpected() == []
    await context.close()


async def test_order_at_schwab_and_none_at_chase(site: Site, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=site.url, headers=CSRF) as api:
        await api.post("/api/auth/login", json={"email": site.email, "password": site.password})
        await link_via_api(api, "schwab")
        await link_via_api(api, "chase")
    await site.state.syncs.drain()
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch = ConsoleWatch()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    chase_section = connection_card(page, "Chase")
    await expect(chase_section.locator("article.account")).to_have_count(4)
    await expect(chase_section.get_by_role("button", name="Trade")).to_have_count(0)

    # An order at Schwab: preview (impact), confirm, status.
    individual = account_card(page, "Schwab Individual Brokerage")
    await individual.get_by_role("button", name="Trade").click()
    await expect(individual.get_by_label("Limit price")).to_be_hidden()
    await individual.get_by_label("Symbol").fill("AAPL")
    await individual.get_by_label("Quantity (shares)").fill("1")
    await individual.get_by_role("button", name="Preview order").click()
    preview = individual.locator(".order-preview")
    await expect(preview).to_contain_text("Buy 1 AAPL")
    await expect(preview).to_contain_text("Estimated price")
    await shot(page, "order-01-preview")
    await preview.get_by_role("button", name="Place order").click()
    status = individual.locator(".order-status")
    await expect(status).to_contain_text("Order placed: Buy 1 AAPL")
    order_id = await status.get_attribute("data-order-id")
    assert order_id
    placed = individual.locator(f'.order-list li[data-order-id="{order_id}"]')
    await expect(placed).to_contain_text("Buy 1 AAPL")
    account_id = await individual.get_attribute("data-account-id")
    listed = await (await page.request.get(f"{site.url}/api/accounts/{account_id}/orders")).json()
    assert order_id in [o["order_id"] for o in listed]
    await shot(page, "order-02-placed")

    # Phone width: the ticket fits.
    await page.set_viewport_size(PHONE)
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    await shot(page, "order-03-phone")
    assert watch.unexpected() == []
    await context.close()
