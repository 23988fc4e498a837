"""Plaid `ITEM` webhooks applied to the Item's connection, found by its id in the directory.

No secret is read: a webhook names only the Item, and the directory finds its connection by
index (provider, item id). The payload must already be verified (Plaid-Verification JWT).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from brokerlink.log import get_logger

from . import wire
from .items import ItemDirectory, parse_time

__all__ = ["WebhookOutcome", "apply_item_webhook"]

_log = get_logger("brokerlink.providers.plaid")


@dataclass(frozen=True)
class WebhookOutcome:
    """What `handle_webhook` did: `action` is `login_required`, `login_repaired`,
    `pending_expiration` or `ignored`."""

    action: str
    item_id: str | None = None
    user_id: str | None = None


async def apply_item_webhook(
    items: ItemDirectory, payload: wire.Webhook | Mapping[str, Any]
) -> WebhookOutcome:
    webhook_type = payload.get("webhook_type")
    code = payload.get("webhook_code")
    item_id = payload.get("item_id")
    if webhook_type != "ITEM" or not isinstance(item_id, str):
        return WebhookOutcome("ignored", item_id if isinstance(item_id, str) else None)
    item = await items.item(item_id)
    if item is None:
        return WebhookOutcome("ignored", item_id)
    error = payload.get("error") or {}
    if (code == "ERROR" and error.get("error_code") == "ITEM_LOGIN_REQUIRED") or code in (
        "USER_PERMISSION_REVOKED",
    ):
        await items.set_login_required(item_id, True, f"Plaid webhook ITEM {code}")
        _log.info("plaid.item.login_required", item_id=item_id, webhook_code=code)
        return WebhookOutcome("login_required", item_id, item.user_id)
    if code == "LOGIN_REPAIRED":
        await items.set_login_required(item_id, False)
        _log.info("plaid.item.login_repaired", item_id=item_id)
        return WebhookOutcome("login_repaired", item_id, item.user_id)
    if code in ("PENDING_EXPIRATION", "PENDING_DISCONNECT"):
        when = payload.get("consent_expiration_time") or payload.get("disconnect_time")
        await items.set_reconnect_by(item_id, parse_time(when))
        return WebhookOutcome("pending_expiration", item_id, item.user_id)
    return WebhookOutcome("ignored", item_id, item.user_id)
