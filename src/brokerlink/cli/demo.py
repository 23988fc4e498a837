"""`brokerlink demo`: the main job on the embedded defaults.

Starts the SnapTrade sandbox in-process on a loopback port, registers a demo user, connects Schwab
and Fidelity through the sandbox's connection portal (the same redirect flow a browser follows),
and prints the accounts and positions that came back.
"""

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from typing import Annotated
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import typer
from rich.console import Console
from rich.table import Table

from brokerlink.cli._serve import serve_in_background
from brokerlink.cli.sandbox import SANDBOX_CLIENT_ID, SANDBOX_CONSUMER_KEY
from brokerlink.config import get_settings
from brokerlink.domain import AccountSummary, InstrumentKind, Position
from brokerlink.log import configure_logging
from brokerlink.providers.snaptrade import (
    InMemoryUserSecretStore,
    SnapTradeClient,
    SnapTradeConnector,
)

__all__ = ["DemoResult", "PortalError", "demo", "run_demo"]

DEMO_USER = "demo-user"
DEMO_BROKERS = ("SCHWAB", "FIDELITY")
# Where the portal sends the "browser" when it is done; the demo reads the redirect, never loads it.
DEMO_REDIRECT = "http://127.0.0.1/demo/connected"


class PortalError(RuntimeError):
    """The connection portal did not complete a connection."""


@dataclass
class DemoResult:
    base_url: str
    connection_ids: dict[str, str] = field(default_factory=dict)
    accounts: list[AccountSummary] = field(default_factory=list)
    positions: dict[str, list[Position]] = field(default_factory=dict)


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


async def run_demo() -> DemoResult:
    """Run the whole flow against an in-process sandbox and return what it produced."""
    from brokerlink.sandbox.snaptrade import create_app

    sandbox = create_app(client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY)
    async with serve_in_background(sandbox) as base_url:
        result = DemoResult(base_url=base_url)
        async with (
            SnapTradeClient(
                client_id=SANDBOX_CLIENT_ID,
                consumer_key=SANDBOX_CONSUMER_KEY,
                base_url=base_url,
            ) as client,
            httpx.AsyncClient(timeout=10) as browser,
        ):
            connector = SnapTradeConnector(client, InMemoryUserSecretStore())
            await connector.register_user(DEMO_USER)
            for broker in DEMO_BROKERS:
                link = await connector.connection_link(
                    DEMO_USER,
                    broker=broker,
                    connection_type="trade-if-available",
                    custom_redirect=DEMO_REDIRECT,
                )
                result.connection_ids[broker] = await approve_in_portal(browser, link, broker)
            result.accounts = await connector.list_accounts(DEMO_USER)
            holdings = await asyncio.gather(
                *(connector.get_holdings(DEMO_USER, a.account_id) for a in result.accounts)
            )
            for account, positions in zip(result.accounts, holdings, strict=True):
                result.positions[account.account_id] = positions
    return result


def _money(value: Decimal | None, places: int = 2) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


def _quantity(value: Decimal) -> str:
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return text or "0"


def render(result: DemoResult, console: Console) -> None:
    accounts = Table(title="Accounts connected through SnapTrade (sandbox)", title_justify="left")
    for column in ("Institution", "Account", "Number", "Type", "Trading", "Value", "Ccy"):
        accounts.add_column(column, justify="right" if column == "Value" else "left")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for a in result.accounts:
        accounts.add_row(
            a.institution_name,
            a.name or "—",
            a.number_mask or "—",
            a.type.value,
            "yes" if a.capabilities.trading else "no",
            _money(a.total_value),
            a.currency or "—",
        )
    console.print(accounts)
    for a in result.accounts:
        table = Table(
            title=f"{a.institution_name} · {a.name or a.account_id}", title_justify="left"
        )
        for column in ("Symbol", "Kind", "Quantity", "Price", "Market value", "Cost basis", "Ccy"):
            right = column in ("Quantity", "Price", "Market value", "Cost basis")
            table.add_column(column, justify="right" if right else "left")
        for p in result.positions.get(a.account_id, []):
            if p.market_value is not None:
                totals[p.currency] += p.market_value
            name = p.instrument.symbol or p.instrument.name or "?"
            if p.instrument.kind is InstrumentKind.OPTION and p.instrument.name:
                name = f"{name} ({p.instrument.name})"
            table.add_row(
                name,
                p.instrument.kind.value,
                _quantity(p.quantity),
                _money(p.price, 4) if p.instrument.kind is not InstrumentKind.CASH else "—",
                _money(p.market_value),
                _money(p.cost_basis),
                p.currency,
            )
        console.print(table)
    summary = ", ".join(f"{ccy} {_money(v)}" for ccy, v in sorted(totals.items()))
    positions = sum(len(v) for v in result.positions.values())
    console.print(
        f"[bold]{len(result.accounts)} accounts, {positions} positions[/bold] "
        f"from {len(result.connection_ids)} connections; market value by currency: {summary}"
    )


def demo(
    log_level: Annotated[str, typer.Option(help="Log level for provider calls.")] = "WARNING",
) -> None:
    """Connect Schwab and Fidelity through the offline SnapTrade sandbox and list positions."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
    console = Console()
    if settings.snaptrade_live:
        console.print(
            "[yellow]SnapTrade credentials are set in the environment; the demo still runs on "
            "the offline sandbox and never calls the real service.[/yellow]"
        )
    try:
        result = asyncio.run(run_demo())
    except PortalError as exc:
        console.print(f"[red]The connection portal failed: {exc}[/red]")
        raise typer.Exit(1) from exc
    render(result, console)
