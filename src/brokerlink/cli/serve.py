"""`brokerlink serve`: the HTTP API and web app.

Real credentials in the environment select the real providers. Without them, `--sandboxes`
starts both offline sandboxes in the same process (the embedded default the demo uses), or
`--snaptrade-url` / `--plaid-url` point at sandboxes already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Annotated

import typer
import uvicorn
from rich.console import Console

from brokerlink.config import Settings, get_settings
from brokerlink.db import migrate
from brokerlink.log import configure_logging

__all__ = ["serve"]


@contextlib.asynccontextmanager
async def _sandboxes(start: bool) -> AsyncIterator[tuple[str | None, str | None]]:
    if not start:
        yield None, None
        return
    from brokerlink.cli._serve import serve_in_background
    from brokerlink.sandbox import plaid as plaid_sandbox
    from brokerlink.sandbox import snaptrade as snaptrade_sandbox
    from brokerlink.sandbox_ids import (
        PLAID_SANDBOX_CLIENT_ID,
        PLAID_SANDBOX_SECRET,
        SANDBOX_CLIENT_ID,
        SANDBOX_CONSUMER_KEY,
    )

    async with (
        serve_in_background(
            snaptrade_sandbox.create_app(
                client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY
            )
        ) as snap,
        serve_in_background(
            plaid_sandbox.create_app(client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET)
        ) as plaid,
    ):
        yield snap, plaid


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
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    await migrate.upgrade_async(url)
    # Imported here: the web stack stays out of the other commands' start-up.
    from brokerlink.api import create_app

    async with _sandboxes(sandboxes) as (snap, plaid):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        base = settings.public_url or f"http://{host}:{sock.getsockname()[1]}"
        app = create_app(
            settings=settings,
            snaptrade_url=snaptrade_url or snap,
            plaid_url=plaid_url or plaid,
            public_url=base,
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
    snaptrade_url: Annotated[
        str | None, typer.Option(help="A running SnapTrade sandbox (when no credentials are set).")
    ] = None,
    plaid_url: Annotated[
        str | None, typer.Option(help="A running Plaid sandbox (when no credentials are set).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "INFO",
) -> None:
    """Serve the HTTP API and the web app."""
    settings = get_settings()
    configure_logging(log_level, json=settings.log_json)
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
