"""Plaid webhooks: the `Plaid-Verification` JWT, then the typed event.

Plaid sends a JWT (ES256 only) whose claims are `iat` and `request_body_sha256`, the hex SHA-256
of the raw body; the public key comes from `/webhook_verification_key/get` by the JWT's `kid`.
The checks, in order, each refusing with `WebhookRefused`:

1. the header is a JWT with `alg` ES256 and a `kid` (`none`, HS256 and RS256 are refused before
   any key is looked at, so no key can be confused with a shared secret);
2. the key for `kid` (fetched once, then cached; an unknown or expired key is refused);
3. the signature, by PyJWT with that key and ES256 alone;
4. the body's SHA-256 against `request_body_sha256`, in constant time;
5. `iat` within five minutes (and not ahead of the clock beyond a small skew);
6. the event id (the body hash and `iat`) not seen before;

and only then is the body parsed. All of them are `bad_signature` but 5 (`stale`), 6
(`replayed`) and an unparsable signed body (`malformed`).

Plaid's bodies carry no id, and a retry (Plaid retries an unanswered webhook for up to 24
hours) is signed afresh: a new `iat`, so a new event id, over a byte-identical body. So 6 only
refuses the very same delivery again; the receiver (`brokerlink.webhooks`) knows a retry by its
body (`PlaidWebhook.body_sha256`) within `RETRY_WINDOW`, in the store. A type or code outside
`KNOWN_WEBHOOKS` is verified and parsed all the same (`PlaidWebhook.known` is false): Plaid
adds webhooks, and one this product does not know is no forgery (nor is anything of it read
beyond its type and code).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from brokerlink.domain.errors import LogicalError
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
    "KNOWN_WEBHOOKS",
    "RETRY_WINDOW",
    "VERIFICATION_HEADER",
    "KeyFetcher",
    "PlaidWebhook",
    "PlaidWebhookVerifier",
    "WebhookRefused",
]

VERIFICATION_HEADER = "Plaid-Verification"
ALGORITHM = "ES256"

# kid -> the `key` object of /webhook_verification_key/get. Plaid refusing the kid is a
# `LogicalError` (the Plaid client's INVALID_WEBHOOK_VERIFICATION_KEY_ID); anything else it
# raises (Plaid unreachable) passes through, so the webhook is answered 5xx and Plaid retries.
KeyFetcher = Callable[[str], Awaitable[Mapping[str, Any]]]

# How long a cached key is trusted before it is fetched again, so a key Plaid has since
# expired stops verifying.
KEY_TTL = timedelta(hours=1)

# How long after its first attempt Plaid may retry a webhook its receiver did not answer 200:
# retries start at 30 s, each wait 4x the last, within 24 h (plaid.com/docs/api/webhooks), so the
# sixth and last comes 11.4 h after the first attempt. A delivery of the same body signed up to
# this long before is a retry. Not 24 h: an Item's daily HOLDINGS DEFAULT_UPDATE often repeats
# its body byte for byte about 24 h later, and must not be taken for a retry.
RETRY_WINDOW = timedelta(hours=12)

# The webhooks of what this product links (Items with investments or transactions, through
# Hosted Link), by `webhook_type`, as Plaid's spec documents them. Others are verified, recorded
# `ignored` and left alone.
KNOWN_WEBHOOKS: Mapping[str, frozenset[str]] = {
    "HOLDINGS": frozenset({"DEFAULT_UPDATE"}),
    "INVESTMENTS_TRANSACTIONS": frozenset({"DEFAULT_UPDATE", "HISTORICAL_UPDATE"}),
    "ITEM": frozenset(
        {
            "ERROR",
            "LOGIN_REPAIRED",
            "NEW_ACCOUNTS_AVAILABLE",
            "PENDING_DISCONNECT",
            "PENDING_EXPIRATION",
            "USER_ACCOUNT_REVOKED",
            "USER_PERMISSION_REVOKED",
            "WEBHOOK_UPDATE_ACKNOWLEDGED",
        }
    ),
    "LINK": frozenset({"EVENTS", "ITEM_ADD_RESULT", "SESSION_FINISHED"}),
    "TRANSACTIONS": frozenset(
        {
            "DEFAULT_UPDATE",
            "HISTORICAL_UPDATE",
            "INITIAL_UPDATE",
            "RECURRING_TRANSACTIONS_UPDATE",
            "SYNC_UPDATES_AVAILABLE",
            "TRANSACTIONS_REMOVED",
        }
    ),
}


@dataclass(frozen=True, slots=True)
class PlaidWebhook:
    """A verified Plaid webhook. `event_id` is the body's hash and the signing time: Plaid
    sends no id of its own, and the signature cannot serve (ECDSA signatures are malleable).
    `body_sha256` is the body's alone, the same in each of Plaid's retries of it."""

    event_id: str
    webhook_type: str
    webhook_code: str
    item_id: str | None
    error_code: str | None
    environment: str | None
    signed_at: datetime
    payload: Mapping[str, Any]
    body_sha256: str

    @property
    def known(self) -> bool:
        """Whether it is one of `KNOWN_WEBHOOKS`."""
        return _known(self.webhook_type, self.webhook_code)


@dataclass(frozen=True, slots=True)
class _CachedKey:
    key: jwt.PyJWK
    fetched_at: datetime


class PlaidWebhookVerifier:
    """Verifies Plaid webhooks with keys from `fetch_key`, cached by `kid`.

    `clock` returns an aware `datetime`; `seen(event_id)` says whether an event was accepted
    before. One verifier is meant to live as long as the app, so that its key cache does.
    """

    def __init__(
        self,
        fetch_key: KeyFetcher,
        *,
        clock: Clock,
        seen: SeenCheck,
        max_age: timedelta = MAX_AGE,
        max_future_skew: timedelta = MAX_FUTURE_SKEW,
        key_ttl: timedelta = KEY_TTL,
    ) -> None:
        self._fetch_key = fetch_key
        self._clock = clock
        self._seen = seen
        self._max_age = max_age
        self._max_future_skew = max_future_skew
        self._key_ttl = key_ttl
        self._keys: dict[str, _CachedKey] = {}
        self._pending: dict[str, asyncio.Task[jwt.PyJWK]] = {}

    async def verify(self, body: bytes, headers: Mapping[str, str]) -> PlaidWebhook:
        """The event in `body`, or `WebhookRefused`."""
        token = header(headers, VERIFICATION_HEADER)
        if not token:
            raise WebhookRefused("bad_signature", f"no {VERIFICATION_HEADER} header")
        kid = _key_id(token)
        key = await self._key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[ALGORITHM],
                # Times are checked below against the injected clock, not PyJWT's.
                options={"verify_iat": False, "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError as exc:
            raise WebhookRefused("bad_signature", f"the JWT does not verify: {exc}") from exc
        body_hash = hashlib.sha256(body).hexdigest()
        claimed = claims.get("request_body_sha256")
        if not isinstance(claimed, str) or not digests_match(body_hash, claimed):
            raise WebhookRefused("bad_signature", "request_body_sha256 does not match the body")
        iat = claims.get("iat")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise WebhookRefused("bad_signature", "the JWT has no integer iat")
        try:
            signed_at = datetime.fromtimestamp(iat, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise WebhookRefused("stale", f"iat {iat} is not a usable time") from exc
        check_age(
            signed_at,
            self._clock(),
            max_age=self._max_age,
            max_future_skew=self._max_future_skew,
        )
        event = _parse(load_json_object(body), body_hash, iat, signed_at)
        if await self._seen(event.event_id):
            raise WebhookRefused("replayed", "this webhook was already received")
        return event

    async def _key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        cached = self._keys.get(kid)
        if cached is not None and now - cached.fetched_at < self._key_ttl:
            return cached.key
        # One fetch per kid at a time: after a rotation, a burst of webhooks asks once.
        pending = self._pending.get(kid)
        if pending is None:
            pending = asyncio.create_task(self._fetch(kid, now))
            self._pending[kid] = pending
            pending.add_done_callback(lambda _: self._pending.pop(kid, None))
        return await asyncio.shield(pending)

    async def _fetch(self, kid: str, now: datetime) -> jwt.PyJWK:
        try:
            jwk = await self._fetch_key(kid)
        except LogicalError as exc:
            self._keys.pop(kid, None)
            raise WebhookRefused("bad_signature", f"Plaid does not know key {kid!r}") from exc
        if jwk.get("expired_at") is not None:
            self._keys.pop(kid, None)
            raise WebhookRefused("bad_signature", f"key {kid!r} has expired")
        if jwk.get("kid") != kid or jwk.get("alg") != ALGORITHM:
            raise WebhookRefused("bad_signature", f"key {kid!r} is not an {ALGORITHM} key")
        try:
            key = jwt.PyJWK(dict(jwk), algorithm=ALGORITHM)
        except jwt.PyJWTError as exc:
            raise WebhookRefused("bad_signature", f"key {kid!r} is not a usable JWK") from exc
        self._keys[kid] = _CachedKey(key, now)
        return key


def _key_id(token: str) -> str:
    try:
        jose_header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise WebhookRefused("bad_signature", "the header is not a JWT") from exc
    alg = jose_header.get("alg")
    if alg != ALGORITHM:
        raise WebhookRefused("bad_signature", f"alg {alg!r} is refused: only {ALGORITHM}")
    kid = jose_header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise WebhookRefused("bad_signature", "the JWT header has no kid")
    return kid


def _optional_text(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, str):
        raise WebhookRefused("malformed", f"{name} is not a string")
    return value


def _known(webhook_type: str, webhook_code: str) -> bool:
    return webhook_code in KNOWN_WEBHOOKS.get(webhook_type, frozenset())


def _parse(
    payload: Mapping[str, Any], body_hash: str, iat: int, signed_at: datetime
) -> PlaidWebhook:
    webhook_type = _optional_text(payload, "webhook_type")
    webhook_code = _optional_text(payload, "webhook_code")
    if not webhook_type or not webhook_code:
        raise WebhookRefused("malformed", "webhook_type and webhook_code are required")
    event_id = f"{body_hash}:{iat}"
    if not _known(webhook_type, webhook_code):
        # Nothing else of it is read: no shape this product expects can refuse what Plaid added.
        return PlaidWebhook(
            event_id, webhook_type, webhook_code, None, None, None, signed_at, payload, body_hash
        )
    error = payload.get("error")
    if error is not None and not isinstance(error, Mapping):
        raise WebhookRefused("malformed", "error is not an object")
    return PlaidWebhook(
        event_id=event_id,
        webhook_type=webhook_type,
        webhook_code=webhook_code,
        item_id=_optional_text(payload, "item_id"),
        error_code=_optional_text(error, "error_code") if error else None,
        environment=_optional_text(payload, "environment"),
        signed_at=signed_at,
        payload=payload,
        body_sha256=body_hash,
    )
