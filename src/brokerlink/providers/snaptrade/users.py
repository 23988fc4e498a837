"""SnapTrade users and their secrets: registration, rotation on a 1083, recovery of a lost one.

One SnapTrade user per application user, reused for every institution. Its secret lives in the
user record `snaptrade_user_secret_name(user_id, "_user")`, and a copy in each per-institution
record the connector writes.

A 401 with code 1083 rotates the secret through `resetUserSecret`, once per generation however
many callers fail at once (a per-user lock and a generation counter). The rotation commits its
intent before the call, so that a lost answer cannot lock the user out:

    1. the user record gets `pending_rotation` {old_secret, generation, started_at}
    2. resetUserSecret(old)
    3. answered   → the new secret goes into every record of the user; the mark is cleared
       refused    → the mark is cleared and the refusal raised (a secret that was simply
                    wrong is never "recovered" by re-registering)
       lost       → (timeout, 5xx, dropped connection: the provider may have rotated) the mark
                    stays; it is resolved at once if the provider answers, else by the next use

Resolving a mark happens once per mark and logs what it found:

    the old secret still works          → the provider did not rotate: the mark is cleared
    it is refused, resetUserSecret(old) → the provider had not rotated, the old secret had only
      answers                             expired: settled as an answered rotation
    resetUserSecret(old) is refused     → the provider rotated and the new secret is gone. The
                                          documented way out: a new SnapTrade user
                                          `{user_id}-r{n}`, recorded (with the one it replaces)
                                          in every record, and `SnapTradeUserReplaced` raised so
                                          that each SnapTrade connection of the user is marked
                                          for re-linking. Connections are never deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from brokerlink.domain.errors import TechnicalError, UserReconnectRequired
from brokerlink.log import get_logger
from brokerlink.providers.snaptrade.client import SnapTradeClient
from brokerlink.providers.snaptrade.errors import (
    SnapTradeAuthError,
    SnapTradeConnectionError,
    SnapTradeError,
    UserSecretInvalid,
)
from brokerlink.secrets.store import (
    SecretNotFound,
    SecretStore,
    SecretValue,
    snaptrade_user_secret_name,
)

__all__ = ["RELINK_REASON", "USER_RECORD", "Credentials", "SnapTradeUserReplaced", "SnapTradeUsers"]

T = TypeVar("T")
USER_RECORD = "_user"
RELINK_REASON = (
    "SnapTrade no longer accepts this user's access key (a key rotation's answer was lost), "
    "so brokerlink registered the user with SnapTrade again: reconnect this institution to "
    "resume syncing; its accounts and history are kept"
)

_log = get_logger("brokerlink.providers.snaptrade")


class SnapTradeUserReplaced(SnapTradeError, UserReconnectRequired):
    """The user's SnapTrade user was replaced: every SnapTrade connection must be re-linked."""


@dataclass(frozen=True)
class Credentials:
    snaptrade_user_id: str
    secret: str
    generation: int
    pending: bool = False  # a rotation was started and its outcome is not known

    def __repr__(self) -> str:  # never show the secret, even in a traceback's locals
        return f"Credentials({self.snaptrade_user_id!r}, generation={self.generation})"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _credentials(record: SecretValue, generation: int | None = None) -> Credentials | None:
    uid, secret = record.get("snaptrade_user_id"), record.get("user_secret")
    if not (isinstance(uid, str) and isinstance(secret, str) and uid and secret):
        return None
    stored = record.get("generation")
    gen = generation if generation is not None else stored if isinstance(stored, int) else 0
    return Credentials(uid, secret, gen, pending=isinstance(record.get("pending_rotation"), dict))


