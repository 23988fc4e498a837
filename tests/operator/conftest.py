"""Operator dashboard tests: the store on SQLite and PostgreSQL (tests/fixtures/db.py), and the
API over the whole stack (tests/fixtures/api.py).

The dashboard's figures count every user's rows, so these tests get a database of their own
(`db_url` here): rows other packages' tests commit never reach them.
"""

from collections.abc import Callable

import pytest

from brokerlink.db import migrate
from tests.fixtures.api import api  # noqa: F401
from tests.fixtures.db import (  # noqa: F401
    db_backend,
    db_connection,
    engine,
    new_database,
    postgres_server,
    session,
    sessionmaker,
)
from tests.fixtures.stack import stack  # noqa: F401


@pytest.fixture(scope="session")
def db_url(db_backend: str, new_database: Callable[[str], str]) -> str:  # noqa: F811
    url = new_database(db_backend)
    migrate.upgrade(url)
    return url
