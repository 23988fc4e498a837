"""The pages as HTML over HTTP (no browser): sign-in redirects, what each page shows, escaping,
and that loading a page never calls a provider."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from brokerlink.models import Connection, ConnectionStatus
from tests.web.server import Site, link_via_api, running_site

# Tests that only read share one site (module loop); tests that link get their own.
shared = pytest.mark.asyncio(loop_scope="module")
own = pytest.mark.asyncio

PAGES = ("/", "/connect", "/portfolio")


def _heading(card: str) -> str:
    found = re.search(r"<h3[^>]*>([^<]+)", card)
    assert found is not None
    return found.group(1).strip()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    async with running_site(tmp_path_factory.mktemp("web-pages")) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_client(shared_site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=shared_site.url, headers={"X-Brokerlink-CSRF": "1"}
    ) as signed_in:
        answer = await signed_in.post(
            "/api/auth/login", json={"email": shared_site.email, "password": shared_site.password}
        )
        assert answer.status_code == 200, answer.text
        yield signed_in


@shared
class TestSignedOut:
    @pytest.mark.parametrize("path", PAGES)
    async def test_pages_redirect_to_login(self, shared_site: Site, path: str) -> None:
        async with httpx.AsyncClient(base_url=shared_site.url) as anonymous:
            answer = await anonymous.get(path)
        assert answer.status_code == 303
        expected = "/login" if path == "/" else f"/login?next=%2F{path.strip('/')}"
        assert answer.headers["location"] == expected

    async def test_login_page_keeps_a_local_next_only(self, shared_site: Site) -> None:
        async with httpx.AsyncClient(base_url=shared_site.url) as anonymous:
            local = await anonymous.get("/login", params={"next": "/portfolio"})
            foreign = await anonymous.get("/login", params={"next": "//evil.example/x"})
        assert 'data-next="/portfolio"' in local.text
        assert 'data-next="/"' in foreign.text
        assert 'id="login-form"' in local.text
        assert '<label for="email">Email</label>' in local.text

    async def test_fragments_answer_401(self, shared_site: Site) -> None:
        async with httpx.AsyncClient(base_url=shared_site.url) as anonymous:
            answer = await anonymous.get("/fragments/connections")
        assert answer.status_code == 401

    async def test_static_files_are_served(self, shared_site: Site) -> None:
        async with httpx.AsyncClient(base_url=shared_site.url) as anonymous:
            for path in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
                assert (await anonymous.get(path)).status_code == 200, path


@shared
class TestSignedIn:
    async def test_login_page_redirects_when_signed_in(
        self, shared_client: httpx.AsyncClient
    ) -> None:
        answer = await shared_client.get("/login", params={"next": "/portfolio"})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/portfolio"

    async def test_empty_accounts_page(self, shared_client: httpx.AsyncClient) -> None:
        page = (await shared_client.get("/")).text
        assert "No accounts connected yet." in page
        assert re.search(r'id="sync-all"[^>]*disabled', page)

    async def test_picker_lists_popular_first_with_provider_and_reason(
        self, shared_client: httpx.AsyncClient
    ) -> None:
        page = (await shared_client.get("/connect")).text
        assert page.index(">Popular</h2>") < page.index(">All institutions</h2>")
        schwab = page[page.index('data-slug="schwab"') :]
        schwab = schwab[: schwab.index("</li>")]
        assert "via SnapTrade" in schwab
        assert "Charles Schwab connects through SnapTrade" in schwab
        assert 'aria-label="Connect Charles Schwab"' in schwab

    async def test_search_is_escaped(self, shared_client: httpx.AsyncClient) -> None:
        page = (await shared_client.get("/connect", params={"q": "<script>alert(1)</script>"})).text
        assert "<script>alert(1)</script>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "No institution matches" in page

    async def test_search_finds_by_alias(self, shared_client: httpx.AsyncClient) -> None:
        page = (await shared_client.get("/connect", params={"q": "JPMorgan"})).text
        assert 'data-slug="chase"' in page
        assert 'data-slug="schwab"' not in page


@own
class TestLinked:
    async def test_cards_badges_and_ticket(self, site: Site, client: httpx.AsyncClient) -> None:
        await link_via_api(client, "schwab")
        await link_via_api(client, "chase")
        await site.state.syncs.drain()
        page = (await client.get("/")).text
        cards = re.findall(r"<article .*?</article>", page, flags=re.S)
        by_name = {_heading(c): c for c in cards}
        schwab = by_name["Schwab Individual Brokerage"]
        assert ">SnapTrade</li>" in schwab
        assert ">Trading</li>" in schwab
        assert "Real-time" not in schwab  # the daily plan
        assert "ticket-toggle" in schwab
        chase = by_name["Self-Directed Investing"]
        assert ">Plaid</li>" in chase
        assert ">Trading</li>" not in chase
        assert "ticket-toggle" not in chase
        assert "No trading here" in chase
        assert "••5521" in chase

    async def test_plaid_refresh_button_carries_cost_and_window(
        self, site: Site, client: httpx.AsyncClient
    ) -> None:
        linked = await link_via_api(client, "chase")
        await site.state.syncs.drain()
        page = (await client.get("/")).text
        button = re.search(rf'<button[^>]*id="refresh-{linked["id"]}".*?</button>', page, re.S)
        assert button is not None
        price = site.state.policy.price("plaid.investments.refresh")
        assert f'data-cost="{price}"' in button.group(0)
        assert 'data-window-hours="24"' in button.group(0)
        assert 'data-next-allowed-at=""' in button.group(0)
        refreshed = await client.post(f"/api/connections/{linked['id']}/refresh", json={})
        assert refreshed.status_code == 200, refreshed.text
        await site.state.syncs.drain()
        page = (await client.get("/")).text
        button = re.search(rf'<button[^>]*id="refresh-{linked["id"]}".*?</button>', page, re.S)
        assert button is not None
        assert re.search(r'data-next-allowed-at="\d{4}-', button.group(0))
        assert "Refresh · next allowed" in button.group(0)

    async def test_realtime_badge_only_on_a_realtime_plan(
        self, site: Site, client: httpx.AsyncClient
    ) -> None:
        site.state.plan = "realtime"
        await link_via_api(client, "schwab")
        await link_via_api(client, "chase")
        await site.state.syncs.drain()
        page = (await client.get("/")).text
        cards = re.findall(r"<article .*?</article>", page, flags=re.S)
        realtime = [c for c in cards if ">Real-time</li>" in c]
        assert realtime
        assert all('data-provider="snaptrade"' in c for c in realtime)

    async def test_broken_connection_offers_reconnect(
        self, site: Site, client: httpx.AsyncClient
    ) -> None:
        linked = await link_via_api(client, "chase")
        await site.state.syncs.drain()
        async with site.state.sessionmaker() as session:
            await session.execute(
                update(Connection)
                .where(Connection.id == linked["id"])
                .values(status=ConnectionStatus.BROKEN, status_reason="login required")
            )
            await session.commit()
        page = (await client.get("/")).text
        assert f'id="reconnect-{linked["id"]}"' in page
        assert ">Broken</li>" in page
        assert "login required" in page

    async def test_portfolio_consolidates_aapl(self, site: Site, client: httpx.AsyncClient) -> None:
        await link_via_api(client, "schwab")
        await link_via_api(client, "chase")
        await site.state.syncs.drain()
        page = (await client.get("/portfolio")).text
        row = re.search(r'<tr data-ticker="AAPL".*?</tr>', page, re.S)
        assert row is not None
        assert 'data-sources="2"' in row.group(0)
        assert '<td class="num quantity" data-label="Quantity">150</td>' in row.group(0)
        assert page.count('<svg class="chart') == 3  # cash in one currency is a figure, no chart
        assert "<title>By asset type (USD)</title>" in page

    async def test_page_loads_never_call_a_provider(
        self, site: Site, client: httpx.AsyncClient
    ) -> None:
        linked = await link_via_api(client, "schwab")
        await link_via_api(client, "chase")
        await site.state.syncs.drain()
        before = site.provider_calls
        for path in (*PAGES, "/fragments/connections", f"/fragments/connections/{linked['id']}"):
            answer = await client.get(path)
            assert answer.status_code == 200, path
        assert site.provider_calls == before
