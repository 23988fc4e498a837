"""Command-line options several commands share, declared once (serve, sync, worker, beat)."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["LogLevel", "PlaidUrl", "SnapTradeUrl"]

SnapTradeUrl = Annotated[
    str | None, typer.Option(help="A running SnapTrade sandbox (when no credentials are set).")
]
PlaidUrl = Annotated[
    str | None, typer.Option(help="A running Plaid sandbox (when no credentials are set).")
]
LogLevel = Annotated[str, typer.Option(help="Log level.")]
