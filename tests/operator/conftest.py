"""Operator dashboard tests: the store on SQLite and PostgreSQL (tests/fixtures/db.py), and the
API over the whole stack (tests/fixtures/api.py)."""

from tests.fixtures.api import api  # noqa: F401
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
from tests.fixtures.stack import stack  # noqa: F401
