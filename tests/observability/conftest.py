"""Observability tests: real sandboxes, the real schema on SQLite and PostgreSQL, real Redis."""

from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_connection,
    db_url,
    engine,
    fresh_db_url,
    new_database,
    postgres_server,
    session,
    sessionmaker,
)
from tests.fixtures.redis_server import redis_server, redis_url  # noqa: F401
