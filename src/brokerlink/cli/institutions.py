"""`brokerlink institutions`: the coverage map in force and where each institution would open."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from brokerlink.config import get_settings
from brokerlink.routing import CoverageRegistry, LinkRouter, ProviderFlags
from brokerlink.routing.router import NoProviderAvailable

__all__ = ["institutions"]


def institutions(
    trading: Annotated[bool, typer.Option(help="Route as if the user needs trading.")] = False,
    file: Annotated[
        Path | None, typer.Option(help="A coverage file to check (default: the setting).")
    ] = None,
    popular: Annotated[bool, typer.Option(help="Only the popular institutions.")] = False,
) -> None:
    """List the institutions, the provider each opens with, and why."""
    settings = get_settings()
    console = Console()
    registry = CoverageRegistry.start(file or settings.coverage_file)
    if registry.last_error is not None:
        console.print(
            f"[red]coverage file rejected:[/red] {registry.last_error.message}\n"
            f"[yellow]using {registry.current.source}[/yellow]"
        )
    router = LinkRouter(
        registry.current,
        ProviderFlags(
            enable_snaptrade=settings.enable_snaptrade,
            snaptrade_admin_only=settings.snaptrade_admin_only,
        ),
    )
    entries = registry.current.popular() if popular else list(registry.current.entries)
    table = Table(title=f"Institutions ({registry.current.source})")
    for column in ("Institution", "Type", "Opens with", "Trading", "Why"):
        table.add_column(column)
    for entry in entries:
        try:
            decision = router.choose_provider(entry.slug, trading)
        except NoProviderAvailable as unavailable:
            # Not offered right now (its provider is off and it has no fallback): say why.
            table.add_row(entry.name, entry.type, "none", "no", unavailable.message)
            continue
        table.add_row(
            entry.name,
            entry.type,
            decision.provider.value,
            "possible" if decision.trading_possible else "no",
            decision.reason,
        )
    console.print(table)
    if registry.last_error is not None:
        raise typer.Exit(code=1)
