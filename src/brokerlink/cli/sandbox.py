"""`brokerlink sandbox …`: serve the offline provider emulators on loopback."""

from datetime import time
from typing import Annotated

import typer

from brokerlink.cli.sandbox_plaid import plaid
from brokerlink.sandbox_ids import SANDBOX_CLIENT_ID, SANDBOX_CONSUMER_KEY

__all__ = ["SANDBOX_CLIENT_ID", "SANDBOX_CONSUMER_KEY", "sandbox_app"]


sandbox_app = typer.Typer(help="Run the offline provider emulators.", no_args_is_help=True)


@sandbox_app.command("snaptrade")
def snaptrade(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
    client_id: Annotated[str, typer.Option(help="The one clientId accepted.")] = SANDBOX_CLIENT_ID,
    consumer_key: Annotated[
        str, typer.Option(help="The one consumer key accepted.")
    ] = SANDBOX_CONSUMER_KEY,
    rate_limit: Annotated[
        int, typer.Option(help="Requests per rolling minute per clientId; 0 turns the limit off.")
    ] = 250,
    rate_window: Annotated[
        float,
        typer.Option(
            help="Seconds the rate limit counts over (60 like the service; less scales "
            "a benchmark down)."
        ),
    ] = 60.0,
    daily_sync_at: Annotated[
        str | None,
        typer.Option(
            help="SnapTrade's daily sync at this UTC time (HH:MM): every account re-dated and "
            "announced by an ACCOUNT_HOLDINGS_UPDATED webhook. Unset: only on "
            "POST /sandbox/daily-sync."
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the SnapTrade sandbox. `GET /` answers the status object once it is ready."""
    import uvicorn

    from brokerlink.sandbox.snaptrade import SandboxState, create_app

    try:
        at = None if daily_sync_at is None else time.fromisoformat(daily_sync_at)
    except ValueError:
        raise typer.BadParameter("use HH:MM (UTC)", param_hint="--daily-sync-at") from None
    state = SandboxState(client_id, consumer_key, rate_limit=rate_limit, rate_window=rate_window)
    application = create_app(
        client_id=client_id,
        consumer_key=consumer_key,
        rate_limit=rate_limit,
        state=state,
        daily_sync_at=at,
    )
    typer.echo(f"SnapTrade sandbox on http://{host}:{port} (clientId {client_id})", err=True)
    uvicorn.run(application, host=host, port=port, log_level=log_level)


sandbox_app.command("plaid")(plaid)
