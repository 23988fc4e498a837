"""`brokerlink sync`: every connection (or one user's) into the store, with progress.

A provider the connections need but the run has no way to reach (no credentials in the
environment, no `--snaptrade-url` / `--plaid-url`) is refused before anything is synced, with
what to set (exit status 2): nothing is fetched and no account's freshness changes. Each row
names the connection by its institution.
"""

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.cli._options import LogLevel, PlaidUrl, SnapTradeUrl
from brokerlink.composition import Connectors, open_services
from brokerlink.config import Settings, get_settings
from brokerlink.db import migrate
from brokerlink.domain.enums import Provider
from brokerlink.log import configure_logging
from brokerlink.repositories import ConnectionRepository
from brokerlink.routing.router import provider_for_account
from brokerlink.sync import ConnectionOutcome, Scheduler, SyncSchedule, SyncSummary
from brokerlink.sync.jobs import JobRunner
from brokerlink.sync.schedule import Claim

__all__ = ["sync"]


# What to set, per provider, when a run cannot reach it.
HOW_TO_CONFIGURE = {
    Provider.SNAPTRADE: (
        "set SNAPTRADE_CLIENT_ID and SNAPTRADE_CONSUMER_KEY for the real service, or pass "
        "--snaptrade-url with a running SnapTrade sandbox (`make demo` prints its address)"
    ),
    Provider.PLAID: (
        "set PLAID_CLIENT_ID and PLAID_SECRET for the real service, or pass --plaid-url with a "
        "running Plaid sandbox (`make demo` prints its address)"
    ),
}


class NotConfigured(Exception):
    """Connections need providers this run cannot reach; nothing was synced."""

    def __init__(self, missing: dict[Provider, int]) -> None:
        self.missing = missing
        super().__init__(
            "; ".join(f"{n} connection(s) at {p.value}" for p, n in sorted(missing.items()))
        )


async def _connections(
    sessionmaker: async_sessionmaker[AsyncSession], user: int | None
) -> dict[int, tuple[Provider, str]]:
    """The connections a run syncs: provider and institution name, by id."""
    async with sessionmaker() as session:
        found = await ConnectionRepository.from_session(session).list_syncable(user)
    return {c.id: (provider_for_account(c.provider), c.institution_name) for c in found}


def _check_configured(connections: dict[int, tuple[Provider, str]], available: Connectors) -> None:
    configured = available.by_provider()
    missing: dict[Provider, int] = {}
    for provider, _name in connections.values():
        if provider not in configured:
            missing[provider] = missing.get(provider, 0) + 1
    if missing:
        raise NotConfigured(missing)


def refusal(error: NotConfigured) -> str:
    """What the person reads when the run is refused: what is missing and what to set."""
    lines = ["Nothing was synced: the connections need a provider this run cannot reach."]
    for provider, count in sorted(error.missing.items()):
        noun = "connection is" if count == 1 else "connections are"
        lines.append(f"  {count} {noun} at {provider.value}: {HOW_TO_CONFIGURE[provider]}.")
    lines.append("No account was changed.")
    return "\n".join(lines)


async def _watch(
    settings: Settings,
    snaptrade_url: str | None,
    plaid_url: str | None,
    console: Console,
    tick: float,
    runs: int | None,
) -> None:
    """The scheduler: sync whoever is due, every `tick` seconds."""
    await migrate.check_at_head_async(settings.database_url_resolved)
    async with open_services(
        settings, snaptrade_url=snaptrade_url, plaid_url=plaid_url
    ) as services:
        connectors = services.connectors
        connections = await _connections(services.sessionmaker, None)
        _check_configured(connections, connectors)
        named = {cid: name for cid, (_p, name) in connections.items()}
        schedule = SyncSchedule.from_settings(settings)
        console.print(
            f"providers: {connectors.describe()}; intervals: "
            + ", ".join(f"{p.value} {i}" for p, i in schedule.intervals.items())
        )
        runner = JobRunner(services.sync, schedule)

        async def run_claims(claims: list[Claim]) -> None:
            render(await runner.run_claims(claims), console, named)

        await Scheduler(services.sessionmaker, schedule, run_claims).run(
            tick_seconds=tick, runs=runs
        )


async def _run(
    settings: Settings,
    user: int | None,
    snaptrade_url: str | None,
    plaid_url: str | None,
    console: Console,
) -> tuple[SyncSummary, dict[int, str]]:
    await migrate.check_at_head_async(settings.database_url_resolved)
    async with open_services(
        settings, snaptrade_url=snaptrade_url, plaid_url=plaid_url
    ) as services:
        connectors = services.connectors
        connections = await _connections(services.sessionmaker, user)
        _check_configured(connections, connectors)
        console.print(f"providers: {connectors.describe()}; store: {services.engine.url}")
        total = len(connections)
        named = {cid: name for cid, (_p, name) in connections.items()}
        with Progress(
            TextColumn("[bold]sync"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("connections"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("sync", total=total)

            def advance(_outcome: ConnectionOutcome) -> None:
                progress.advance(task)

            engine_ = services.sync_engine(on_connection=advance)
            if user is None:
                return await engine_.sync_all(), named
            return await engine_.sync_user(user), named


def render(summary: SyncSummary, console: Console, names: dict[int, str] | None = None) -> None:
    """A row per connection, named by its institution (and its id), then the totals."""
    names = names or {}
    table = Table(title="Connections", title_justify="left")
    for column in ("Institution", "Provider", "Result", "Accounts", "Positions", "Error"):
        table.add_column(column, overflow="fold")
    for c in summary.connections:
        result = (
            "skipped"
            if c.skipped
            else ("ok" if c.ok else ("reconnect needed" if c.broken else "failed"))
        )
        name = names.get(c.connection_id)
        table.add_row(
            f"{name} (#{c.connection_id})" if name else f"connection #{c.connection_id}",
            c.provider.value,
            result,
            f"{sum(1 for a in c.accounts if a.ok)}/{len(c.accounts)}",
            str(sum(a.positions for a in c.accounts)),
            c.error or "",
        )
    console.print(table)
    console.print(
        f"[bold]{summary.connections_ok} ok, {summary.connections_failed} failed[/bold]; "
        f"{summary.accounts_synced} accounts, {summary.positions_written} positions written; "
        f"{summary.provider_calls} provider calls ({summary.calls_per_account:.1f} per account) "
        f"in {summary.seconds:.2f} s"
    )


def sync(
    user: Annotated[int | None, typer.Option(help="Only this user's connections.")] = None,
    snaptrade_url: SnapTradeUrl = None,
    plaid_url: PlaidUrl = None,
    watch: Annotated[
        bool, typer.Option(help="Keep running: sync each connection when its interval is due.")
    ] = False,
    tick: Annotated[float, typer.Option(help="With --watch: seconds between checks.")] = 60.0,
    runs: Annotated[
        int | None, typer.Option(help="With --watch: stop after this many checks.")
    ] = None,
    log_level: LogLevel = "WARNING",
) -> None:
    """Sync accounts and positions from the providers into the store."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
    console = Console()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        if watch:
            asyncio.run(_watch(settings, snaptrade_url, plaid_url, console, tick, runs))
            return
        summary, named = asyncio.run(_run(settings, user, snaptrade_url, plaid_url, console))
    except NotConfigured as error:
        Console(stderr=True).print(refusal(error), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except migrate.DatabaseNotAtHead as error:
        Console(stderr=True).print(error.message, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    render(summary, console, named)
    if summary.connections_failed:
        raise typer.Exit(1)
