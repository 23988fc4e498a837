"""Sign-in throttling: how many failed password sign-ins an email or a client address may have.

The store keeps every attempt of the current window (`sign_in_attempts`), so the limit holds
across processes. An attempt is reserved *before* its password is checked, in one transaction
with the count it is checked against, and that transaction is serialised per key (SQLite: the
write lock every transaction takes; PostgreSQL: advisory locks on the email and the address).
An attempt being checked therefore counts already, and concurrent attempts cannot slip past the
limit: whatever their number, at most `max_failures` passwords are checked per email per window
(and `max_failures_per_address` per address), the exact limit with no slip.

A throttled attempt is refused before any password work and is not recorded, so the lock lifts
when the oldest counted failure leaves the window (`Retry-After`): an attacker gets at most
`max_failures` guesses per window. A success forgets the account's failures; the address's stay
(signing in to one's own account must not reset a count run up against others'). Unknown emails
are throttled like known ones, so the throttle says nothing about who has an account. An
attempt whose process died before it settled counts as a failure until it leaves the window.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from starlette.requests import Request

from brokerlink.config import Settings
from brokerlink.errors import BrokerlinkError

__all__ = ["SignInPolicy", "SignInThrottled", "client_address", "email_key"]

UNKNOWN_ADDRESS = "unknown"


@dataclass(frozen=True)
class SignInPolicy:
    max_failures: int = 5
    max_failures_per_address: int = 20
    window: timedelta = timedelta(minutes=15)
    trusted_proxy_hops: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInPolicy:
        return cls(
            max_failures=settings.signin_max_failures,
            max_failures_per_address=settings.signin_max_failures_per_address,
            window=timedelta(minutes=settings.signin_window_minutes),
            trusted_proxy_hops=settings.trusted_proxy_hops,
        )

    def limit(self, by: Literal["email", "address"]) -> int:
        return self.max_failures if by == "email" else self.max_failures_per_address


def _in_words(seconds: int) -> str:
    if seconds <= 60:
        return "in a minute"
    return f"in {math.ceil(seconds / 60)} minutes"


class SignInThrottled(BrokerlinkError):
    """Too many failed sign-ins: refused before any password is checked (429, Retry-After)."""

    status_code = 429
    code = "sign_in_throttled"

    def __init__(
        self, by: Literal["email", "address"], *, next_allowed_at: datetime, now: datetime
    ):
        self.retry_after = max(1, math.ceil((next_allowed_at - now).total_seconds()))
        self.next_allowed_at = next_allowed_at
        self.reason = (
            "too many failed sign-ins for this email"
            if by == "email"
            else "too many failed sign-ins from this network address"
        )
        super().__init__(f"Too many failed sign-ins. Try again {_in_words(self.retry_after)}.")


def email_key(email: str) -> str:
    """What the store keeps of an email it counts attempts for: its SHA-256."""
    return hashlib.sha256(email.strip().lower().encode("utf-8", "surrogatepass")).hexdigest()


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request: Request, trusted_proxy_hops: int = 0) -> str:
    """The client's address: the connection's own, unless the app is behind trusted proxies.

    Each proxy appends the address it was connected from to X-Forwarded-For, so behind N of
    them the entry N from the right is the one the first proxy saw; the entries left of it are
    whatever the client chose to send, and never trusted.
    """
    direct = request.client.host if request.client else None
    if trusted_proxy_hops > 0:
        forwarded = [
            part
            for header in request.headers.getlist("x-forwarded-for")
            for part in header.split(",")
        ]
        if forwarded:
            chosen = forwarded[-min(trusted_proxy_hops, len(forwarded))]
            found = _address(chosen)
            if found is not None:
                return found
    if direct:
        return (_address(direct) or direct)[:64]
    return UNKNOWN_ADDRESS
