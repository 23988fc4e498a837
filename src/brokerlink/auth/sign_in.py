"""Signing in with an email and a password: throttled, one answer for every wrong one.

Three short transactions, none open while a password is checked (a check is ~21 ms of CPU in
a worker thread, and on SQLite an open transaction holds the database's write lock):

1. reserve: under the keys' lock, count the window's attempts for the email and the address;
   refuse (429) when either is at its limit, else record this attempt as pending and read the
   account's hash;
2. check the password off the event loop; an unknown email or an account without a password
   is checked against a dummy hash of the same parameters (same work, same answer);
3. settle: a failure marks the attempt failed (401 invalid_credentials); a success deletes it
   and the account's failures, replaces a hash of an older scheme or weaker parameters, and
   issues the web session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.auth.passwords import check_password_async, hash_password_async
from brokerlink.auth.service import AuthService, InvalidCredentials, IssuedToken
from brokerlink.auth.throttle import SignInPolicy, SignInThrottled, email_key
from brokerlink.db.session import transaction
from brokerlink.models import User
from brokerlink.repositories import SignInAttemptRepository, UserRepository

__all__ = ["SignIn", "SignedIn"]


@dataclass
class SignedIn:
    user: User
    issued: IssuedToken
    # The stored hash was replaced by one of the current scheme and parameters.
    rehashed: bool


@dataclass
class _Reserved:
    attempt_id: int
    user_id: int | None
    stored_hash: str | None


class SignIn:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        policy: SignInPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.policy = policy or SignInPolicy()
        self.clock = clock

    async def __call__(
        self, email: str, password: str, *, address: str, ttl: timedelta
    ) -> SignedIn:
        email = email.strip().lower()
        key = email_key(email)
        reserved = await self._reserve(email, key, address)
        check = await check_password_async(password, reserved.stored_hash)
        if not check.ok or reserved.user_id is None:
            async with transaction(self.sessionmaker) as session:
                await SignInAttemptRepository.from_session(session).mark_failed(reserved.attempt_id)
            raise InvalidCredentials("wrong email or password")
        new_hash = await hash_password_async(password) if check.needs_rehash else None
        async with transaction(self.sessionmaker) as session:
            await SignInAttemptRepository.from_session(session).clear_account(
                key, reserved.attempt_id
            )
            rehashed = False
            if new_hash is not None:
                # Only over the hash that was checked: a password changed meanwhile wins.
                result = await session.execute(
                    update(User)
                    .where(User.id == reserved.user_id, User.password_hash == reserved.stored_hash)
                    .values(password_hash=new_hash)
                )
                rehashed = bool(getattr(result, "rowcount", 0))
            auth = AuthService(session, clock=self.clock)
            user = await auth.users.get(reserved.user_id)
            if user is None:  # deleted while its password was being checked
                raise InvalidCredentials("wrong email or password")
            issued = await auth.issue(user.id, kind="session", name="web", ttl=ttl)
        return SignedIn(user, issued, rehashed)

    async def _reserve(self, email: str, key: str, address: str) -> _Reserved:
        now = self.clock()
        since = now - self.policy.window
        async with transaction(self.sessionmaker) as session:
            attempts = SignInAttemptRepository.from_session(session)
            await attempts.lock(key, address)
            await attempts.prune(before=since)
            refusals: list[tuple[datetime, Literal["email", "address"]]] = []
            keys: tuple[tuple[Literal["email", "address"], str], ...] = (
                ("email", key),
                ("address", address),
            )
            for by, value in keys:
                limit = self.policy.limit(by)
                recent = await attempts.recent(by, value, since=since, limit=limit)
                if len(recent) >= limit:
                    # Allowed again when the oldest of the latest `limit` leaves the window.
                    refusals.append((recent[-1] + self.policy.window, by))
            if refusals:
                next_allowed_at, by = max(refusals)
                raise SignInThrottled(by, next_allowed_at=next_allowed_at, now=now)
            attempt_id = await attempts.reserve(key, address, now)
            user = await UserRepository.from_session(session).get_by_email(email)
            if user is None:
                return _Reserved(attempt_id, None, None)
            return _Reserved(attempt_id, user.id, user.password_hash)
