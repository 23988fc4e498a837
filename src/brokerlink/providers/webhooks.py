"""What both providers' webhook verifiers share: the refusal, its codes, and the age rule.

    BrokerlinkError
    └── WebhookRefused           # a webhook that must change nothing; `code` is one of:
          bad_signature  401     #   no signature, a forged one, an unknown or expired key
          stale          401     #   signed too long ago, or dated in the future
          replayed       409     #   an event id already seen
          malformed      400     #   signed, but not a payload of the provider's shape

A refusal is logical (sending the same request again cannot succeed). A verifier that cannot
reach the provider for a key raises the provider's technical error instead, so the sender's own
retry can succeed later.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from brokerlink.errors import BrokerlinkError

__all__ = [
    "MAX_AGE",
    "MAX_FUTURE_SKEW",
    "Clock",
    "RefusalCode",
    "SeenCheck",
    "WebhookRefused",
    "check_age",
    "digests_match",
    "header",
    "load_json_object",
]

RefusalCode = Literal["bad_signature", "stale", "replayed", "malformed"]

# An event id -> whether it has been accepted before. The store's unique key on the event id
# stays the final word (two deliveries can race past this check); this one refuses early.
SeenCheck = Callable[[str], Awaitable[bool]]
Clock = Callable[[], datetime]

# Both providers' documentation asks receivers to refuse events older than five minutes.
MAX_AGE = timedelta(minutes=5)
# A sender's clock a little ahead of ours is not an attack; a day ahead is.
MAX_FUTURE_SKEW = timedelta(seconds=30)

_STATUS: dict[RefusalCode, int] = {
    "bad_signature": 401,
    "stale": 401,
    "replayed": 409,
    "malformed": 400,
}


class WebhookRefused(BrokerlinkError):
    """A webhook refused before anything acted on it."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message, status_code=_STATUS[code], code=code)
        self.reason: RefusalCode = code


def header(headers: Mapping[str, str], name: str) -> str | None:
    """`name` from `headers`, case-insensitively (a plain dict is as good as httpx's headers)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def digests_match(expected: str, received: str) -> bool:
    """Constant-time comparison of two ASCII digests (a non-ASCII `received` never matches)."""
    try:
        received_bytes = received.encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), received_bytes)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json_object(body: bytes) -> dict[str, Any]:
    """`body` as a JSON object, or `malformed`. Duplicate keys and NaN/Infinity are refused:
    what a receiver acts on must be exactly what was signed, with no parser left to choose."""
    try:
        payload = json.loads(body, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise WebhookRefused("malformed", f"body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookRefused("malformed", "body is not a JSON object")
    return payload


def check_age(
    signed_at: datetime,
    now: datetime,
    *,
    max_age: timedelta = MAX_AGE,
    max_future_skew: timedelta = MAX_FUTURE_SKEW,
) -> None:
    """Refuse as `stale` an event signed more than `max_age` ago or beyond the skew ahead."""
    age = now - signed_at
    if age > max_age:
        raise WebhookRefused("stale", f"signed {int(age.total_seconds())} s ago")
    if -age > max_future_skew:
        raise WebhookRefused("stale", f"dated {int(-age.total_seconds())} s in the future")
