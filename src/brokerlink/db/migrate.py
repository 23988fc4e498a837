"""Run the Alembic migrations from code (the CLI, the app, the tests).

The scripts ship inside the package (`brokerlink/migrations`), so this works from an installed
package as well as from the repository. Alembic itself is synchronous: the async engine's
connection is handed to it through `run_sync`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from brokerlink.db.session import create_engine
from brokerlink.errors import BrokerlinkError

__all__ = [
    "MIGRATIONS_DIR",
    "DatabaseNotAtHead",
    "check_at_head",
    "check_at_head_async",
    "current",
    "current_async",
    "downgrade",
    "downgrade_async",
    "heads",
    "make_config",
    "stamp",
    "stamp_async",
    "upgrade",
    "upgrade_async",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
FILE_TEMPLATE = "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s"


def make_config(url: str | URL | None = None) -> Config:
    """An Alembic config pointing at the packaged scripts (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("timezone", "UTC")
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(make_config()).get_heads())


async def _run(url: str | URL, fn: Any, *args: Any) -> Any:
    # foreign_keys off on SQLite: a batch rebuild drops and re-creates tables, and with the
    # pragma on, dropping a parent table would cascade into its children.
    engine = create_engine(url, foreign_keys=False, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(fn, *args)
    finally:
        await engine.dispose()


def _command(connection: Connection, name: str, revision: str) -> None:
    config = make_config()
    config.attributes["connection"] = connection
    getattr(command, name)(config, revision)


def _current(connection: Connection) -> tuple[str, ...]:
    return MigrationContext.configure(connection).get_current_heads()


async def upgrade_async(url: str | URL, revision: str = "head") -> None:
    await _run(url, _command, "upgrade", revision)


async def downgrade_async(url: str | URL, revision: str) -> None:
    await _run(url, _command, "downgrade", revision)


async def stamp_async(url: str | URL, revision: str) -> None:
    """Record `revision` as applied without running it (a legacy database: stamp 0001)."""
    await _run(url, _command, "stamp", revision)


async def current_async(url: str | URL) -> tuple[str, ...]:
    """The revisions the database is at (empty before the first migration)."""
    result: tuple[str, ...] = await _run(url, _current)
    return result


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`. Not for use inside a running event loop."""
    asyncio.run(upgrade_async(url, revision))


def downgrade(url: str | URL, revision: str) -> None:
    asyncio.run(downgrade_async(url, revision))


def stamp(url: str | URL, revision: str) -> None:
    asyncio.run(stamp_async(url, revision))


def current(url: str | URL) -> tuple[str, ...]:
    return asyncio.run(current_async(url))


class DatabaseNotAtHead(BrokerlinkError):
    """The store is behind the code's migrations: a process on it would misread its tables."""

    code = "database_not_at_head"

    def __init__(self, current: tuple[str, ...], head: list[str]) -> None:
        super().__init__(
            f"the database is at {', '.join(current) or 'no revision'}, not at {', '.join(head)}: "
            "run `brokerlink db upgrade` first"
        )
        self.current = current
        self.head = head


async def check_at_head_async(url: str | URL) -> None:
    found, head = await current_async(url), heads()
    if set(found) != set(head):
        raise DatabaseNotAtHead(found, head)


def check_at_head(database_url: str | URL) -> None:
    """Raise `DatabaseNotAtHead` unless the database is migrated to head."""
    asyncio.run(check_at_head_async(database_url))
