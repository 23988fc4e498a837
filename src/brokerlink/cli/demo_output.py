"""What `brokerlink demo` prints: the connections, accounts, sync and portfolio tables.

Tables are as wide as they need when stdout is not a terminal (rich would cut them to 80
columns in a pipe or a file).
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from brokerlink.cli.demo import DemoResult

__all__ = ["console", "render"]


def _money(value: Decimal | None, places: int = 2) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


def _quantity(value: Decimal) -> str:
    text = f"{value:,.6f}".rstrip("0").rstrip(".")
    return text or "0"


def render(result: DemoResult, console: Console) -> None:
    links = Table(title="Connections (offline sandboxes)", title_justify="left")
    for column in ("Institution", "Provider", "Why"):
        links.add_column(column)
    for link in result.links:
        links.add_row(link.institution, link.provider.value, link.reason)
    console.print(links)

    accounts = Table(title="Accounts", title_justify="left")
    for column in (
        "Institution",
        "Account",
        "Mask",
        "Type",
        "Provider",
        "Trading",
        "Realtime",
        "Status",
        "Positions",
    ):
        accounts.add_column(column)
    for link in result.links:
        for a in link.accounts:
            accounts.add_row(
                link.connection.institution_name,
                a.name or a.provider_account_id,
                a.number_mask or "—",
                a.type.value,
                link.provider.value,
                "yes" if a.capabilities.trading else "no",
                "yes" if a.capabilities.realtime else "no",
                a.sync_status.value,
                str(result.positions_per_account.get(a.id, "—")),
            )
    console.print(accounts)

    if result.sync is not None:
        s = result.sync
        console.print(
            f"[bold]Sync:[/bold] {s.connections_ok} connections ok, {s.connections_failed} "
            f"failed; {s.accounts_synced} accounts, {s.positions_written} positions written; "
            f"{s.provider_calls} provider calls ({s.calls_per_account:.1f} per account) "
            f"in {s.seconds:.2f} s"
        )

    portfolio = Table(title="Consolidated portfolio (analysis view)", title_justify="left")
    for column in ("Ticker", "Shares", "Type", "Ccy", "Sources", "Metadata from"):
        portfolio.add_column(column, justify="right" if column == "Shares" else "left")
    for ticker, line in sorted(result.analysis.items()):
        label = f"{ticker} (cash)" if line.is_cash_proxy else ticker
        portfolio.add_row(
            label,
            _quantity(line.shares),
            line.type,
            line.currency,
            str(line.sources),
            line.provider.value,
        )
    console.print(portfolio)
    if result.consolidation is not None:
        c = result.consolidation
        cash = ", ".join(f"{ccy} {_money(v)}" for ccy, v in sorted(c.cash.items())) or "none"
        console.print(
            f"[bold]{c.positions} positions[/bold] from {', '.join(c.providers)}; "
            f"{c.superseded} superseded; cash {cash}; store {result.database}"
        )


def console() -> Console:
    """Full-width tables when stdout is a file or a pipe (rich would cut them to 80 columns)."""
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=200)
    return console
