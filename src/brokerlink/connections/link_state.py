"""The state a provider's connection flow carries back: who started it, for what, until when.

It rides in the redirect URL, so it is signed (HMAC-SHA256 with the app's key) and expires; the
completing request must come from the same user: another user's state is not found (404
`not_found`, as another user's ids are), never a hint that the flow exists. A state that is
not ours or is malformed is 422 `validation_error` naming `state`; an expired one too, with
"start again". It holds no secret: a Plaid link token is useless without the app's client secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from brokerlink.domain.enums import Provider
from brokerlink.errors import NotFoundError, ValidationError

__all__ = ["LinkState", "sign_state", "verify_state"]

STATE_TTL = timedelta(hours=1)


@dataclass(frozen=True)
class LinkState:
    user_id: int
    provider: Provider
    institution: str
    expires_at: datetime
    link_token: str | None = None
    # Set when the flow re-links an existing connection.
    connection_id: int | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_state(state: LinkState, key: bytes) -> str:
    payload = json.dumps(
        {
            "u": state.user_id,
            "p": state.provider.value,
            "i": state.institution,
            "e": int(state.expires_at.timestamp()),
            "t": state.link_token,
            "c": state.connection_id,
        },
        separators=(",", ":"),
    ).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(mac)}"


def verify_state(text: str, key: bytes, *, user_id: int, now: datetime) -> LinkState:
    """The state if it is ours, unexpired and the caller's; a typed refusal otherwise."""
    try:
        body, mac = text.split(".", 1)
        payload = _unb64(body)
        good = hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest(), _unb64(mac))
        data = json.loads(payload) if good else None
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise ValidationError("the connection state is not valid", field="state")
    try:
        state = LinkState(
            user_id=int(data["u"]),
            provider=Provider(data["p"]),
            institution=str(data["i"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), tz=now.tzinfo),
            link_token=data.get("t"),
            connection_id=data.get("c"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValidationError("the connection state is not valid", field="state") from error
    if state.user_id != user_id:
        raise NotFoundError("no such connection flow")
    if state.expires_at <= now:
        raise ValidationError("the connection flow expired; start again", field="state")
    return state
