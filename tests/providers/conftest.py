"""Fixtures shared by the provider tests: a throwaway Redis for the shared rate-limit windows."""

from tests.fixtures.redis_server import redis_server, redis_url  # noqa: F401
