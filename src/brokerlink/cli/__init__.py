"""The `brokerlink` command line (Typer). Settings are read here, at the edge."""

import typer

from brokerlink.cli.db import db_app
from brokerlink.cli.sandbox import sandbox_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="brokerlink",
    help="Brokerage and bank accounts through SnapTrade and Plaid, behind one interface.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(sandbox_app, name="sandbox")


def main() -> None:
    app()
