"""Refresh, sync and orders tell the truth, in real Chromium: SnapTrade's own throttle in plain
words with no override, results beside the connection the user acted on, "Sync all" per
connection, an order preview that warns (and offers no Place) where the broker would refuse,
errors styled as errors, and the account's cash updated after a fill.

Screenshots: test-artifacts/truth-*.png.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import DESKTOP, ConsoleWatch, account_card, connection_card, shot, sign_in
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio

CSRF = {"X-Brokerlink-CSRF": "1"}


async def _page(
    site: Site, browser: Browser, *institutions: str, manual: bool = False
) -> tuple[Page, ConsoleWatch]:
    async with httpx.AsyncClient(base_url=site.url, headers=CSRF, timeout=20) as api:
        await api.post("/api/auth/login", json={"email": site.email, "password": site.password})
        for institution in institutions:
            await link_via_api(api, institution, need_trading=institution == "schwab")
        if manual:
            added = await api.post(
                "/api/manual-positions", json={"ticker": "BTC", "type": "crypto", "quantity": "1"}
            )
            assert added.status_code == 201, added.text
    await site.state.syncs.drain()
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch = ConsoleWatch()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    return page, watch


async def test_snaptrade_throttle_and_sync_all_report_perconnection_card(
    site: Site, browser: Browser
) -> None:
    # With a manual entry too: "Sync all" counts only what it synced.
    page, watch = await _page(site, browser, "schwab", "chase", manual=True)
    schwab = connection_card(page, "Charles Schwab")
    await schwab.locator("button.refresh").click()
    note = schwab.locator(".refresh-note")
    await expect(note).to_contain_text("Charles Schwab refreshed", timeout=20_000)
    await expect(page.locator("#flash")).to_be_empty()

    # SnapTrade's own throttle: plain words, the next time, and no override to buy.
    watch.expected.append("429")
    await schwab.locator("button.refresh").click()
    blocked = schwab.locator(".refresh-blocked")
    await expect(blocked).to_contain_text("SnapTrade refreshed Charles Schwab a short while ago")
    await expect(blocked).to_contain_text(re.compile(r"Try again after .*UTC"))
    await expect(blocked).not_to_contain_text("too recently")
    await expect(schwab.get_by_role("button", name=re.compile("Refresh anyway"))).to_have_count(0)
    await shot(page, "truth-01-snaptrade-throttle")
    # Pressed again, it still offers nothing that would be refused.
    await schwab.locator("button.refresh").click()
    await expect(schwab.get_by_role("button", name=re.compile("Refresh anyway"))).to_have_count(0)

    # Sync all: one result per connection, beside each, and a summary beside the button.
    await page.get_by_role("button", name="Sync all").click()
    await expect(page.locator("#sync-summary")).to_contain_text(
        "Synced 2 connections", timeout=30_000
    )
    await expect(schwab.locator(".refresh-note")).to_contain_text("Synced Charles Schwab")
    await expect(connection_card(page, "Chase").locator(".refresh-note")).to_contain_text(
        "Synced Chase: 4 accounts up to date"
    )
    await shot(page, "truth-02-sync-all")
    assert watch.unexpected() == []


async def test_plaid_override_dialog_says_cost_and_when_free(site: Site, browser: Browser) -> None:
    page, watch = await _page(site, browser, "chase")
    chase = connection_card(page, "Chase")
    await chase.locator("button.refresh").click()
    await expect(chase.locator(".refresh-note")).to_contain_text("Chase refreshed", timeout=20_000)
    await chase.locator("button.refresh").click()
    price = site.state.policy.price("plaid.investments.refresh")
    await chase.get_by_role("button", name=f"Refresh anyway (${price:.2f})").click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_contain_text(f"Refreshing now costs ${price:.2f}")
    await expect(dialog).to_contain_text("It is free to wait")
    await expect(dialog).not_to_contain_text("next free refresh")
    await shot(page, "truth-03-override-dialog")
    await dialog.get_by_role("button", name="Cancel").click()
    assert watch.unexpected() == []


async def test_order_preview_warns_before_the_broker_refuses(site: Site, browser: Browser) -> None:
    page, watch = await _page(site, browser, "schwab")
    individual = account_card(page, "Schwab Individual Brokerage")
    cash_before = await individual.locator(".balances div:nth-child(2) dd").inner_text()
    await individual.get_by_role("button", name="Trade").click()
    preview = individual.locator(".order-preview")

    # A buy far beyond the cash: warned, and Place is not offered.
    await individual.get_by_label("Symbol").fill("AAPL")
    await individual.get_by_label("Quantity (shares)").fill("1000000")
    await individual.get_by_role("button", name="Preview order").click()
    await expect(preview.locator(".order-warning")).to_contain_text("Not enough buying power")
    await expect(preview.get_by_role("button", name="Place order")).to_be_disabled()
    await shot(page, "truth-04-buy-too-big")
    await preview.get_by_role("button", name="Change").click()

    # A sell of more than is held: warned with the held quantity.
    await individual.get_by_text("Sell", exact=True).click()
    await individual.get_by_label("Quantity (shares)").fill("100000")
    await individual.get_by_role("button", name="Preview order").click()
    await expect(preview.locator(".order-warning")).to_contain_text("You hold")
    await expect(preview.get_by_role("button", name="Place order")).to_be_disabled()
    await shot(page, "truth-05-sell-too-many")
    await preview.get_by_role("button", name="Change").click()

    # An unknown symbol: the refusal is styled as an error.
    watch.expected.append("status of 4")
    await individual.get_by_text("Buy", exact=True).click()
    await individual.get_by_label("Symbol").fill("NOSUCHSYM")
    await individual.get_by_label("Quantity (shares)").fill("1")
    await individual.get_by_role("button", name="Preview order").click()
    status = individual.locator(".order-status")
    await expect(status).to_have_class(re.compile("problem-text"))
    await expect(status).to_have_attribute("role", "alert")
    await shot(page, "truth-06-error-styled")

    # A fill: the account's cash is read again from the broker.
    await individual.get_by_label("Symbol").fill("AAPL")
    await individual.get_by_role("button", name="Preview order").click()
    await preview.get_by_role("button", name="Place order").click()
    await expect(status).to_contain_text("Order placed: Buy 1 AAPL", timeout=20_000)
    await expect(status).not_to_have_class(re.compile("problem-text"))
    cash = individual.locator(".balances div:nth-child(2) dd")
    await expect(cash).not_to_have_text(cash_before, timeout=30_000)
    await shot(page, "truth-07-cash-after-fill")
    assert watch.unexpected() == []


async def test_an_institution_refreshed_only_by_its_provider_offers_no_refresh(
    site: Site, browser: Browser
) -> None:
    page, watch = await _page(site, browser, "empower", "chase")
    empower = connection_card(page, "Empower Retirement")
    await expect(empower).to_be_visible()
    await expect(empower.locator("button.refresh")).to_have_count(0)
    await expect(connection_card(page, "Chase").locator("button.refresh")).to_have_count(1)
    await shot(page, "truth-08-empower-no-refresh")
    assert watch.unexpected() == []
