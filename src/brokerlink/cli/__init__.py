"""The `brokerlink` command line (Typer). Settings are read here, at the edge."""

from typing import Annotated

import typer

from brokerlink.cli.db import db_app
from brokerlink.cli.institutions import institutions
from brokerlink.cli.sandbox import sandbox_app
from brokerlink.cli.serve import serve
from brokerlink.cli.sync import sync
from brokerlink.cli.users import tokens_app, users_app
from brokerlink.cli.worker import beat, worker

__all__ = ["app", "main"]

app = typer.Typer(
    name="brokerlink",
    help="Brokerage and bank accounts through SnapTrade and Plaid, behind one interface.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")
app.command("institutions")(institutions)
app.command("sync")(sync)
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.command("serve")(serve)
app.command("worker")(worker)
app.command("beat")(beat)


@app.command("demo")
def demo(
    log_level: Annotated[str, typer.Option(help="Log level for provider calls.")] = "WARNING",
    serve: Annotated[
        bool, typer.Option(help="Then serve the web app on the sandboxes until Ctrl-C.")
    ] = True,
) -> None:
    """Link Schwab, Fidelity and Chase on the offline sandboxes, sync, show the portfolio, then
    serve the web app on them with a demo login."""
    # Imported on use: the provider clients stay out of `brokerlink sandbox`/`db` start-up.
    from brokerlink.cli.demo import demo as run_demo_command

    run_demo_command(log_level=log_level, serve=serve)


def main() -> None:
    app()
