"""`brokerlink serve`: the HTTP API and web app.

Real credentials in the environment select the real providers. Without them, `--sandboxes`
starts both offline sandboxes in the same process (the embedded default the demo uses), or
`--snaptrade-url` / `--plaid-url` point at sandboxes already running.

Only `--sandboxes` migrates the store. Otherwise `serve` refuses to start (exit status 2, saying
what to run) on a database behind head, and, on the real providers, without
`BROKERLINK_LINK_STATE_KEY`: replicas share the database and the key, never run migrations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from brokerlink.cli._options import LogLevel, PlaidUrl, SnapTradeUrl
from brokerlink.cli._serve import tcp_socket
from brokerlink.composition import embedded_sandboxes, require_link_state_key
from brokerlink.config import Settings, get_settings
from brokerlink.db import migrate
from brokerlink.errors import ConfigurationError
from brokerlink.log import configure_logging

__all__ = ["serve"]


@contextlib.asynccontextmanager
async def _sandboxes(start: bool) -> AsyncIterator[tuple[str | None, str | None]]:
    if not start:
        yield None, None
        return
    async with embedded_sandboxes() as urls:
        yield urls


def _refusal(settings: Settings, sandboxes: bool) -> ConfigurationError | None:
    """Why this process must not start, or None. Outside the embedded mode the store must be
    at head (migrations run from `brokerlink db upgrade` only, so replicas never race) and,
    on the real providers, the link-state key must be shared by every replica."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if sandboxes:
        return None
    try:
        require_link_state_key(settings)
        migrate.check_at_head(settings.database_url_resolved)
    except ConfigurationError as refused:
        return refused
    return None


async def _serve(
    settings: Settings,
    host: str,
    port: int,
    sandboxes: bool,
    snaptrade_url: str | None,
    plaid_url: str | None,
    console: Console,
) -> None:
    url = settings.database_url_resolved
    if sandboxes:
        # The embedded mode migrates its own store; any other start only checks (`_refusal`).
        await migrate.upgrade_async(url)
    # Imported here: the web stack stays out of the other commands' start-up.
    from brokerlink.api import create_app

    async with _sandboxes(sandboxes) as (snap, plaid):
        sock = tcp_socket()
        sock.bind((host, port))
        base = settings.public_url or f"http://{host}:{sock.getsockname()[1]}"
        app = create_app(
            settings=settings,
            snaptrade_url=snaptrade_url or snap,
            plaid_url=plaid_url or plaid,
            public_url=base,
            sandbox=sandboxes,
        )
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        console.print(f"brokerlink at {base} (API docs at {base}/docs); store: {url}")
        await server.serve(sockets=[sock])


def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (0: any free one).")] = None,
    sandboxes: Annotated[
        bool, typer.Option(help="Start both offline sandboxes in-process and use them.")
    ] = False,
    snaptrade_url: SnapTradeUrl = None,
    plaid_url: PlaidUrl = None,
    log_level: LogLevel = "INFO",
) -> None:
    """Serve the HTTP API and the web app."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
    refused = _refusal(settings, sandboxes)
    if refused is not None:
        Console(stderr=True).print(
            f"brokerlink serve cannot start: {refused.message}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(
                settings,
                host or settings.host,
                settings.port if port is None else port,
                sandboxes,
                snaptrade_url,
                plaid_url,
                Console(),
            )
        )
