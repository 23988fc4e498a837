"""The store's fixtures (tests/fixtures/db.py).

Imported rather than listed in `pytest_plugins`: pytest only accepts `pytest_plugins` in the
top-level conftest, and tests/conftest.py belongs to everyone.
"""

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
