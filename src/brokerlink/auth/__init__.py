"""Who is calling: users with a password for the web app, bearer tokens for programs."""

from brokerlink.auth.passwords import hash_password, hash_password_async, verify_password
from brokerlink.auth.service import (
    API_TOKEN_PREFIX,
    SESSION_TOKEN_PREFIX,
    AuthService,
    InvalidCredentials,
    NotAuthenticated,
)
from brokerlink.auth.sign_in import SignedIn, SignIn
from brokerlink.auth.throttle import SignInPolicy, SignInThrottled, client_address

__all__ = [
    "API_TOKEN_PREFIX",
    "SESSION_TOKEN_PREFIX",
    "AuthService",
    "InvalidCredentials",
    "NotAuthenticated",
    "SignIn",
    "SignInPolicy",
    "SignInThrottled",
    "SignedIn",
    "client_address",
    "hash_password",
    "hash_password_async",
    "verify_password",
]
