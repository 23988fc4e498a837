"""Users, passwords, API tokens and web sessions.

Passwords are argon2id hashes (`brokerlink.auth.passwords`), computed in a worker thread before
the store is touched; signing in is `brokerlink.auth.sign_in` (throttled). Tokens are 256 random
bits shown once; the store keeps only their SHA-256, so a database dump signs nobody in. A token
carries a readable prefix (`blk_api_`, `blk_ses_`) so that a leaked one is recognisable and the
log redaction can match it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.auth.passwords import hash_password_async
from brokerlink.errors import BrokerlinkError, ValidationError
from brokerlink.models import AuthToken, User
from brokerlink.repositories import AuthTokenRepository, PortfolioRepository, UserRepository

__all__ = [
    "API_TOKEN_PREFIX",
    "SESSION_TOKEN_PREFIX",
    "AuthService",
    "InvalidCredentials",
    "IssuedToken",
    "NotAuthenticated",
]

API_TOKEN_PREFIX = "blk_api_"
SESSION_TOKEN_PREFIX = "blk_ses_"
_PREFIX = {"api": API_TOKEN_PREFIX, "session": SESSION_TOKEN_PREFIX}
MIN_PASSWORD = 8


class NotAuthenticated(BrokerlinkError):
    status_code = 401
    code = "not_authenticated"


class InvalidCredentials(BrokerlinkError):
    status_code = 401
    code = "invalid_credentials"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class IssuedToken:
    """A token as issued: `token` is shown once and never stored."""

    token: str
    row: AuthToken


class AuthService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.session = session
        self.clock = clock
        self.users = UserRepository.from_session(session)
        self.tokens = AuthTokenRepository.from_session(session)

    async def create_user(
        self, email: str, *, password: str | None = None, name: str | None = None
    ) -> User:
        email = email.strip().lower()
        if "@" not in email or len(email) > 320:
            raise ValidationError("an email address is required", field="email")
        if password is not None and len(password) < MIN_PASSWORD:
            raise ValidationError(
                f"the password needs at least {MIN_PASSWORD} characters", field="password"
            )
        # Hashed first, off the event loop, so no transaction waits on it.
        password_hash = await hash_password_async(password) if password is not None else None
        if await self.users.get_by_email(email) is not None:
            raise ValidationError(f"a user with email {email} exists", field="email")
        user = await self.users.create(email=email, name=name, password_hash=password_hash)
        await PortfolioRepository.from_session(self.session).get_or_create_default(user.id)
        return user

    async def set_password(self, user: User, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValidationError(
                f"the password needs at least {MIN_PASSWORD} characters", field="password"
            )
        user.password_hash = await hash_password_async(password)
        await self.session.flush()

    async def issue(
        self, user_id: int, *, kind: str, name: str | None = None, ttl: timedelta | None = None
    ) -> IssuedToken:
        if kind not in _PREFIX:
            raise ValidationError(f"unknown token kind {kind!r}", field="kind")
        token = _PREFIX[kind] + secrets.token_urlsafe(32)
        expires = self.clock() + ttl if ttl is not None else None
        row = await self.tokens.add(
            user_id=user_id, kind=kind, token_hash=token_hash(token), name=name, expires_at=expires
        )
        return IssuedToken(token, row)

    async def authenticate(self, token: str, *, kind: str | None = None) -> User:
        """The user a presented token belongs to; refused if unknown, revoked or expired."""
        user, row = await self._authenticate(token, kind)
        # Recorded at most once a minute, so that reads stay reads.
        if self._touch_due(row):
            row.last_used_at = self.clock()
            await self.session.flush()
        return user

    async def authenticate_read(
        self, token: str, *, kind: str | None = None
    ) -> tuple[User, int | None]:
        """`authenticate` without writing: the user, and the token's id when its last use is
        due to be recorded (`touch`, in a write session of its own)."""
        user, row = await self._authenticate(token, kind)
        return user, row.id if self._touch_due(row) else None

    async def touch(self, token_id: int) -> None:
        """Record that the token was used now."""
        row = await self.session.get(AuthToken, token_id)
        if row is not None and self._touch_due(row):
            row.last_used_at = self.clock()
            await self.session.flush()

    def _touch_due(self, row: AuthToken) -> bool:
        return row.last_used_at is None or self.clock() - row.last_used_at > timedelta(minutes=1)

    async def _authenticate(self, token: str, kind: str | None) -> tuple[User, AuthToken]:
        row = await self.tokens.by_hash(token_hash(token))
        now = self.clock()
        if (
            row is None
            or (kind is not None and row.kind != kind)
            or row.revoked_at is not None
            or (row.expires_at is not None and row.expires_at <= now)
        ):
            raise NotAuthenticated("the token is unknown, revoked or expired")
        user = await self.users.get(row.user_id)
        if user is None:
            raise NotAuthenticated("the token's user no longer exists")
        return user, row

    async def revoke(self, token: str) -> None:
        await self.tokens.revoke(token_hash(token), self.clock())
