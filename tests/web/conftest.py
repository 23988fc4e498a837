"""Web tests: the pages over the whole stack on loopback ports, and real Chromium.

site        both sandboxes and the app under uvicorn in the test's loop, on SQLite
            (tests/web/server.py)
browser     Debian's Chromium launched by Playwright (fails, never skips, when it is missing)
client      an httpx client of the site, signed in (for page-rendering tests)
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright

from tests.web.browser import CHROMIUM, CHROMIUM_ARGS
from tests.web.server import Site, running_site


@pytest_asyncio.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with running_site(tmp_path) as running:
        yield running


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run scripts/system-deps.sh as root "
            "(apt-get install chromium) or set CHROMIUM_PATH. The browser tests never skip.",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=site.url, headers={"X-Brokerlink-CSRF": "1"}, timeout=20
    ) as signed_in:
        answer = await signed_in.post(
            "/api/auth/login", json={"email": site.email, "password": site.password}
        )
        assert answer.status_code == 200, answer.text
        yield signed_in
