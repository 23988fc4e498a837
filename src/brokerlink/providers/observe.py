"""What the request pipeline tells about each provider call once it has ended.

    with call_context(institution="schwab", user_id=42):   # the caller says what it knows
        await connector.get_holdings(...)                     # each call's record carries it

`Pipeline.send` (`providers/_http.py`) builds one `CallRecord` per call (all its attempts), logs
it as the `provider.call` event and hands it to the `Observer`'s sinks: the call log writer and
the metrics (`brokerlink.observability`), injected by the composition root, so that provider code
never imports the store. A sink's `observe` runs on the request path: it must not block or do
I/O (append to a buffer, bump a counter).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = [
    "CallContext",
    "CallRecord",
    "CallSink",
    "CostTag",
    "Observer",
    "call_context",
    "current_context",
]


@dataclass(frozen=True)
class CallContext:
    """What the caller knows about the calls it makes: for whom, at which institution."""

    institution: str | None = None
    user_id: int | None = None


_NONE = CallContext()
_context: contextvars.ContextVar[CallContext | None] = contextvars.ContextVar(
    "brokerlink_call_context", default=None
)


def current_context() -> CallContext:
    return _context.get() or _NONE


@contextlib.contextmanager
def call_context(
    *, institution: str | None = None, user_id: int | str | None = None
) -> Iterator[CallContext]:
    """Calls made inside the block are recorded with this institution and user (a value left
    None keeps the enclosing block's). Follows asyncio tasks started inside it."""
    outer = current_context()
    uid = _user_id(user_id)
    inner = CallContext(
        institution=institution if institution is not None else outer.institution,
        user_id=uid if uid is not None else outer.user_id,
    )
    token = _context.set(inner)
    try:
        yield inner
    finally:
        _context.reset(token)


def _user_id(value: int | str | None) -> int | None:
    # Connectors take the app's user id as a string; the call log keys it as the users row.
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class CostTag:
    """What a billed call costs: the priced operation (the cost ledger's name for it) and USD;
    `amount` None for a billed operation the price table does not name."""

    type: str
    amount: Decimal | None

    def as_log(self) -> dict[str, str | None]:
        return {"type": self.type, "amount": None if self.amount is None else str(self.amount)}


@dataclass(frozen=True)
class CallRecord:
    """One provider call, from its first attempt to its outcome."""

    provider: str
    operation: str
    event: str
    request_id: str  # ours, one per call
    provider_request_id: str | None
    latency_ms: float  # from the first attempt to the outcome, backoff included
    result: str  # "ok", or the typed error's class name ("RateLimited", "ProviderUnavailable")
    error_code: str | None  # the provider's code, or the network failure's class
    status: int | None
    attempts: int
    throttled: int  # 429 answers received on the way
    cost: CostTag | None
    institution: str | None
    user_id: int | None
    occurred_at: datetime

    @property
    def ok(self) -> bool:
        return self.result == "ok"


class CallSink(Protocol):
    def observe(self, record: CallRecord) -> None: ...


@dataclass(frozen=True)
class Observer:
    """The sinks each finished call goes to, and the USD price of billed calls by event name
    (`snaptrade.authorization.refresh`, `plaid.investments.refresh`: the cost ledger's names)."""

    sinks: Sequence[CallSink] = ()
    prices: Mapping[str, Decimal] = field(default_factory=dict)

    def cost(self, event: str, *, billed: bool) -> CostTag | None:
        price = self.prices.get(event)
        if price is not None:
            return CostTag(event, price)
        return CostTag(event, None) if billed else None

    def observe(self, record: CallRecord) -> None:
        for sink in self.sinks:
            sink.observe(record)
