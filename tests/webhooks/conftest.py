"""Webhook tests: both sandboxes sending signed webhooks to the real app (`world.py`), on SQLite
and PostgreSQL."""

from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_url,
    engine,
    new_database,
    postgres_server,
)
from tests.webhooks.world import world  # noqa: F401
