"""`brokerlink db upgrade|downgrade|current|stamp`: the store's migrations.

The database is `--url`, else `BROKERLINK_DATABASE_URL`, else an SQLite file under the data dir.
"""

from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from brokerlink.db import migrate

__all__ = ["db_app"]

db_app = typer.Typer(help="Migrate the store (SQLite or PostgreSQL).", no_args_is_help=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url", help="SQLAlchemy URL (default: BROKERLINK_DATABASE_URL or the SQLite file)."
    ),
]


def _resolve(url: str | None) -> str:
    if url is None:
        from brokerlink.config import get_settings

        url = get_settings().database_url_resolved
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return url


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@db_app.command("upgrade")
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    url: UrlOption = None,
) -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    resolved = _resolve(url)
    migrate.upgrade(resolved, revision)
    typer.echo(f"{_shown(resolved)}: at {', '.join(migrate.current(resolved)) or 'base'}")


@db_app.command("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")],
    url: UrlOption = None,
) -> None:
    """Migrate the database down to REVISION."""
    resolved = _resolve(url)
    migrate.downgrade(resolved, revision)
    typer.echo(f"{_shown(resolved)}: at {', '.join(migrate.current(resolved)) or 'base'}")


@db_app.command("current")
def current(url: UrlOption = None) -> None:
    """Print the revision the database is at, and whether it is the latest."""
    resolved = _resolve(url)
    revisions = migrate.current(resolved)
    latest = set(revisions) == set(migrate.heads())
    typer.echo(f"{', '.join(revisions) or 'base'}{' (head)' if latest else ''}")


@db_app.command("stamp")
def stamp(
    revision: Annotated[str, typer.Argument(help="Revision to record, e.g. 0001 (legacy).")],
    url: UrlOption = None,
) -> None:
    """Record REVISION as applied without running it (adopt a portfolio-app database)."""
    resolved = _resolve(url)
    migrate.stamp(resolved, revision)
    typer.echo(f"{_shown(resolved)}: stamped {revision}")
