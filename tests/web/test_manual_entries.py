"""Manual entries, net worth and the portfolio's numbers, in real Chromium.

E*TRADE (SnapTrade: a SPY put) and First Platypus Bank (Plaid: an AAPL call, CUSIP-only
holdings and a credit card) are linked over HTTP; the person then adds a Bitcoin holding by
hand through the accounts page's dialog, adds to it, edits it and deletes it, and reads net
worth and the portfolio at phone width.

Screenshots: test-artifacts/manual-entry-dialog.png, manual-entry-exists.png,
accounts-net-worth.png, portfolio-phone.png (and -totals, -by-account, -option),
portfolio-desktop.png (and -charts).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import ARTIFACTS, DESKTOP, PHONE, ConsoleWatch, shot, sign_in
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio


async def _linked(site: Site, client) -> None:
    await link_via_api(client, "etrade")
    await link_via_api(client, "first-platypus-bank")
    await site.state.syncs.drain()


async def _add(page: Page, *, ticker: str, kind: str, quantity: str, amount: str) -> None:
    dialog = page.locator("#manual-dialog")
    await page.get_by_role("button", name="Add a manual entry").click()
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Ticker or name").fill(ticker)
    await dialog.get_by_label("Type").select_option(kind)
    await dialog.get_by_label("Quantity").fill(quantity)
    await dialog.get_by_label("Amount").fill(amount)


async def test_manual_entries_from_the_accounts_page(site: Site, browser: Browser, client) -> None:
    await _linked(site, client)
    # The second BTC entry is refused (409) until the person chooses: that one is expected.
    watch = ConsoleWatch(expected=["status of 409 (Conflict) (http://127.0.0.1"])
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)

    await _add(page, ticker="btc", kind="crypto", quantity="0.5", amount="60000")
    await shot(page, "manual-entry-dialog")
    await page.locator("#manual-dialog").get_by_role("button", name="Save").click()
    entry = page.locator(".manual-entry[data-ticker='BTC']")
    await expect(entry).to_contain_text("Crypto")
    await expect(entry).to_contain_text("0.5 × $60,000.00 = $30,000.00")
    card = page.locator("article.account[data-provider='manual']")
    await expect(card).to_contain_text("Entered by you")
    await expect(card).not_to_contain_text("Syncing")
    await expect(card).not_to_contain_text("First sync in progress")

    # The same ticker again: an explicit choice, not an overwrite.
    await _add(page, ticker="BTC", kind="crypto", quantity="0.25", amount="")
    await page.locator("#manual-dialog").get_by_role("button", name="Save").click()
    await expect(page.locator("#manual-existing")).to_contain_text("already has BTC")
    await shot(page, "manual-entry-exists")
    await page.get_by_role("button", name="Add to it").click()
    await expect(entry).to_contain_text("0.75 × $60,000.00 = $45,000.00")

    # Edit: a total value instead of a price.
    await entry.get_by_role("button", name="Edit BTC").click()
    dialog = page.locator("#manual-dialog")
    await dialog.get_by_label("Total value").check()
    await dialog.get_by_label("Amount").fill("48000")
    await dialog.get_by_role("button", name="Save").click()
    await expect(entry).to_contain_text("0.75 × $64,000.00 = $48,000.00")

    # Net worth counts it, nets out the credit card's balance, and agrees with the accounts.
    accounts = (await client.get("/api/accounts")).json()
    net = sum(Decimal(a["balances"]["total"].get("USD", 0)) for a in accounts)
    card = next(a for a in accounts if a["name"] == "Plaid Credit Card")
    assert Decimal(card["balances"]["total"]["USD"]) == Decimal("-410")
    worth = (await client.get("/api/net-worth")).json()
    assert Decimal(worth["lines"][0]["liabilities"]) == Decimal("410")
    assert Decimal(worth["base_net"]) == net
    await expect(page.locator("#net-worth-USD")).to_have_text(f"${net:,.2f}")
    await expect(page.locator(f"#account-{card['id']} .balance-owed")).to_contain_text("$410.00")
    await shot(page, "accounts-net-worth")

    await entry.get_by_role("button", name="Delete BTC").click()
    await expect(page.locator(".manual-entry[data-ticker='BTC']")).to_have_count(0)
    assert (await client.get("/api/manual-positions")).json() == []

    # An account of one's own, made from the same dialog.
    await _add(page, ticker="ETH", kind="crypto", quantity="2", amount="3000")
    dialog = page.locator("#manual-dialog")
    await dialog.get_by_label("Account", exact=True).select_option("new")
    await dialog.get_by_label("New account name").fill("Cold wallet")
    await dialog.get_by_role("button", name="Save").click()
    wallet = page.locator("article.account[data-provider='manual']", has_text="Cold wallet")
    await expect(wallet.locator(".manual-entry[data-ticker='ETH']")).to_contain_text(
        "2 × $3,000.00 = $6,000.00"
    )
    await expect(wallet).to_contain_text("Entered by you")
    assert watch.unexpected() == []
    await context.close()


async def test_the_portfolio_fits_a_phone_and_its_numbers_agree(
    site: Site, browser: Browser, client
) -> None:
    await _linked(site, client)
    portfolio = (await client.get("/api/portfolio")).json()
    for holding in portfolio["holdings"]:
        if holding["price"] is None or holding["value"] is None or holding["type"] == "cash":
            continue
        # One rule for every source: quantity × price × multiplier = value (to the cent).
        product = (
            Decimal(holding["quantity"])
            * Decimal(holding["price"])
            * Decimal(holding["multiplier"])
        )
        assert abs(product - Decimal(holding["value"])) < Decimal("0.01"), holding
    options = {h["ticker"]: h for h in portfolio["holdings"] if h["type"] == "option"}
    assert len(options) == 2, list(options)  # the SPY put (SnapTrade), the AAPL call (Plaid)
    assert {Decimal(h["multiplier"]) for h in options.values()} == {100}
    # Quantities in contracts from both providers: Plaid's 200 underlying shares are 2.
    assert sorted(Decimal(h["quantity"]) for h in options.values()) == [1, 2]
    unnamed = [h["ticker"] for h in portfolio["holdings"] if h["type"] != "cash" and not h["name"]]
    assert unnamed == [], unnamed
    plaid_accounts = [
        a for a in (await client.get("/api/accounts")).json() if a["provider"] == "plaid"
    ]
    # Every Plaid account is dated, banks' included: by when Plaid last read the institution.
    assert {a["type"] for a in plaid_accounts} >= {"retirement", "bank"}, plaid_accounts
    assert all(a["data_as_of"] is not None for a in plaid_accounts), plaid_accounts

    watch = ConsoleWatch()
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    # Each synced account's card says how old its data is, banks' included.
    dated = [a for a in (await client.get("/api/accounts")).json() if a["data_as_of"]]
    await expect(page.locator(".freshness .as-of")).to_have_count(len(dated))
    await shot(page, "accounts-phone-as-of")
    await page.goto(site.url + "/portfolio")
    total = page.locator("#total-USD")
    await expect(total).to_be_visible()
    # Nothing wider than its card at 390 px: the total, and the page itself.
    fits = await page.evaluate(
        """() => {
        const dd = document.querySelector('#total-USD');
        const card = dd.closest('.stat');
        return dd.getBoundingClientRect().right <= card.getBoundingClientRect().right + 0.5
            && document.documentElement.scrollWidth <= window.innerWidth;
    }"""
    )
    assert fits
    # Every bar's value text ends inside its chart.
    clipped = await page.evaluate(
        """() => [...document.querySelectorAll('svg.chart.bars')].flatMap(svg => {
        const box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('text')].filter(
            t => t.getBoundingClientRect().right > box.right + 0.5).map(t => t.textContent);
    })"""
    )
    assert clipped == []
    # One currency of cash is a figure, not a chart of one bar in a tall box.
    await expect(page.get_by_role("heading", name="Cash per currency")).to_have_count(0)
    option_row = page.locator("tr", has=page.locator(".multiplier")).first
    await expect(option_row).to_contain_text("contract")
    cusip_row = page.locator("tr", has=page.locator(".holding-name")).filter(has_text="Treasury")
    await expect(cusip_row.first).to_be_visible()
    await shot(page, "portfolio-phone")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.locator("section.totals").screenshot(
        path=str(ARTIFACTS / "portfolio-phone-totals.png")
    )
    by_account = page.locator("figure.chart-card", has_text="By account")
    await by_account.screenshot(path=str(ARTIFACTS / "portfolio-phone-by-account.png"))
    await option_row.screenshot(path=str(ARTIFACTS / "portfolio-phone-option.png"))
    await page.set_viewport_size(DESKTOP)
    await shot(page, "portfolio-desktop")
    await page.locator("#allocation-title").scroll_into_view_if_needed()
    await page.locator("section", has=page.locator("#allocation-title")).screenshot(
        path=str(ARTIFACTS / "portfolio-desktop-charts.png")
    )
    assert watch.unexpected() == []
    await context.close()
