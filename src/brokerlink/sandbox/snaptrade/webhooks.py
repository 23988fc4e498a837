"""Signed SnapTrade webhooks, as the service sends them.

A webhook is a JSON payload with `webhookId`, `clientId`, `eventTimestamp`, `userId` and
`eventType` plus the event's own fields. The `Signature` header is the base64 HMAC-SHA256,
under the app's consumer key, of the payload as canonical JSON (keys sorted at every level, no
whitespace, ASCII-escaped). The body on the wire is serialised differently (spaces, keys in
insertion order), as a receiver must canonicalise what it parsed rather than hash the bytes.

Written apart from the client's verifier, so that a mistake shared by both cannot pass unseen.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["SignedWebhook", "sign_webhook", "webhook_payload", "webhook_signature"]

SIGNATURE_HEADER = "Signature"


def webhook_payload(
    event_type: str, *, client_id: str, user_id: str, now: float, **fields: Any
) -> dict[str, Any]:
    """A payload of `event_type` sent at `now` (Unix seconds); `fields` are the event's own
    (`brokerageAuthorizationId`, `accountId`, `details`, ...). A `None` field is left out."""
    webhook_id = str(uuid.uuid4())
    payload: dict[str, Any] = {"webhookId": webhook_id}
    if event_type.startswith("TRADE_"):
        # SnapTrade's TRADE_* samples carry the spec's misspelt id as well.
        payload["webookId"] = webhook_id
    payload |= {
        "clientId": client_id,
        "eventTimestamp": datetime.fromtimestamp(now, UTC).isoformat(),
        "userId": user_id,
        "eventType": event_type,
    }
    payload |= {name: value for name, value in fields.items() if value is not None}
    return payload


def webhook_signature(consumer_key: str, payload: dict[str, Any]) -> str:
    signed = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    digest = hmac.new(consumer_key.encode(), signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True, slots=True)
class SignedWebhook:
    """The bytes and headers of one delivery."""

    body: bytes
    headers: dict[str, str]


def sign_webhook(consumer_key: str, payload: dict[str, Any]) -> SignedWebhook:
    """The delivery of `payload`: its wire body and a `Signature` over its canonical form."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    signature = webhook_signature(consumer_key, payload)
    return SignedWebhook(body, {"Content-Type": "application/json", SIGNATURE_HEADER: signature})
