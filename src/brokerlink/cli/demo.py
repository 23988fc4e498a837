"""`brokerlink demo`: the main job on the embedded defaults.

Starts both provider sandboxes in-process on loopback ports and, for a demo user in the embedded
store (SQLite under the data directory, migrated to head), links Charles Schwab and Fidelity
through SnapTrade's connection portal and Chase through Plaid's Hosted Link (the flows a browser
follows, with the router's reason for each), syncs every account into the store, consolidates the
portfolio, and prints connections, accounts with their capabilities, the sync summary and the
consolidated portfolio. Each run replaces the previous run's demo user.

Output: stdout is line-buffered, so a log line (stderr) never lands inside a table when both
go to one pipe; when stdout is not a terminal the tables are as wide as they need (not cut to
80 columns). While serving, both sandboxes send their webhooks to the demo's own routes
(`/webhooks/snaptrade`, set with the SnapTrade sandbox's `PUT /sandbox/webhook`; `/webhooks/plaid`,
the `webhook` of each Plaid Link), so a refresh in the web app comes back as a holdings webhook
that the app verifies and syncs from. It prints the sandboxes' addresses and the `brokerlink sync`
command that uses them, and SIGINT or SIGTERM stops it whether or not it runs in the foreground (a
background job starts with SIGINT ignored, and the embedded servers must not swallow it).
"""

import asyncio
import io
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from secrets import token_urlsafe
from typing import Annotated
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.api import AppState, create_app
from brokerlink.auth import AuthService
from brokerlink.cli._serve import serve_in_background
from brokerlink.cli.demo_output import console as _console
from brokerlink.cli.demo_output import render
from brokerlink.composition import embedded_sandboxes, open_services
from brokerlink.config import Settings, get_settings
from brokerlink.connections import LinkResult, LinkService, LinkStart
from brokerlink.connections.routes import link_service
from brokerlink.db import migrate
from brokerlink.domain import Provider
from brokerlink.log import configure_logging
from brokerlink.models import Account, Connection
from brokerlink.portfolio.consolidate import AnalysisLine
from brokerlink.portfolio.service import ConsolidationSummary, PortfolioService
from brokerlink.repositories import (
    AccountRepository,
    PortfolioRepository,
    PositionRepository,
    UserRepository,
)
from brokerlink.secrets import SecretStore
from brokerlink.sync import SyncSummary
from brokerlink.webhooks.urls import webhook_url

__all__ = [
    "DemoResult",
    "PortalError",
    "approve_in_portal",
    "demo",
    "link_in_browser",
    "log_in_hosted_link",
    "run_demo",
]

DEMO_EMAIL = "demo@brokerlink.invalid"
DEMO_INSTITUTIONS = ("Charles Schwab", "Fidelity", "Chase")
# Where the portal sends the "browser" when it is done; the demo reads the redirect, never loads it.
DEMO_REDIRECT = "http://127.0.0.1/demo/connected"


class PortalError(RuntimeError):
    """The connection portal did not complete a connection."""


@dataclass
class LinkedInstitution:
    institution: str
    provider: Provider
    reason: str
    connection: Connection
    accounts: list[Account]


