"""Duplicated accounts on the portfolio page, resolved in real Chromium.

Schwab is linked twice: through SnapTrade and, with SnapTrade switched off, through Plaid. The
sandboxes give the two individual accounts different masks, so the Plaid one is given the
SnapTrade one's mask: the same institution, mask and type make a duplicate.

Screenshots: test-artifacts/portfolio-duplicates.png, portfolio-duplicates-switched.png.
"""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import update

from brokerlink.models import Account
from brokerlink.routing.router import ProviderFlags
from tests.web.browser import DESKTOP, ConsoleWatch, shot, sign_in
from tests.web.server import Site, link_via_api

pytestmark = pytest.mark.asyncio


async def test_a_duplicate_is_shown_and_resolved(site: Site, browser: Browser) -> None:
    async with httpx.AsyncClient(base_url=site.url, headers={"X-Brokerlink-CSRF": "1"}) as api:
        await api.post("/api/auth/login", json={"email": site.email, "password": site.password})
        snaptrade = await link_via_api(api, "schwab")
        site.state.flags = ProviderFlags(enable_snaptrade=False)
        plaid = await link_via_api(api, "schwab")
        await site.state.syncs.drain()
        assert plaid["provider"] == "plaid"
        twin = next(a for a in snaptrade["accounts"] if a["mask"] == "2207")
        individual = next(a for a in plaid["accounts"] if a["type"] == twin["type"])
        async with site.state.sessionmaker() as session:
            await session.execute(
                update(Account).where(Account.id == individual["id"]).values(number_mask="2207")
            )
            await session.commit()
        before_body = (await api.get("/api/portfolio")).json()
        worth = (await api.get("/api/net-worth")).json()
    # Net worth counts the duplicated account once, as the portfolio does.
    assert worth["duplicates_left_out"] == 1
    assert Decimal(worth["base_net"]) == Decimal(before_body["totals"]["USD"])
    before = before_body["duplicates"]
    assert [d["kept_provider"] for d in before] == ["snaptrade"]

    watch = ConsoleWatch()
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch.watch(page)
    await sign_in(page, site.url, site.email, site.password)
    await page.get_by_role("link", name="Portfolio").click()
    duplicate = page.locator("#duplicates .duplicate")
    await expect(duplicate).to_have_count(1)
    # Which two connections (provider, when linked), which one counts, what the total becomes.
    await expect(duplicate).to_contain_text("Charles Schwab · Schwab Individual")
    await expect(duplicate).to_contain_text("is linked twice")
    counted = duplicate.locator(".dup-side.is-counted")
    await expect(counted).to_contain_text('SnapTrade connection "Charles Schwab", linked ')
    await expect(counted).to_contain_text("Counted")
    other = duplicate.locator(".dup-side:not(.is-counted)")
    await expect(other).to_contain_text('Plaid connection "Charles Schwab", linked ')
    await expect(other).to_contain_text("Not counted")
    after = before_body["duplicates"][0]["totals_if_switched"]["USD"]
    total_after = f"${Decimal(after):,.2f}"
    await expect(duplicate.locator(".dup-effect")).to_contain_text(
        f"${Decimal(before_body['totals']['USD']):,.2f} to {total_after}"
    )
    await shot(page, "portfolio-duplicates")
    button = duplicate.get_by_role("button", name="Count the Plaid connection instead")
    await button.click()
    await expect(page.locator("#flash")).to_contain_text(
        'Now counting the Plaid connection "Charles Schwab"'
    )
    await expect(page.locator("#flash")).to_contain_text(f"Total value: {total_after}.")
    await expect(page.locator("#total-USD")).to_have_text(total_after)
    await expect(duplicate.locator(".dup-side.is-counted")).to_contain_text("Plaid connection")
    await expect(page.locator("#duplicates .duplicate")).to_have_attribute(
        "data-kept", str(individual["id"])
    )
    await shot(page, "portfolio-duplicates-switched")
    assert watch.unexpected() == []
    await context.close()
