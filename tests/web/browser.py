"""Real Chromium through Playwright's async API (never `playwright install`: Debian's chromium).

CHROMIUM         the executable (CHROMIUM_PATH, else `chromium` on PATH, else /usr/bin/chromium)
ARTIFACTS        test-artifacts/ at the repository root, where screenshots go
ConsoleWatch     collects console errors and uncaught page errors of the pages it watches
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import ConsoleMessage, Error, Locator, Page, ViewportSize

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


@dataclass
class ConsoleWatch:
    """Console errors and page errors; `expected` substrings are tolerated (a test that
    provokes a failing request on purpose names it)."""

    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def _page_error(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error.message}")

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(x in e for x in self.expected)]


async def shot(page: Page, name: str) -> Path:
    """A full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def sign_in(page: Page, site_url: str, email: str, password: str) -> None:
    """Through the login page, as a user does; ends on the accounts page."""
    await page.goto(site_url + "/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(site_url + "/")


def connection_card(page: Page, institution: str) -> Locator:
    """The accounts page's section of one connection, by its institution's heading."""
    return page.locator("section.connection").filter(
        has=page.get_by_role("heading", name=institution, exact=True)
    )


def account_card(page: Page, name: str) -> Locator:
    """One account's card, by the start of its heading."""
    return page.locator("article.account").filter(
        has=page.get_by_role("heading", name=re.compile(rf"^{re.escape(name)}"))
    )
