"""The sign-in form in real Chromium: a wrong password, then the throttle in plain words."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.web.browser import DESKTOP, ConsoleWatch, shot
from tests.web.server import Site

pytestmark = pytest.mark.asyncio


async def _submit(page: Page, email: str, password: str) -> None:
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def test_the_form_says_when_to_try_again(site: Site, browser: Browser) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    watch = ConsoleWatch(expected=["401", "429"])
    watch.watch(page)
    await page.goto(site.url + "/login")
    alert = page.get_by_role("alert")

    for _ in range(site.state.sign_in.max_failures):
        await _submit(page, site.email, "wrong horse battery")
        await expect(alert).to_have_text("That email and password do not match an account.")
        await expect(page.get_by_role("button", name="Sign in")).to_be_enabled()

    # Throttled: even the right password is refused, and the form says so and when.
    await _submit(page, site.email, site.password)
    await expect(alert).to_have_text("Too many failed sign-ins. Try again in 15 minutes.")
    await expect(page).to_have_url(re.compile(r"/login$"))
    await shot(page, "sign-in-throttled")
    assert watch.unexpected() == []
    await context.close()
