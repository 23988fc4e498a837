"""The docs and the error pages in Chromium: /docs renders with the network cut off, and an
address the web app has no page for answers an HTML page in plain words, never raw JSON, while
/api keeps answering JSON."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Route

from tests.web.browser import DESKTOP, PHONE, ConsoleWatch, shot, sign_in
from tests.web.server import Site

pytestmark = pytest.mark.asyncio


async def _offline_page(browser: Browser, site: Site, *, viewport=DESKTOP) -> tuple[Page, list]:
    """A page whose every request to another host is refused, and the list of those refused."""
    context = await browser.new_context(viewport=viewport)
    home = urlsplit(site.url).netloc
    refused: list[str] = []

    async def only_the_app(route: Route) -> None:
        if urlsplit(route.request.url).netloc == home:
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await context.route("**/*", only_the_app)
    return await context.new_page(), refused


class TestDocsOffline:
    async def test_swagger_ui_renders_every_operation_with_no_network(
        self, site: Site, browser: Browser
    ) -> None:
        page, refused = await _offline_page(browser, site)
        watch = ConsoleWatch()
        watch.watch(page)
        answer = await page.goto(site.url + "/docs")
        assert answer is not None
        assert answer.status == 200
        title = page.locator(".swagger-ui .info .title")
        await title.wait_for(timeout=20_000)
        assert "brokerlink" in (await title.inner_text())
        operations = page.locator(".swagger-ui .opblock")
        await operations.first.wait_for()
        assert await operations.count() >= 30
        await page.get_by_text("/api/accounts/{account_id}/orders", exact=True).first.click()
        await shot(page, "faces-docs-offline")
        assert refused == []
        assert watch.unexpected() == []

    async def test_the_pages_load_nothing_from_another_host(self, site: Site) -> None:
        async with httpx.AsyncClient(base_url=site.url) as client:
            html = (await client.get("/docs")).text
            assert "https://" not in html
            assert "http://" not in html
            script = await client.get("/static-docs/swagger-ui-bundle.js")
            assert script.status_code == 200
            assert len(script.content) > 100_000


class TestErrorPages:
    async def test_an_unknown_address_is_a_page_in_plain_words(
        self, site: Site, browser: Browser
    ) -> None:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await sign_in(page, site.url, site.email, site.password)
        answer = await page.goto(site.url + "/accounts/nope")
        assert answer is not None
        assert answer.status == 404
        assert answer.headers["content-type"].startswith("text/html")
        await page.get_by_role("heading", name="Page not found").wait_for()
        body = await page.locator("main").inner_text()
        assert "/accounts/nope" in body
        assert '{"error"' not in await page.content()
        assert "not_found" in body  # the stable code, for support
        await shot(page, "faces-error-404")
        await page.get_by_role("link", name="Back to your accounts").click()
        await page.wait_for_url(site.url + "/")

    async def test_a_long_search_is_a_page_saying_what_is_wrong(
        self, site: Site, browser: Browser
    ) -> None:
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await sign_in(page, site.url, site.email, site.password)
        answer = await page.goto(site.url + "/connect?q=" + "x" * 500)
        assert answer is not None
        assert answer.status == 422
        assert answer.headers["content-type"].startswith("text/html")
        await page.get_by_role("heading", name="This address has something we can't use").wait_for()
        text = await page.locator(".error-text").inner_text()
        assert "“q”" in text
        assert "100 characters" in text
        # Nothing is wider than the phone's screen.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        await shot(page, "faces-error-422-phone")
        await page.get_by_role("link", name="Back to the institution list").click()
        await page.wait_for_url(site.url + "/connect")

    async def test_the_api_keeps_answering_json(self, site: Site) -> None:
        async with httpx.AsyncClient(base_url=site.url) as client:
            for path in ("/api/nope", "/api"):
                answer = await client.get(path)
                assert answer.status_code == 404
                assert answer.headers["content-type"].startswith("application/json")
                assert answer.json()["error"]["code"] == "not_found"
            page = await client.get("/nope", headers={"accept": "application/json"})
            assert page.status_code == 404
            assert page.headers["content-type"].startswith("text/html")
