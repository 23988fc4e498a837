"""Portfolio service tests run on the real schema (tests/fixtures/db.py), SQLite and PostgreSQL."""

from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_connection,
    db_url,
    engine,
    new_database,
    postgres_server,
    session,
    sessionmaker,
)
