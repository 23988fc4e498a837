"""Who is calling: users with a password for the web app, bearer tokens for programs."""

from brokerlink.auth.service import (
    API_TOKEN_PREFIX,
    SESSION_TOKEN_PREFIX,
    AuthService,
    InvalidCredentials,
    NotAuthenticated,
    hash_password,
    verify_password,
)

__all__ = [
    "API_TOKEN_PREFIX",
    "SESSION_TOKEN_PREFIX",
    "AuthService",
    "InvalidCredentials",
    "NotAuthenticated",
    "hash_password",
    "verify_password",
]
