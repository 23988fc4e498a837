"""What `/api/operator/summary` answers (and what the `/operator` page draws)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "BrokenConnectionOut",
    "MissingWebhookOut",
    "MissingWebhooksOut",
    "OperatorSummary",
    "RecentErrorOut",
    "RefreshDayOut",
    "StalenessOut",
    "SuccessRateOut",
    "WebhookLagOut",
]


class SuccessRateOut(BaseModel):
    """Provider calls in a window, and the share that succeeded (`result == "ok"`)."""

    provider: str
    window: Literal["1h", "24h"]
    calls: int
    ok: int
    rate: float | None = Field(description="ok / calls (0–1); null when there were no calls.")


class StalenessOut(BaseModel):
    """How old the stored data of a provider's accounts is: now − the provider's as-of time,
    else now − the last sync. Accounts never synced are counted apart."""

    provider: str
    accounts: int
    never_synced: int
    average_seconds: float | None
    worst_seconds: float | None


class RefreshDayOut(BaseModel):
    """One UTC day: refreshes requested (refresh log) and what billed calls cost (cost ledger,
    every status but `void`), per currency."""

    day: date
    refreshes: int
    by_provider: dict[str, int]
    cost: dict[str, Decimal]


class BrokenConnectionOut(BaseModel):
    connection_id: int
    user_id: int
    provider: str
    institution: str
    status: str
    reason: str | None
    since: datetime


class RecentErrorOut(BaseModel):
    """A provider call that did not succeed, or an account whose last sync failed."""

    source: Literal["provider_call", "account"]
    at: datetime
    provider: str
    institution: str | None
    what: str = Field(description="The operation called, or the account's name.")
    error: str
    status_code: int | None = None
    account_id: int | None = None


class WebhookLagOut(BaseModel):
    """Received − the provider's event time, over the last 24 hours."""

    provider: str
    events: int
    p50_seconds: float
    worst_seconds: float


class MissingWebhookOut(BaseModel):
    account_id: int
    connection_id: int
    provider: str
    institution: str
    account: str | None
    last_webhook_at: datetime | None
    last_synced_at: datetime | None
    silent_seconds: float = Field(description="Since the last holdings webhook, else the sync.")


class MissingWebhooksOut(BaseModel):
    """Accounts at a webhook-capable provider with no holdings webhook (or, lacking any, no
    sync) for longer than `threshold_hours`; the oldest first, at most `limit` listed."""

    threshold_hours: float
    count: int
    accounts: list[MissingWebhookOut]


class OperatorSummary(BaseModel):
    generated_at: datetime
    success_rates: list[SuccessRateOut]
    staleness: list[StalenessOut]
    refreshes: list[RefreshDayOut] = Field(description="The last 14 UTC days, oldest first.")
    broken_connections: list[BrokenConnectionOut]
    recent_errors: list[RecentErrorOut]
    webhook_lag: list[WebhookLagOut]
    missing_webhooks: MissingWebhooksOut
