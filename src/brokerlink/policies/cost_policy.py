"""The cost policy, pure: prices, intervals and budgets, and the decisions made from them.

    CostPolicy               intervals, per-call and per-month prices, monthly budgets
    decide_refresh(...)      may this connection refresh now, and if not, why and when
    decide_budget(...)       does a call fit a monthly budget

`policies.cost_guard` applies them to the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from brokerlink.config import Settings
from brokerlink.domain.enums import Provider

__all__ = [
    "REFRESH_OPERATION",
    "CostPolicy",
    "RefreshDecision",
    "decide_budget",
    "decide_refresh",
    "month_start",
]

REFRESH_OPERATION = {
    Provider.SNAPTRADE: "snaptrade.authorization.refresh",
    Provider.PLAID: "plaid.investments.refresh",
}
# Refreshes that count against the interval: in flight, in doubt, accepted or done (not refused
# or failed, which the provider never billed).


@dataclass(frozen=True)
class CostPolicy:
    """Intervals, prices and budgets; built from settings at the edge."""

    refresh_intervals: Mapping[Provider, timedelta] = field(
        default_factory=lambda: {
            Provider.PLAID: timedelta(hours=24),
            Provider.SNAPTRADE: timedelta(0),
        }
    )
    # Per-call prices, by ledger operation name.
    call_prices: Mapping[str, Decimal] = field(
        default_factory=lambda: {
            REFRESH_OPERATION[Provider.SNAPTRADE]: Decimal("0.05"),
            REFRESH_OPERATION[Provider.PLAID]: Decimal("0.12"),
        }
    )
    # Per-month prices of keeping a connection: SnapTrade bills per connected user, Plaid per item.
    monthly_per_user: Mapping[Provider, Decimal] = field(
        default_factory=lambda: {Provider.SNAPTRADE: Decimal("1.75")}
    )
    monthly_per_connection: Mapping[Provider, Decimal] = field(
        default_factory=lambda: {Provider.PLAID: Decimal("0.18")}
    )
    user_monthly_budget: Decimal | None = None
    provider_monthly_budgets: Mapping[Provider, Decimal] = field(default_factory=dict)
    # An intent still `sending` after this long belongs to a process that died mid-call.
    in_flight_timeout: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Settings) -> CostPolicy:
        budgets = {
            provider: budget
            for provider, budget in (
                (Provider.SNAPTRADE, settings.budget_snaptrade_monthly),
                (Provider.PLAID, settings.budget_plaid_monthly),
            )
            if budget is not None
        }
        return cls(
            refresh_intervals={
                Provider.PLAID: timedelta(hours=settings.plaid_refresh_interval_hours),
                Provider.SNAPTRADE: timedelta(
                    seconds=settings.snaptrade_refresh_min_interval_seconds
                ),
            },
            call_prices={
                REFRESH_OPERATION[Provider.SNAPTRADE]: settings.cost_snaptrade_refresh,
                REFRESH_OPERATION[Provider.PLAID]: settings.cost_plaid_investments_refresh,
            },
            monthly_per_user={Provider.SNAPTRADE: settings.cost_snaptrade_monthly_per_user},
            monthly_per_connection={
                Provider.PLAID: settings.cost_plaid_investments_monthly_per_item
            },
            user_monthly_budget=settings.budget_user_monthly,
            provider_monthly_budgets=budgets,
        )

    def price(self, operation: str) -> Decimal:
        return self.call_prices.get(operation, Decimal(0))

    def refresh_interval(self, provider: Provider) -> timedelta:
        return self.refresh_intervals.get(provider, timedelta(0))

    def monthly_cost(
        self, provider: Provider, *, connections: int, first_for_user: bool
    ) -> Decimal:
        """What keeping `connections` connections of a provider costs a month."""
        per_user = self.monthly_per_user.get(provider, Decimal(0)) if first_for_user else Decimal(0)
        per_connection = self.monthly_per_connection.get(provider, Decimal(0)) * connections
        return per_user + per_connection


@dataclass(frozen=True)
class RefreshDecision:
    allowed: bool
    reason: str
    next_allowed_at: datetime | None
    overridden: bool = False


def decide_refresh(
    policy: CostPolicy,
    provider: Provider,
    *,
    last_refresh_at: datetime | None,
    now: datetime,
    override: bool = False,
) -> RefreshDecision:
    """Whether a manual refresh may go out now. Pure."""
    interval = policy.refresh_interval(provider)
    if last_refresh_at is None or interval <= timedelta(0):
        return RefreshDecision(True, "no refresh inside the minimum interval", None)
    next_allowed = last_refresh_at + interval
    if now >= next_allowed:
        return RefreshDecision(True, "the minimum interval has passed", None)
    hours = interval.total_seconds() / 3600
    reason = (
        f"{provider.value} refreshes are limited to one per {hours:g} h per connection "
        f"(each costs {policy.price(REFRESH_OPERATION.get(provider, '')):f} USD); "
        f"the last was at {last_refresh_at.isoformat(timespec='seconds')}"
    )
    if override:
        return RefreshDecision(True, f"overridden by the user: {reason}", next_allowed, True)
    return RefreshDecision(False, reason, next_allowed)


def decide_budget(
    *, amount: Decimal, spent: Decimal, budget: Decimal | None, scope: str
) -> tuple[bool, str, Decimal]:
    """(allowed, reason, remaining) for a call of `amount` against one monthly budget. Pure."""
    if budget is None or amount <= 0:
        return True, "no budget applies", budget - spent if budget is not None else Decimal(0)
    remaining = budget - spent
    if amount > remaining:
        return (
            False,
            f"the {scope} monthly budget of {budget:f} USD would be exceeded "
            f"({spent:f} spent, {max(remaining, Decimal(0)):f} left, this call costs {amount:f})",
            max(remaining, Decimal(0)),
        )
    return True, "within budget", remaining


def month_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
