"""Worker tests: real `brokerlink worker` and `brokerlink beat` processes over a real Redis, on
PostgreSQL, against a SnapTrade sandbox in its own process."""

from tests.fixtures.db import new_database, postgres_server  # noqa: F401
from tests.fixtures.redis_server import redis_server, redis_url  # noqa: F401
