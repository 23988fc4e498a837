"""API tests: the real app over the whole stack (tests/fixtures/api.py), SQLite and PostgreSQL."""

from tests.fixtures.api import api  # noqa: F401
from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_url,
    engine,
    new_database,
    postgres_server,
)
from tests.fixtures.stack import stack  # noqa: F401
