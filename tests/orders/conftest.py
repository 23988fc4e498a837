"""Order tests: the whole stack (tests/fixtures/stack.py) on SQLite and PostgreSQL."""

from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_url,
    engine,
    new_database,
    postgres_server,
)
from tests.fixtures.stack import stack  # noqa: F401