class SnapTradeUsers:
    """The users and secrets of one SnapTrade application, for the connector."""

    def __init__(self, client: SnapTradeClient, secrets: SecretStore) -> None:
        self.client = client
        self.secrets = secrets
        self._cache: dict[str, Credentials] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.rotations = 0
        self.recoveries = 0

    # -- records ----------------------------------------------------------------------------

    def _lock(self, user_id: str) -> asyncio.Lock:
        return self._locks.setdefault(user_id, asyncio.Lock())

    @staticmethod
    def prefix(user_id: str) -> str:
        return snaptrade_user_secret_name(user_id, "")

    @staticmethod
    def user_record_name(user_id: str) -> str:
        return snaptrade_user_secret_name(user_id, USER_RECORD)

    async def _get(self, name: str) -> SecretValue | None:
        try:
            return await self.secrets.get(name)
        except SecretNotFound:
            return None

    async def _read_store(self, user_id: str) -> tuple[SecretValue, Credentials] | None:
        """The user record (or, failing that, any institution record) and its credentials."""
        user_record = self.user_record_name(user_id)
        names = [user_record] + [
            n for n in await self.secrets.list(self.prefix(user_id)) if n != user_record
        ]
        for name in names:
            record = await self._get(name)
            if record is not None and (creds := _credentials(record)) is not None:
                if name != user_record:
                    record.pop("pending_rotation", None)  # the mark lives in the user record
                    creds = Credentials(creds.snaptrade_user_id, creds.secret, creds.generation)
                return record, creds
        return None

    def record(
        self, user_id: str, institution: str, creds: Credentials, **extra: Any
    ) -> SecretValue:
        return {
            "user_secret": creds.secret,
            "user_id": user_id,
            "institution": institution,
            "snaptrade_user_id": creds.snaptrade_user_id,
            "created_at": _now(),
            **extra,
        }

    async def _write_user_record(self, user_id: str, record: SecretValue) -> None:
        await self.secrets.put(self.user_record_name(user_id), record)

    async def _store_everywhere(
        self, user_id: str, fresh: Credentials, stamp: dict[str, str], **main: Any
    ) -> int:
        """The new credentials into every record of the user, the user record last (it holds
        the pending mark, cleared only once every copy is current). Returns the record count."""
        user_record = self.user_record_name(user_id)
        names = [n for n in await self.secrets.list(self.prefix(user_id)) if n != user_record]
        for name in names:
            record = await self._get(name)
            if record is None:
                continue
            record.update(user_secret=fresh.secret, snaptrade_user_id=fresh.snaptrade_user_id)
            record.update(stamp)
            await self.secrets.put(name, record)
        record = await self._get(user_record) or self.record(user_id, USER_RECORD, fresh)
        record.update(
            user_secret=fresh.secret,
            snaptrade_user_id=fresh.snaptrade_user_id,
            generation=fresh.generation,
            **stamp,
            **main,
        )
        record.pop("pending_rotation", None)
        await self._write_user_record(user_id, record)
        return len(names) + 1

    # -- registration -----------------------------------------------------------------------

    async def credentials(self, user_id: str) -> Credentials:
        cached = self._cache.get(user_id)
        if cached is not None:
            return cached
        found = await self._read_store(user_id)
        if found is None:
            raise SnapTradeAuthError(
                "user is not registered with SnapTrade",
                operation="credentials",
                code="unregistered",
            )
        async with self._lock(user_id):
            cached = self._cache.get(user_id)
            if cached is None:
                cached = self._cache[user_id] = found[1]
        return cached

    def forget(self, user_id: str) -> None:
        """Drop the cached credentials of a user SnapTrade deleted (their records are gone)."""
        self._cache.pop(user_id, None)

    async def registered(self, user_id: str) -> bool:
        # A user never registered with SnapTrade has nothing there: that is an empty answer,
        # not an authentication failure.
        return user_id in self._cache or await self._read_store(user_id) is not None

    async def register(self, user_id: str) -> str:
        """Register `user_id` with SnapTrade once; later calls reuse it. Returns SnapTrade's id."""
        async with self._lock(user_id):
            found = await self._read_store(user_id)
            if found is not None:
                self._cache.setdefault(user_id, found[1])
                return found[1].snaptrade_user_id
            snaptrade_user_id, secret = await self.client.register_user(user_id)
            creds = Credentials(snaptrade_user_id, secret, 0)
            await self._write_user_record(
                user_id, self.record(user_id, USER_RECORD, creds, generation=0)
            )
            self._cache[user_id] = creds
            _log.info("snaptrade.user.registered", user_id=user_id)
            return snaptrade_user_id

    # -- rotation ---------------------------------------------------------------------------

    async def rotate(self, user_id: str, failed: Credentials) -> Credentials:
        """Replace a rejected secret, once per generation, however many callers ask."""
        async with self._lock(user_id):
            current = self._cache.get(user_id)
            if current is not None and current.generation > failed.generation:
                return current  # another caller rotated (or recovered) while we waited
            if current is not None and current.pending and not failed.pending:
                # The rotation this call waited for lost its answer just now; the next use
                # resolves it (`resolve`), not every caller that failed alongside.
                raise SnapTradeConnectionError(
                    "the user secret's rotation is unresolved; retry later",
                    operation="Authentication_resetSnapTradeUserSecret",
                )
            stored = await self._read_store(user_id)
            if stored is not None and stored[1].pending:
                return await self._recover(user_id, stored[0], stored[1])
            if stored is not None and stored[1].secret != failed.secret:
                # Another process rotated and saved it; adopt theirs instead of rotating again.
                fresh = Credentials(
                    stored[1].snaptrade_user_id,
                    stored[1].secret,
                    max(failed.generation + 1, stored[1].generation),
                )
                self._cache[user_id] = fresh
                return fresh
            try:
                return await self._reset(user_id, failed, failed.generation + 1)
            except TechnicalError:
                stored = await self._read_store(user_id)
                if stored is None or not stored[1].pending:
                    raise
            # Resolve it now if the provider answers; if not, the mark waits for the next use.
            return await self._recover(user_id, stored[0], stored[1])

    async def _reset(self, user_id: str, old: Credentials, generation: int) -> Credentials:
        """Commit the intent, call resetUserSecret with no lock but the caller's, settle."""
        record = await self._get(self.user_record_name(user_id))
        if record is None:
            record = self.record(user_id, USER_RECORD, old, generation=old.generation)
        pending = record.get("pending_rotation")
        before = dict(pending) if isinstance(pending, dict) else {"started_at": _now()}
        record["pending_rotation"] = {
            **before,
            "old_secret": old.secret,
            "generation": generation,
            "attempts": int(before.get("attempts", 0)) + 1,
        }
        await self._write_user_record(user_id, record)
        try:
            uid, secret = await self.client.reset_user_secret(old.snaptrade_user_id, old.secret)
        except TechnicalError:
            # The provider may have rotated: the mark stays for the next use to resolve.
            self._cache[user_id] = Credentials(
                old.snaptrade_user_id, old.secret, old.generation, pending=True
            )
            _log.warning("snaptrade.user_secret.reset_lost", user_id=user_id, generation=generation)
            raise
        except SnapTradeError:
            if pending is None:  # refused outright: nothing happened at the provider
                record.pop("pending_rotation", None)
                await self._write_user_record(user_id, record)
            raise
        fresh = Credentials(uid, secret, generation)
        records = await self._store_everywhere(user_id, fresh, {"rotated_at": _now()})
        self._cache[user_id] = fresh
        self.rotations += 1
        await self.client.list_authorizations(uid, secret)  # prove the new secret works
        _log.warning(
            "snaptrade.user_secret.rotated", user_id=user_id, generation=generation, records=records
        )
        return fresh

    # -- recovery ---------------------------------------------------------------------------

    async def _recover(self, user_id: str, record: SecretValue, creds: Credentials) -> Credentials:
        """Resolve a rotation whose answer was lost (called under the user's lock)."""
        pending = record["pending_rotation"]
        old = Credentials(creds.snaptrade_user_id, str(pending["old_secret"]), creds.generation)
        generation = int(pending.get("generation", creds.generation + 1))
        try:
            await self.client.list_authorizations(old.snaptrade_user_id, old.secret)
        except UserSecretInvalid:
            pass
        else:
            record.pop("pending_rotation", None)
            record["generation"] = generation
            await self._write_user_record(user_id, record)
            self._cache[user_id] = fresh = Credentials(
                old.snaptrade_user_id, old.secret, generation
            )
            self.recoveries += 1
            _log.warning(
                "snaptrade.user_secret.recovered",
                user_id=user_id,
                outcome="not_rotated",
                generation=generation,
            )
            return fresh
        try:
            fresh = await self._reset(user_id, old, generation)
        except UserSecretInvalid:
            pass  # the provider rotated: the secret it answered with is gone
        else:
            self.recoveries += 1
            _log.warning(
                "snaptrade.user_secret.recovered",
                user_id=user_id,
                outcome="rotated_again",
                generation=generation,
            )
            return fresh
        await self._register_again(user_id, old, generation)
        raise SnapTradeUserReplaced(
            RELINK_REASON, operation="Authentication_registerSnapTradeUser", code="user_replaced"
        )

    async def _register_again(self, user_id: str, old: Credentials, generation: int) -> None:
        """Register a new SnapTrade user for `user_id` and record it in every record."""
        record = await self._get(self.user_record_name(user_id))
        assert record is not None
        pending = dict(record.get("pending_rotation") or {})
        history = record.get("replaced_users")
        replaced = list(history) if isinstance(history, list) else []
        # A registration whose own answer was lost may have created its id: never reuse one.
        attempt = int(pending.get("registrations", 0)) + 1
        new_id = f"{user_id}-r{len(replaced) + attempt}"
        pending.update(registrations=attempt, new_snaptrade_user_id=new_id)
        record["pending_rotation"] = pending
        await self._write_user_record(user_id, record)
        uid, secret = await self.client.register_user(new_id)
        replaced.append(
            {
                "snaptrade_user_id": old.snaptrade_user_id,
                "replaced_at": _now(),
                "reason": RELINK_REASON,
            }
        )
        fresh = Credentials(uid, secret, generation)
        records = await self._store_everywhere(
            user_id, fresh, {"recovered_at": _now()}, replaced_users=replaced
        )
        self._cache[user_id] = fresh
        self.recoveries += 1
        _log.warning(
            "snaptrade.user_secret.recovered",
            user_id=user_id,
            outcome="new_user",
            old_snaptrade_user_id=old.snaptrade_user_id,
            snaptrade_user_id=uid,
            generation=generation,
            records=records,
        )

    # -- calls as the user ------------------------------------------------------------------

    async def as_user(self, user_id: str, call: Callable[[str, str], Awaitable[T]]) -> T:
        """`call(snaptrade_user_id, secret)`, rotating once on a 1083; a rotation left pending
        by a lost answer is resolved first."""
        creds = await self.credentials(user_id)
        if creds.pending:
            creds = await self.rotate(user_id, creds)
        try:
            return await call(creds.snaptrade_user_id, creds.secret)
        except UserSecretInvalid:
            fresh = await self.rotate(user_id, creds)
        return await call(fresh.snaptrade_user_id, fresh.secret)
