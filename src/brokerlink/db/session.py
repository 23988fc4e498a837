"""Engines, sessions and the transaction boundary.

The boundary (request dependency, task wrapper, CLI command) owns the transaction through
`transaction()`: it commits on success and rolls back on error. Repositories only `flush()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ["create_engine", "create_read_sessionmaker", "create_sessionmaker", "transaction"]

# An execution option on read-only engines: on SQLite their transactions begin DEFERRED.
READ_ONLY = "brokerlink_read_only"


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    foreign_keys: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """An async engine for `sqlite+aiosqlite://…` or `postgresql+psycopg://…`.

    On SQLite every connection gets `foreign_keys=ON` (unless `foreign_keys=False`, which the
    migrations use so batch table rebuilds cannot cascade), WAL journaling for file databases,
    and a busy timeout.
    """
    url = make_url(url)
    if url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    engine = _create_async_engine(url, echo=echo, **kwargs)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine, url, foreign_keys=foreign_keys)
    return engine


def _configure_sqlite(engine: AsyncEngine, url: URL, *, foreign_keys: bool) -> None:
    in_memory = url.database in (None, "", ":memory:") or "mode=memory" in str(url)

    def on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # pysqlite defers BEGIN to the first write and never emits it before SAVEPOINT, which
        # breaks SAVEPOINT semantics; take over transaction control (SQLAlchemy's documented fix).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    def on_begin(conn: Any) -> None:
        # IMMEDIATE takes the write lock up front, so concurrent writers (the sync engine's
        # tasks) queue on busy_timeout instead of failing when a read-then-write transaction
        # cannot upgrade its lock. Read-only sessions begin DEFERRED: in WAL mode they read a
        # snapshot and never wait on (or block) a writer.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (no lazy I/O on access)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read: on SQLite they never take the write lock, so a
    read is never queued behind a write (or a write behind a read). Whatever they flush still
    commits; a write that must not fail belongs in a write session."""
    return async_sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


@asynccontextmanager
async def transaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session in one transaction: committed when the block succeeds, rolled back otherwise."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise
