"""CLI tests that need a store of each backend (tests/fixtures/db.py)."""

from tests.fixtures.db import new_database, postgres_server  # noqa: F401
