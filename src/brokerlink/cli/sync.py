"""`brokerlink sync`: every connection (or one user's) into the store, with progress."""

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.config import Settings, get_settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.log import configure_logging
from brokerlink.repositories import ConnectionRepository
from brokerlink.runtime import provider_connectors
from brokerlink.secrets import secret_store_from_settings
from brokerlink.sync import ConnectionOutcome, Scheduler, SyncEngine, SyncSchedule, SyncSummary

__all__ = ["sync"]


async def _count(sessionmaker: async_sessionmaker[AsyncSession], user: int | None) -> int:
    async with sessionmaker() as session:
        return len(await ConnectionRepository.from_session(session).list_syncable(user))


async def _watch(
    settings: Settings,
    snaptrade_url: str | None,
    plaid_url: str | None,
    console: Console,
    tick: float,
    runs: int | None,
) -> None:
    """The scheduler: sync whoever is due, every `tick` seconds."""
    url = settings.database_url_resolved
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    secrets = secret_store_from_settings(settings, sessionmaker=sessionmaker)
    try:
        async with provider_connectors(
            settings, secrets, snaptrade_url=snaptrade_url, plaid_url=plaid_url
        ) as connectors:
            schedule = SyncSchedule.from_settings(settings)
            console.print(
                f"providers: {connectors.describe()}; intervals: "
                + ", ".join(f"{p.value} {i}" for p, i in schedule.intervals.items())
            )
            scheduler = Scheduler(
                SyncEngine(sessionmaker, connectors.by_provider()), sessionmaker, schedule
            )
            await scheduler.run(
                tick_seconds=tick, runs=runs, on_run=lambda summary: render(summary, console)
            )
    finally:
        await engine.dispose()


async def _run(
    settings: Settings,
    user: int | None,
    snaptrade_url: str | None,
    plaid_url: str | None,
    console: Console,
) -> SyncSummary:
    url = settings.database_url_resolved
    await migrate.upgrade_async(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    secrets = secret_store_from_settings(settings, sessionmaker=sessionmaker)
    try:
        async with provider_connectors(
            settings, secrets, snaptrade_url=snaptrade_url, plaid_url=plaid_url
        ) as connectors:
            console.print(f"providers: {connectors.describe()}; store: {engine.url}")
            total = await _count(sessionmaker, user)
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

                engine_ = SyncEngine(sessionmaker, connectors.by_provider(), on_connection=advance)
                if user is None:
                    return await engine_.sync_all()
                return await engine_.sync_user(user)
    finally:
        await engine.dispose()


def render(summary: SyncSummary, console: Console) -> None:
    table = Table(title="Connections", title_justify="left")
    for column in ("Connection", "Provider", "Result", "Accounts", "Positions", "Error"):
        table.add_column(column)
    for c in summary.connections:
        result = (
            "skipped"
            if c.skipped
            else ("ok" if c.ok else ("reconnect needed" if c.broken else "failed"))
        )
        table.add_row(
            str(c.connection_id),
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
    snaptrade_url: Annotated[
        str | None, typer.Option(help="A running SnapTrade sandbox (when no credentials are set).")
    ] = None,
    plaid_url: Annotated[
        str | None, typer.Option(help="A running Plaid sandbox (when no credentials are set).")
    ] = None,
    watch: Annotated[
        bool, typer.Option(help="Keep running: sync each connection when its interval is due.")
    ] = False,
    tick: Annotated[float, typer.Option(help="With --watch: seconds between checks.")] = 60.0,
    runs: Annotated[
        int | None, typer.Option(help="With --watch: stop after this many checks.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "WARNING",
) -> None:
    """Sync accounts and positions from the providers into the store."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
    console = Console()
    if watch:
        asyncio.run(_watch(settings, snaptrade_url, plaid_url, console, tick, runs))
        return
    summary = asyncio.run(_run(settings, user, snaptrade_url, plaid_url, console))
    render(summary, console)
    if summary.connections_failed:
        raise typer.Exit(1)
