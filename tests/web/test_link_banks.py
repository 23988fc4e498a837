"""Popular banks and Merrill link in real Chromium through Plaid's Hosted Link popup, and a bank's
balances show as cash in the portfolio (its credit card does not).

Screenshots: test-artifacts/link-bank-*.png, link-merrill-*.png.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import DESKTOP, ConsoleWatch, shot, sign_in
from tests.web.server import Site

pytestmark = pytest.mark.asyncio


async def _connect_in_hosted_link(page: Page, site: Site, query: str, name: str) -> None:
    await page.goto(f"{site.url}/connect?q={query}")
    async with page.expect_popup() as opened:
        await page.get_by_role("button", name=f"Connect {name}", exact=True).click()
    popup = await opened.value
    await popup.get_by_label("Username").fill("user_good")
    await popup.get_by_label("Password").fill("pass_good")
    await popup.get_by_role("button", name="Submit").click()
    await expect(page.locator("#flow-status").get_by_role("heading", level=2).first).to_have_text(
        f"Connected {name} through Plaid", timeout=30_000
    )


async def test_bank_of_america_links_and_its_cash_counts(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    await _connect_in_hosted_link(page, site, "bank of america", "Bank of America")
    result = page.locator("#flow-status")
    await expect(result.get_by_text("Adv Plus Banking")).to_be_visible()
    await expect(result.get_by_text("Customized Cash Rewards")).to_be_visible()
    await shot(page, "link-bank-01-connected")

    await page.goto(site.url + "/portfolio")
    cash = page.locator(".stat").filter(has=page.get_by_text("Cash (USD)"))
    # Checking 3,120.44 + savings 8,800.00; the card's balance owed is not cash.
    await expect(cash.locator("dd")).to_have_text("$11,920.44")
    await shot(page, "link-bank-02-portfolio")
    assert watch.unexpected() == []
    await context.close()


async def test_merrill_from_popular_links(site: Site, browser: Browser) -> None:
    watch = ConsoleWatch()
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    await _connect_in_hosted_link(page, site, "merrill", "Merrill")
    await expect(
        page.locator("#flow-status").get_by_text("Merrill Edge Self-Directed")
    ).to_be_visible()
    await shot(page, "link-merrill-01-connected")
    assert watch.unexpected() == []
    await context.close()