@dataclass
class DemoResult:
    database: str
    email: str = DEMO_EMAIL
    password: str = ""
    url: str | None = None
    snaptrade_url: str | None = None
    plaid_url: str | None = None
    links: list[LinkedInstitution] = field(default_factory=list)
    sync: SyncSummary | None = None
    consolidation: ConsolidationSummary | None = None
    analysis: dict[str, AnalysisLine] = field(default_factory=dict)
    positions_per_account: dict[int, int] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """Collects the first POST form of a page: its action and its named inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._done and a.get("method", "get").lower() == "post":
            self._in_form = True
            self.action = a.get("action", "")
        elif self._in_form and tag in ("input", "button") and a.get("name"):
            if tag == "input" and a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            if tag == "button" and a["name"] in self.fields:
                return  # the first submit button is the one a user presses to approve
            self.fields.setdefault(a["name"], a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self._in_form:
            self._in_form = False
            self._done = True


async def approve_in_portal(browser: httpx.AsyncClient, url: str, broker: str) -> str:
    """Open the portal URL, approve `broker`, and return the connection id from the redirect."""
    page = await browser.get(url)
    if page.status_code != 200:
        raise PortalError(f"portal page answered {page.status_code}")
    form = _FormParser()
    form.feed(page.text)
    if form.action is None:
        raise PortalError("portal page has no approval form")
    data = {**form.fields, "broker": broker}
    answer = await browser.post(urljoin(str(page.url), form.action), data=data)
    location = answer.headers.get("location")
    if answer.status_code not in (302, 303) or not location:
        raise PortalError(f"portal approval answered {answer.status_code} without a redirect")
    params = parse_qs(urlsplit(location).query)
    if params.get("status") != ["SUCCESS"] or not params.get("connection_id"):
        raise PortalError(f"portal redirected without a connection: {location}")
    return str(params["connection_id"][0])


async def log_in_hosted_link(browser: httpx.AsyncClient, url: str) -> None:
    """Open Plaid's Hosted Link page and log in with the sandbox's test credentials."""
    page = await browser.get(url)
    if page.status_code != 200:
        raise PortalError(f"Hosted Link page answered {page.status_code}")
    form = _FormParser()
    form.feed(page.text)
    data = {**form.fields, "username": "user_good", "password": "pass_good"}
    answer = await browser.post(urljoin(str(page.url), form.action or ""), data=data)
    if answer.status_code not in (200, 303):
        raise PortalError(f"Hosted Link login answered {answer.status_code}")


async def link_in_browser(
    links: LinkService,
    browser: httpx.AsyncClient,
    user_id: int,
    institution: str,
    *,
    redirect_uri: str,
    need_trading: bool = False,
) -> tuple[LinkStart, LinkResult]:
    """Link `institution` the way a user does: start, go through the provider's own page
    (SnapTrade's portal or Plaid's Hosted Link) in `browser`, complete. The caller commits."""
    start = await links.start(
        user_id, institution, need_trading=need_trading, redirect_uri=redirect_uri
    )
    if start.provider is Provider.SNAPTRADE:
        broker = start.decision.provider_institution_id or ""
        auth_id = await approve_in_portal(browser, start.url, broker)
        linked = await links.complete_snaptrade(
            user_id, authorization_id=auth_id, institution=institution
        )
    else:
        await log_in_hosted_link(browser, start.url)
        linked = await links.complete_plaid(
            user_id, institution=institution, link_token=start.link_token
        )
    return start, linked


async def _fresh_demo_user(
    sessionmaker: async_sessionmaker[AsyncSession], secrets: SecretStore, password: str
) -> int:
    """Remove the previous run's demo user (and their stored secrets); create a new one."""
    async with sessionmaker() as session:
        users = UserRepository.from_session(session)
        old = await users.get_by_email(DEMO_EMAIL)
        if old is not None:
            for prefix in (f"snaptrade/user_secret/{old.id}/", f"plaid/access_token/{old.id}/"):
                for name in await secrets.list(prefix):
                    await secrets.delete(name)
            await session.delete(old)
            await session.flush()
        user = await AuthService(session).create_user(DEMO_EMAIL, password=password, name="Demo")
        await session.commit()
        return user.id


Serve = Callable[[DemoResult, AppState], Awaitable[None]]
_HOST = "127.0.0.1"


