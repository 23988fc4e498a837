"""Accounts tests: the real app over the whole stack (SQLite and PostgreSQL), and one browser."""

from tests.fixtures.api import api  # noqa: F401
from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_url,
    engine,
    new_database,
    postgres_server,
)
from tests.fixtures.stack import stack  # noqa: F401
from tests.web.conftest import browser, site  # noqa: F401
