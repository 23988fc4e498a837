"""SnapTrade webhooks: the `Signature` check, then the typed event.

SnapTrade signs a webhook with HMAC-SHA256 under the app's consumer key, base64-encoded in the
`Signature` header. What is signed is not the raw body but the parsed payload serialised again
as canonical JSON (`json.dumps(payload, separators=(",", ":"), sort_keys=True)`, ASCII-escaped),
as SnapTrade's own verification example does. So the body is parsed once, for the signature,
and the same parsed object is read only after the signature matched.

Refusals are `WebhookRefused` (`bad_signature`, `malformed`, `stale` for an `eventTimestamp`
older than five minutes or ahead of the clock, `replayed` for a `webhookId` already seen), in
that order: nothing but the signature is looked at before it matched. An `eventType` this
product does not know (SnapTrade adds types) is no refusal: once signed, timely and unseen it is
an `UnknownSnapTradeWebhook`, of which only the id and the time are read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from brokerlink.providers.webhooks import (
    MAX_AGE,
    MAX_FUTURE_SKEW,
    Clock,
    SeenCheck,
    WebhookRefused,
    check_age,
    digests_match,
    header,
    load_json_object,
)

__all__ = [
    "SIGNATURE_HEADER",
    "HoldingsUpdate",
    "SnapTradeEventType",
    "SnapTradeWebhook",
    "SnapTradeWebhookVerifier",
    "UnknownSnapTradeWebhook",
    "WebhookRefused",
    "expected_signature",
]

SIGNATURE_HEADER = "Signature"


class SnapTradeEventType(StrEnum):
    """Every `eventType` SnapTrade documents."""

    USER_REGISTERED = "USER_REGISTERED"
    USER_DELETED = "USER_DELETED"
    CONNECTION_ATTEMPTED = "CONNECTION_ATTEMPTED"
    CONNECTION_ADDED = "CONNECTION_ADDED"
    CONNECTION_DELETED = "CONNECTION_DELETED"
    CONNECTION_BROKEN = "CONNECTION_BROKEN"
    CONNECTION_FIXED = "CONNECTION_FIXED"
    CONNECTION_UPDATED = "CONNECTION_UPDATED"
    CONNECTION_FAILED = "CONNECTION_FAILED"
    NEW_ACCOUNT_AVAILABLE = "NEW_ACCOUNT_AVAILABLE"
    ACCOUNT_TRANSACTIONS_INITIAL_UPDATE = "ACCOUNT_TRANSACTIONS_INITIAL_UPDATE"
    ACCOUNT_TRANSACTIONS_UPDATED = "ACCOUNT_TRANSACTIONS_UPDATED"
    ACCOUNT_REMOVED = "ACCOUNT_REMOVED"
    ACCOUNT_HOLDINGS_UPDATED = "ACCOUNT_HOLDINGS_UPDATED"
    TRADE_DETECTION = "TRADE_DETECTION"
    TRADE_UPDATE = "TRADE_UPDATE"


_E = SnapTradeEventType
_CONNECTION = "brokerageAuthorizationId"
_ACCOUNT = "accountId"
# The fields an event cannot be acted on without, beyond the common ones.
_REQUIRED: dict[SnapTradeEventType, tuple[str, ...]] = {
    _E.USER_REGISTERED: (),
    _E.USER_DELETED: (),
    _E.CONNECTION_ATTEMPTED: ("connectionAttemptedResult",),
    _E.CONNECTION_ADDED: (_CONNECTION,),
    _E.CONNECTION_DELETED: (_CONNECTION,),
    _E.CONNECTION_BROKEN: (_CONNECTION,),
    _E.CONNECTION_FIXED: (_CONNECTION,),
    _E.CONNECTION_UPDATED: (_CONNECTION,),
    _E.CONNECTION_FAILED: (),
    _E.NEW_ACCOUNT_AVAILABLE: (_ACCOUNT, _CONNECTION),
    _E.ACCOUNT_TRANSACTIONS_INITIAL_UPDATE: (_ACCOUNT, _CONNECTION),
    _E.ACCOUNT_TRANSACTIONS_UPDATED: (_ACCOUNT, _CONNECTION),
    _E.ACCOUNT_REMOVED: (_ACCOUNT, _CONNECTION),
    _E.ACCOUNT_HOLDINGS_UPDATED: (_ACCOUNT, _CONNECTION),
    _E.TRADE_DETECTION: (_ACCOUNT,),
    _E.TRADE_UPDATE: (_ACCOUNT,),
}
_HOLDINGS_PARTS = ("positions", "balances", "orders")


@dataclass(frozen=True, slots=True)
class HoldingsUpdate:
    """`details` of ACCOUNT_HOLDINGS_UPDATED: which parts of the sync failed (sent either way)."""

    failed: Mapping[str, str | None]  # part ("positions", "balances", "orders") -> error

    @property
    def succeeded(self) -> bool:
        return not self.failed


@dataclass(frozen=True, slots=True)
class SnapTradeWebhook:
    """A verified SnapTrade webhook. `authorization_id` is the connection (the API-key schema's
    `brokerageAuthorizationId`, the OAuth schema's `connectionId`)."""

    event_id: str
    event_type: SnapTradeEventType
    occurred_at: datetime
    user_id: str
    authorization_id: str | None
    account_id: str | None
    brokerage_id: str | None
    connection_attempted_result: str | None
    holdings: HoldingsUpdate | None
    orders: tuple[Mapping[str, Any], ...]
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UnknownSnapTradeWebhook:
    """A verified SnapTrade webhook of an `eventType` not among `SnapTradeEventType`: its id,
    its type as sent, its time; nothing else of it is read or acted on."""

    event_id: str
    event_type: str
    occurred_at: datetime
    payload: Mapping[str, Any]


def expected_signature(consumer_key: str, payload: Mapping[str, Any]) -> str:
    """Base64 HMAC-SHA256, under the consumer key, of the payload as canonical JSON."""
    canonical = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    digest = hmac.new(consumer_key.encode(), canonical.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class SnapTradeWebhookVerifier:
    """Verifies SnapTrade webhooks for the app whose consumer key is `consumer_key`.

    `clock` returns an aware `datetime`; `seen(event_id)` says whether an event was accepted
    before.
    """

    def __init__(
        self,
        consumer_key: str,
        *,
        clock: Clock,
        seen: SeenCheck,
        max_age: timedelta = MAX_AGE,
        max_future_skew: timedelta = MAX_FUTURE_SKEW,
    ) -> None:
        if not consumer_key:
            raise ValueError("a consumer key is needed to verify SnapTrade webhooks")
        self._consumer_key = consumer_key
        self._clock = clock
        self._seen = seen
        self._max_age = max_age
        self._max_future_skew = max_future_skew

    def __repr__(self) -> str:
        return "SnapTradeWebhookVerifier(consumer_key=***)"

    async def verify(
        self, body: bytes, headers: Mapping[str, str]
    ) -> SnapTradeWebhook | UnknownSnapTradeWebhook:
        """The event in `body`, or `WebhookRefused`."""
        signature = header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRefused("bad_signature", "no Signature header")
        payload = load_json_object(body)
        if not digests_match(expected_signature(self._consumer_key, payload), signature.strip()):
            raise WebhookRefused("bad_signature", "the Signature does not match the body")
        event = parse_event(payload)
        check_age(
            event.occurred_at,
            self._clock(),
            max_age=self._max_age,
            max_future_skew=self._max_future_skew,
        )
        if await self._seen(event.event_id):
            raise WebhookRefused("replayed", f"webhook {event.event_id} was already received")
        return event


def _required(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise WebhookRefused("malformed", f"{name} is missing or not a string")
    return value


def _optional(payload: Mapping[str, Any], name: str) -> str | None:
    return None if payload.get(name) is None else _required(payload, name)


MAX_EVENT_ID = 128


def _event_id(payload: Mapping[str, Any]) -> str:
    # The spec's WebhookBase spells it `webookId`; deliveries carry `webhookId`, TRADE_* both.
    for name in ("webhookId", "webookId"):
        if payload.get(name) is not None:
            found = _required(payload, name)
            # SnapTrade's are UUIDs; the events table keeps up to this many characters.
            if len(found) > MAX_EVENT_ID:
                raise WebhookRefused("malformed", f"{name} is longer than {MAX_EVENT_ID}")
            return found
    raise WebhookRefused("malformed", "webhookId (or webookId) is missing")


def _timestamp(payload: Mapping[str, Any]) -> datetime:
    text = _required(payload, "eventTimestamp")
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise WebhookRefused("malformed", "eventTimestamp is not an ISO-8601 time") from exc
    if when.tzinfo is None:
        raise WebhookRefused("malformed", "eventTimestamp has no UTC offset")
    return when


def _holdings(details: Any) -> HoldingsUpdate:
    if not isinstance(details, Mapping):
        raise WebhookRefused("malformed", "details is missing or not an object")
    failed: dict[str, str | None] = {}
    for part in _HOLDINGS_PARTS:
        status = details.get(part)
        if not isinstance(status, Mapping) or not isinstance(status.get("success"), bool):
            raise WebhookRefused("malformed", f"details.{part}.success is missing")
        if not status["success"]:
            error = status.get("error")
            failed[part] = error if isinstance(error, str) else None
    return HoldingsUpdate(failed=failed)


def _orders(details: Any) -> tuple[Mapping[str, Any], ...]:
    orders = details.get("orders") if isinstance(details, Mapping) else None
    if not isinstance(orders, list) or not all(isinstance(o, Mapping) for o in orders):
        raise WebhookRefused("malformed", "details.orders is missing or not a list of objects")
    return tuple(orders)


def parse_event(payload: Mapping[str, Any]) -> SnapTradeWebhook | UnknownSnapTradeWebhook:
    """The typed event of a verified payload, or `malformed`."""
    raw_type = _required(payload, "eventType")
    try:
        event_type = SnapTradeEventType(raw_type)
    except ValueError:
        return UnknownSnapTradeWebhook(
            event_id=_event_id(payload),
            event_type=raw_type,
            occurred_at=_timestamp(payload),
            payload=payload,
        )
    # OAuth apps' payloads (schemaVersion oauth_v1) name the connection `connectionId`.
    oauth = payload.get("schemaVersion") == "oauth_v1"
    connection_field = "connectionId" if oauth else _CONNECTION
    required = {connection_field if f == _CONNECTION else f for f in _REQUIRED[event_type]}
    fields = {
        name: _required(payload, name) if name in required else _optional(payload, name)
        for name in (connection_field, _ACCOUNT, "brokerageId", "connectionAttemptedResult")
    }
    details = payload.get("details")
    trade = event_type in (_E.TRADE_DETECTION, _E.TRADE_UPDATE)
    return SnapTradeWebhook(
        event_id=_event_id(payload),
        event_type=event_type,
        occurred_at=_timestamp(payload),
        user_id=_required(payload, "userId"),
        authorization_id=fields[connection_field],
        account_id=fields[_ACCOUNT],
        brokerage_id=fields["brokerageId"],
        connection_attempted_result=fields["connectionAttemptedResult"],
        holdings=_holdings(details) if event_type is _E.ACCOUNT_HOLDINGS_UPDATED else None,
        orders=_orders(details) if trade else (),
        payload=payload,
    )