def _demo_port(port: int) -> int:
    """`port` if it is free, else any free one: the app's address is known before anything is
    linked, so that Plaid's Items are made with the demo's webhook address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((_HOST, port))
        except OSError:
            probe.bind((_HOST, 0))
        return int(probe.getsockname()[1])


async def _send_snaptrade_webhooks_to(
    browser: httpx.AsyncClient, snaptrade_url: str, app_url: str
) -> None:
    """Point the SnapTrade sandbox's webhooks at the app (SnapTrade's dashboard does this for
    the real service)."""
    url = webhook_url(app_url, Provider.SNAPTRADE)
    answer = await browser.put(f"{snaptrade_url}/sandbox/webhook", json={"url": url})
    answer.raise_for_status()


async def run_demo(settings: Settings | None = None, *, serve: Serve | None = None) -> DemoResult:
    """Run the whole flow against in-process sandboxes and the embedded store.

    With `serve`, the web app is then started on the same sandboxes and store, and `serve` is
    awaited with its URL in the result (the command prints the login and waits for Ctrl-C)."""
    settings = settings or get_settings()
    url = settings.database_url_resolved
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # The embedded mode migrates its own store (a deployment runs `brokerlink db upgrade`).
    await migrate.upgrade_async(url)
    app_url = f"http://{_HOST}:{_demo_port(settings.demo_port)}" if serve is not None else None
    async with (
        embedded_sandboxes() as (snap_url, plaid_url),
        open_services(
            settings,
            snaptrade_url=snap_url,
            plaid_url=plaid_url,
            sandbox=True,
            public_url=app_url,
        ) as services,
        httpx.AsyncClient(timeout=10) as browser,
    ):
        sessionmaker = services.sessionmaker
        result = DemoResult(
            database=services.engine.url.render_as_string(hide_password=True),
            # A new password each run, printed for the person at the keyboard; never stored.
            password=token_urlsafe(9),
            snaptrade_url=snap_url,
            plaid_url=plaid_url,
        )
        state = AppState.from_services(services)
        user_id = await _fresh_demo_user(sessionmaker, services.secrets, result.password)
        for institution in DEMO_INSTITUTIONS:
            async with sessionmaker() as session:
                start, linked = await link_in_browser(
                    link_service(state, session),
                    browser,
                    user_id,
                    institution,
                    redirect_uri=DEMO_REDIRECT,
                )
                await session.commit()
            result.links.append(
                LinkedInstitution(
                    institution,
                    start.provider,
                    start.decision.reason,
                    linked.connection,
                    linked.accounts,
                )
            )
        result.sync = await services.sync.sync_user(user_id)
        async with sessionmaker() as session:
            portfolios = PortfolioService(session)
            portfolio = await PortfolioRepository.from_session(session).get_or_create_default(
                user_id
            )
            result.consolidation = await portfolios.consolidate(portfolio.id, user_id=user_id)
            result.analysis = await portfolios.analysis(portfolio.id, user_id=user_id)
            accounts = AccountRepository.from_session(session)
            positions = PositionRepository.from_session(session)
            for link in result.links:
                refreshed = []
                for account in link.accounts:
                    fresh = await accounts.get(account.id)
                    assert fresh is not None
                    await session.refresh(fresh)
                    refreshed.append(fresh)
                    held = await positions.list_for_account(fresh.id)
                    result.positions_per_account[fresh.id] = len(held)
                link.accounts = refreshed
            await session.commit()
        if serve is not None:
            try:
                assert app_url is not None
                async with serve_in_background(
                    create_app(state, max_body_bytes=settings.max_body_bytes),
                    host=_HOST,
                    port=int(app_url.rsplit(":", 1)[1]),
                    any_port_if_busy=True,
                ) as served_url:
                    state.public_url = served_url
                    result.url = served_url
                    if snap_url is not None:
                        await _send_snaptrade_webhooks_to(browser, snap_url, served_url)
                    await serve(result, state)
            finally:
                await state.syncs.close()
    return result


async def _until_stopped() -> None:
    """Until SIGINT or SIGTERM. Installed after the servers started, so it replaces theirs."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _wait_forever(result: DemoResult, state: AppState) -> None:
    console = _console()
    console.print(
        f"\n[bold green]brokerlink is running at {result.url}[/bold green]\n"
        f"  sign in as [bold]{result.email}[/bold] with password [bold]{result.password}[/bold]\n"
        f"  API docs: {result.url}/docs\n"
        f"  SnapTrade sandbox: {result.snaptrade_url}    Plaid sandbox: {result.plaid_url}\n"
        f"  sync the demo's store from another shell while this runs:\n"
        f"    brokerlink sync --snaptrade-url {result.snaptrade_url} "
        f"--plaid-url {result.plaid_url}\n"
        f"  the sandboxes send their webhooks to {result.url}/webhooks/snaptrade and "
        f"{result.url}/webhooks/plaid\n"
        "  Ctrl-C (or SIGTERM) stops it",
        soft_wrap=True,
    )
    await _until_stopped()
    console.print("brokerlink demo stopped")


def demo(
    log_level: Annotated[str, typer.Option(help="Log level for provider calls.")] = "WARNING",
    serve: Annotated[
        bool, typer.Option(help="Then serve the web app on the sandboxes until Ctrl-C.")
    ] = True,
) -> None:
    """Link Schwab, Fidelity and Chase on the offline sandboxes, sync, show the portfolio,
    then open the web app on the same sandboxes with a demo login."""
    settings = get_settings()
    if isinstance(sys.stdout, io.TextIOWrapper):
        # Each line out at once: a log line (stderr) is never written inside a table.
        sys.stdout.reconfigure(line_buffering=True)
    configure_logging(log_level, json=settings.log_json)
    console = _console()
    if settings.snaptrade_live:
        console.print(
            "[yellow]SnapTrade credentials are set in the environment; the demo still runs on "
            "the offline sandboxes and never calls the real services.[/yellow]"
        )

    async def show_then_wait(result: DemoResult, state: AppState) -> None:
        render(result, console)
        await _wait_forever(result, state)

    try:
        result = asyncio.run(run_demo(settings, serve=show_then_wait if serve else None))
    except PortalError as exc:
        console.print(f"[red]A provider's connection page failed: {exc}[/red]")
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        return
    if not serve:
        render(result, console)
    if result.sync is None or result.sync.connections_failed:
        raise typer.Exit(1)
