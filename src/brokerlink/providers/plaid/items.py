"""What the Plaid connector knows about Items, and where: the directory, and one token each.

An Item's metadata (its id, the institution, whether it needs the user to log in again) is the
application's, kept where its connections are; the connector asks an `ItemDirectory` for it,
which the application implements over its store and injects. The secret store holds exactly one
secret per Item, its access token, at `plaid/access_token/{user_id}/{item_id}`: a call reads
that one name, never a listing.

Records written by older versions sit under `plaid/access_token/{user_id}/{institution-slug}`
with the metadata beside the token. `ItemTokens.get` moves such a record the first time its Item
is read: it finds the old record once (the user's names, then their values), writes the token
under the Item's name, deletes the old record and hands its metadata to `on_migrated`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import NotFound
from brokerlink.log import get_logger
from brokerlink.secrets.store import (
    SecretNotFound,
    SecretStore,
    plaid_access_token_name,
    plaid_access_token_prefix,
)

__all__ = ["ItemDirectory", "ItemTokens", "PlaidItem", "adopt_legacy", "parse_time"]

_log = get_logger("brokerlink.providers.plaid")

# The metadata an old-format record carried beside its token.
LegacyRecord = Mapping[str, Any]


@dataclass(frozen=True)
class PlaidItem:
    """One linked Item as the application keeps it (no token)."""

    user_id: str
    item_id: str
    institution_name: str
    institution_slug: str | None = None
    institution_id: str | None = None
    # The connection's status says the user must log in again (Link update mode).
    login_required: bool = False
    created_at: datetime | None = None


@runtime_checkable
class ItemDirectory(Protocol):
    """The application's record of Plaid Items: found by index, never by reading secrets."""

    async def items(self, user_id: str) -> list[PlaidItem]:
        """The user's Items."""
        ...

    async def item(self, item_id: str) -> PlaidItem | None:
        """The Item with this id, whoever linked it (webhooks name only the Item)."""
        ...

    async def item_of_account(self, user_id: str, account_id: str) -> PlaidItem | None:
        """The user's Item that holds the Plaid account `account_id`, when it is known."""
        ...

    async def set_login_required(
        self, item_id: str, required: bool, reason: str | None = None
    ) -> None:
        """Mark the Item's connection as needing a new login, or working again."""
        ...

    async def set_institution_id(self, item_id: str, institution_id: str) -> None:
        """Record Plaid's institution id for the Item (Items linked before it was kept)."""
        ...

    async def set_reconnect_by(self, item_id: str, when: datetime | None) -> None:
        """When Plaid stops serving the Item unless the user re-authenticates."""
        ...


def parse_time(value: object) -> datetime | None:
    """An ISO-8601 time as Plaid sends it (`2026-12-01T00:00:00Z`), aware; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


async def adopt_legacy(items: ItemDirectory, item_id: str, record: LegacyRecord) -> None:
    """What an old-format record knew beside its token, into the directory."""
    if record.get("login_required") is True:
        await items.set_login_required(item_id, True, "ITEM_LOGIN_REQUIRED")
    institution_id = record.get("institution_id")
    if isinstance(institution_id, str) and institution_id:
        await items.set_institution_id(item_id, institution_id)
    if "reconnect_by" in record:
        await items.set_reconnect_by(item_id, parse_time(record.get("reconnect_by")))


OnMigrated = Callable[[str, LegacyRecord], Awaitable[None]]


class ItemTokens:
    """Access tokens by (user, Item): one secret read per lookup once migrated."""

    def __init__(self, secrets: SecretStore, *, on_migrated: OnMigrated | None = None) -> None:
        self._secrets = secrets
        self._on_migrated = on_migrated

    async def get(self, user_id: str, item_id: str, operation: str) -> str:
        """The Item's access token; `NotFound` when this user has none for it."""
        name = plaid_access_token_name(user_id, item_id)
        try:
            value = await self._secrets.get(name)
        except SecretNotFound:
            token = await self._migrate(user_id, item_id)
            if token is None:
                raise NotFound(
                    f"{operation}: no Plaid item {item_id} for this user",
                    provider=Provider.PLAID,
                    operation=operation,
                ) from None
            return token
        token = value.get("access_token")
        if not isinstance(token, str):
            raise NotFound(
                f"{operation}: the stored record of Plaid item {item_id} holds no token",
                provider=Provider.PLAID,
                operation=operation,
            )
        return token

    async def put(self, user_id: str, item_id: str, access_token: str) -> None:
        await self._secrets.put(
            plaid_access_token_name(user_id, item_id), {"access_token": access_token}
        )

    async def delete(self, user_id: str, item_id: str) -> None:
        await self._secrets.delete(plaid_access_token_name(user_id, item_id))

    async def _migrate(self, user_id: str, item_id: str) -> str | None:
        """Move the Item's old-format record, if there is one, to the Item's own name."""
        target = plaid_access_token_name(user_id, item_id)
        for name in await self._secrets.list(plaid_access_token_prefix(user_id)):
            if name == target or "/" in name[len(plaid_access_token_prefix(user_id)) :]:
                continue
            try:
                value = await self._secrets.get(name)
            except SecretNotFound:
                continue  # removed (or moved by another process) between list and get
            token = value.get("access_token")
            if value.get("item_id") != item_id or not isinstance(token, str):
                continue
            # Written before the old record goes: a crash in between leaves two copies of the
            # token (the next read finds the new one), never none.
            await self.put(user_id, item_id, token)
            await self._secrets.delete(name)
            _log.info("plaid.item_record.migrated", item_id=item_id, secret_name=name)
            if self._on_migrated is not None:
                await self._on_migrated(item_id, value)
            return token
        return None
