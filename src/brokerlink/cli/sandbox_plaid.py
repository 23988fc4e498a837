"""`brokerlink sandbox plaid`: serve the offline Plaid emulator on loopback."""

from typing import Annotated

import typer

from brokerlink.sandbox_ids import PLAID_SANDBOX_CLIENT_ID, PLAID_SANDBOX_SECRET

__all__ = ["PLAID_SANDBOX_CLIENT_ID", "PLAID_SANDBOX_SECRET", "plaid"]


def plaid(
    host: Annotated[str, typer.Option(help="Interface to bind (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port.")] = 8766,
    client_id: Annotated[
        str, typer.Option(help="The one client_id accepted.")
    ] = PLAID_SANDBOX_CLIENT_ID,
    secret: Annotated[str, typer.Option(help="The one secret accepted.")] = PLAID_SANDBOX_SECRET,
    product_ready_delay: Annotated[
        float, typer.Option(help="Seconds a new Item answers PRODUCT_NOT_READY on investments.")
    ] = 0.5,
    rate_limits: Annotated[
        bool, typer.Option(help="Enforce Plaid's published per-Item and per-client limits.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the Plaid sandbox; point plaid-python at it with `host=http://HOST:PORT`.

    `GET /sandbox-admin/status` answers once it is ready. Link with user_good / pass_good.
    """
    import uvicorn

    from brokerlink.sandbox.plaid import create_app

    application = create_app(
        client_id=client_id,
        secret=secret,
        product_ready_delay=product_ready_delay,
        rate_limits=None if rate_limits else {},
    )
    typer.echo(f"Plaid sandbox on http://{host}:{port} (client_id {client_id})", err=True)
    uvicorn.run(application, host=host, port=port, log_level=log_level)
