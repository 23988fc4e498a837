"""Alembic environment: async engines, one schema for SQLite and PostgreSQL.

Called from `brokerlink.db.migrate` with a live connection in `config.attributes`, or by the
`alembic` command (`alembic -c src/brokerlink/migrations/alembic.ini ...`), which connects to
`sqlalchemy.url` or, failing that, to the configured `BROKERLINK_DATABASE_URL` / SQLite default.
"""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

import brokerlink.models  # noqa: F401  (registers every table on Base.metadata)
from brokerlink.db.base import Base
from brokerlink.db.session import create_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from brokerlink.config import get_settings

    return get_settings().database_url_resolved


def do_run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(_url(), foreign_keys=False, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        compare_type=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
elif (connection := config.attributes.get("connection")) is not None:
    do_run_migrations(connection)
else:
    asyncio.run(run_async_migrations())
