"""Typed records over the store, under the names the portfolio code uses.

    snaptrade/app_credentials                          AppCredentials
    snaptrade/user_secret/{user_id}/{institution-slug}  SnapTradeUserSecret
    plaid/access_token/{user_id}/{institution-slug}     PlaidAccessToken (by institution; the
                                                        Plaid connector keeps its own by item id)

Secret fields are `SecretStr`, so `str()`/`repr()` of a record never show them. One SnapTrade
user is registered per app user and reused for every institution: `existing_snaptrade_user`
finds it from the user's stored connections.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr
from pydantic import ValidationError as PydanticValidationError

from brokerlink.secrets.store import (
    InvalidSecret,
    SecretStore,
    SecretStoreError,
    SecretValue,
    plaid_slug_access_token_name,
    snaptrade_app_credentials_name,
    snaptrade_user_secret_name,
)

__all__ = [
    "AppCredentials",
    "AppCredentialsProvider",
    "PlaidAccessToken",
    "SnapTradeUserSecret",
    "existing_snaptrade_user",
    "get_app_credentials",
    "get_plaid_access_token",
    "get_snaptrade_user_secret",
    "institution_slug",
    "list_user_snaptrade_connections",
    "store_app_credentials",
    "store_plaid_access_token",
    "store_snaptrade_user_secret",
]

_SLUG_SEPARATORS = re.compile(r"[^a-z0-9]+")
_SEGMENT = re.compile(r"[A-Za-z0-9_+=.@-]+")


def _now() -> datetime:
    return datetime.now(UTC)


def institution_slug(institution: str) -> str:
    """`"Charles Schwab"` → `"charles-schwab"`; a slug maps to itself."""
    slug = _SLUG_SEPARATORS.sub("-", institution.strip().lower()).strip("-")
    if not slug:
        raise InvalidSecret(f"institution {institution!r} has no usable slug")
    return slug


def _segment(kind: str, value: str) -> str:
    # A user id holding "/" would address another user's secrets.
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise InvalidSecret(f"invalid {kind} {value[:80]!r} for a secret name")
    return value


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_secret_value(self) -> SecretValue:
        """The JSON object stored, secrets in clear: hand it to a store, never to a log."""
        value: SecretValue = {}
        for field, item in self:
            if isinstance(item, SecretStr):
                value[field] = item.get_secret_value()
            elif isinstance(item, datetime):
                value[field] = item.isoformat()
            else:
                value[field] = item
        return value

    @classmethod
    def _from_secret_value(cls, name: str, value: SecretValue) -> Any:
        try:
            return cls.model_validate(value)
        except PydanticValidationError:
            # `from None`: pydantic's message quotes the input, which holds the secret.
            raise SecretStoreError(
                f"secret {name!r} does not hold a valid {cls.__name__}"
            ) from None


class AppCredentials(_Record):
    """The SnapTrade app's credentials (`snaptrade/app_credentials`)."""

    client_id: str
    consumer_key: SecretStr
    environment: str = "production"


class SnapTradeUserSecret(_Record):
    """One app user's SnapTrade registration, stored per institution they connected."""

    user_secret: SecretStr
    user_id: str
    institution: str
    snaptrade_user_id: str
    created_at: AwareDatetime = Field(default_factory=_now)


class PlaidAccessToken(_Record):
    """A Plaid item's access token for one user and institution."""

    access_token: SecretStr
    user_id: str
    institution: str
    item_id: str | None = None
    institution_id: str | None = None
    created_at: AwareDatetime = Field(default_factory=_now)


async def store_app_credentials(store: SecretStore, credentials: AppCredentials) -> None:
    await store.put(snaptrade_app_credentials_name(), credentials.to_secret_value())


async def get_app_credentials(store: SecretStore) -> AppCredentials:
    name = snaptrade_app_credentials_name()
    result: AppCredentials = AppCredentials._from_secret_value(name, await store.get(name))
    return result


def _user_secret_name(user_id: str, institution: str) -> str:
    return snaptrade_user_secret_name(_segment("user id", user_id), institution_slug(institution))


async def store_snaptrade_user_secret(store: SecretStore, record: SnapTradeUserSecret) -> None:
    await store.put(_user_secret_name(record.user_id, record.institution), record.to_secret_value())


async def get_snaptrade_user_secret(
    store: SecretStore, user_id: str, institution: str
) -> SnapTradeUserSecret:
    name = _user_secret_name(user_id, institution)
    result: SnapTradeUserSecret = SnapTradeUserSecret._from_secret_value(
        name, await store.get(name)
    )
    return result


async def list_user_snaptrade_connections(
    store: SecretStore, user_id: str
) -> list[SnapTradeUserSecret]:
    """The user's SnapTrade records, one per institution, in name order."""
    # The trailing "/" keeps user "u1" from matching "u10".
    prefix = snaptrade_user_secret_name(_segment("user id", user_id), "")
    # `_user` is the registration record the SnapTrade connector keeps; not a connection.
    names = [n for n in await store.list(prefix) if n.rsplit("/", 1)[-1] != "_user"]
    values = await asyncio.gather(*(store.get(name) for name in names))
    return [
        SnapTradeUserSecret._from_secret_value(name, value)
        for name, value in zip(names, values, strict=True)
    ]


async def existing_snaptrade_user(store: SecretStore, user_id: str) -> SnapTradeUserSecret | None:
    """The SnapTrade registration to reuse for this user's next institution, if any."""
    connections = await list_user_snaptrade_connections(store, user_id)
    return connections[0] if connections else None


def _plaid_name(user_id: str, institution: str) -> str:
    return plaid_slug_access_token_name(_segment("user id", user_id), institution_slug(institution))


async def store_plaid_access_token(store: SecretStore, token: PlaidAccessToken) -> None:
    await store.put(_plaid_name(token.user_id, token.institution), token.to_secret_value())


async def get_plaid_access_token(
    store: SecretStore, user_id: str, institution: str
) -> PlaidAccessToken:
    name = _plaid_name(user_id, institution)
    result: PlaidAccessToken = PlaidAccessToken._from_secret_value(name, await store.get(name))
    return result


class AppCredentialsProvider:
    """The app credentials, re-read from the store at most every `ttl_seconds`.

    A rotated consumer key takes effect within the TTL without a restart; call `invalidate()`
    (for instance after the provider answers 401) to re-read on the next `current()`. When a
    re-read fails with a retryable error, the last good credentials keep serving.
    """

    def __init__(
        self,
        store: SecretStore,
        ttl_seconds: float = 30,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._cached: AppCredentials | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"AppCredentialsProvider(ttl_seconds={self.ttl_seconds})"

    def _fresh(self) -> AppCredentials | None:
        if self._cached is not None and self._clock() - self._fetched_at < self.ttl_seconds:
            return self._cached
        return None

    async def current(self) -> AppCredentials:
        fresh = self._fresh()
        if fresh is not None:
            return fresh
        # One re-read for many concurrent callers.
        async with self._lock:
            fresh = self._fresh()
            if fresh is not None:
                return fresh
            try:
                credentials = await get_app_credentials(self._store)
            except SecretStoreError as error:
                if error.retryable and self._cached is not None:
                    return self._cached
                raise
            self._cached, self._fetched_at = credentials, self._clock()
            return credentials

    def invalidate(self) -> None:
        self._cached = None
