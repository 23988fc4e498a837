"""The operator dashboard's figures, aggregated by the database on SQLite and PostgreSQL alike.

    success rates      provider_call_log, `result == "ok"`, over 1 h and 24 h, per provider
    staleness          now − accounts.data_as_of (else last_synced_at), per provider; manual
                       accounts excluded, accounts never synced counted apart
    refreshes          refresh_log rows and cost_ledger charges (every status but `void`) per
                       UTC day, the last 14 days
    broken connections connections.status `broken`, with status_reason, newest first
    recent errors      provider_call_log rows that are not ok and accounts' last_error, newest 20
    webhook lag        received − the provider's event time: p50 and worst per provider, 24 h
    missing webhooks   accounts with no holdings webhook (else no sync) for 12 h

Only reads; never calls a provider.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import BigInteger, ColumnElement, Float, and_, case, cast, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.db.types import UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import (
    Account,
    Connection,
    ConnectionStatus,
    CostEntry,
    LedgerStatus,
    ProviderCall,
    RefreshLog,
)
from brokerlink.operator.schemas import (
    BrokenConnectionOut,
    MissingWebhookOut,
    MissingWebhooksOut,
    OperatorSummary,
    RecentErrorOut,
    RefreshDayOut,
    StalenessOut,
    SuccessRateOut,
    WebhookLagOut,
)
from brokerlink.repositories.webhook_events import WebhookEventRepository, epoch_seconds

__all__ = ["DAYS", "MISSING_WEBHOOK_AFTER", "OperatorService"]

DAYS = 14
MISSING_WEBHOOK_AFTER = timedelta(hours=12)
RECENT_ERRORS = 20
BROKEN_LISTED = 50
MISSING_LISTED = 50
# Money columns keep 8 decimals; SQLite stores them as text, so they are summed there as
# integers of 10⁻⁸ (exact) rather than through floats.
_SCALE = 10**8


class OperatorService:
    """Reads the dashboard's figures at `clock()`."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        clock: Callable[[], datetime] = utcnow,
        missing_after: timedelta = MISSING_WEBHOOK_AFTER,
        webhook_providers: Collection[Provider] | None = None,
    ) -> None:
        self.session = session
        self.clock = clock
        # Missing webhooks as the schedule sees them (`SyncSchedule.missing_webhook_after`,
        # its webhook providers; None: every provider that sends holdings webhooks).
        self.missing_after = missing_after
        self.webhook_providers = webhook_providers
        self.webhooks = WebhookEventRepository.from_session(session)

    @property
    def _sqlite(self) -> bool:
        return self.session.get_bind().dialect.name == "sqlite"

    async def summary(self) -> OperatorSummary:
        now = self.clock()
        return OperatorSummary(
            generated_at=now,
            success_rates=await self.success_rates(now),
            staleness=await self.staleness(now),
            refreshes=await self.refreshes(now),
            broken_connections=await self.broken_connections(),
            recent_errors=await self.recent_errors(),
            webhook_lag=await self.webhook_lag(now),
            missing_webhooks=await self.missing_webhooks(now),
        )

    async def success_rates(self, now: datetime) -> list[SuccessRateOut]:
        # Both windows in one pass over the day's calls.
        ok = ProviderCall.result == "ok"
        hour = ProviderCall.occurred_at >= now - timedelta(hours=1)
        rows = await self.session.execute(
            select(
                ProviderCall.provider,
                func.count(),
                func.sum(case((ok, 1), else_=0)),
                func.sum(case((hour, 1), else_=0)),
                func.sum(case((and_(hour, ok), 1), else_=0)),
            )
            .where(
                ProviderCall.occurred_at >= now - timedelta(hours=24),
                ProviderCall.occurred_at <= now,
            )
            .group_by(ProviderCall.provider)
            .order_by(ProviderCall.provider)
        )
        out: list[SuccessRateOut] = []
        for provider, day_calls, day_ok, hour_calls, hour_ok in rows.all():
            windows: tuple[tuple[Literal["1h", "24h"], int, int], ...] = (
                ("1h", int(hour_calls or 0), int(hour_ok or 0)),
                ("24h", int(day_calls), int(day_ok or 0)),
            )
            for window, calls, good in windows:
                if calls:
                    out.append(
                        SuccessRateOut(
                            provider=provider.value,
                            window=window,
                            calls=calls,
                            ok=good,
                            rate=good / calls,
                        )
                    )
        return out

    async def staleness(self, now: datetime) -> list[StalenessOut]:
        as_of = func.coalesce(Account.data_as_of, Account.last_synced_at, type_=UTCDateTime())
        rows = await self.session.execute(
            select(
                Connection.provider,
                func.count(),
                func.count(as_of),
                func.avg(epoch_seconds(self.session, as_of)),
                func.min(as_of, type_=UTCDateTime()),
            )
            .join(Connection, Account.connection_id == Connection.id)
            .where(Connection.provider != Provider.MANUAL)
            .group_by(Connection.provider)
            .order_by(Connection.provider)
        )
        out = []
        for provider, accounts, synced, average_epoch, oldest in rows.all():
            average = None if average_epoch is None else now.timestamp() - float(average_epoch)
            worst = None if oldest is None else (now - oldest).total_seconds()
            out.append(
                StalenessOut(
                    provider=provider.value,
                    accounts=int(accounts),
                    never_synced=int(accounts) - int(synced),
                    average_seconds=None if average is None else round(max(average, 0.0), 3),
                    worst_seconds=None if worst is None else round(max(worst, 0.0), 3),
                )
            )
        return out

    def _day(self, column: Any) -> ColumnElement[Any]:
        if self._sqlite:
            return func.strftime("%Y-%m-%d", column)
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")

    def _money_sum(self, column: Any) -> ColumnElement[Any]:
        if self._sqlite:
            scaled = func.round(type_coerce(column, Float) * float(_SCALE))
            return func.sum(cast(scaled, BigInteger))
        return func.sum(column)

    async def refreshes(self, now: datetime) -> list[RefreshDayOut]:
        first = (now.astimezone(UTC) - timedelta(days=DAYS - 1)).date()
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        days = [first + timedelta(days=n) for n in range(DAYS)]
        counts: dict[date, dict[str, int]] = defaultdict(dict)
        day = self._day(RefreshLog.requested_at)
        rows = await self.session.execute(
            select(day, RefreshLog.provider, func.count())
            .where(RefreshLog.requested_at >= start, RefreshLog.requested_at <= now)
            .group_by(day, RefreshLog.provider)
        )
        for text, provider, count in rows.all():
            counts[date.fromisoformat(text)][provider.value] = int(count)
        costs: dict[date, dict[str, Decimal]] = defaultdict(dict)
        day = self._day(CostEntry.occurred_at)
        charged = await self.session.execute(
            select(day, CostEntry.currency, self._money_sum(CostEntry.amount))
            .where(
                CostEntry.occurred_at >= start,
                CostEntry.occurred_at <= now,
                CostEntry.status != LedgerStatus.VOID,
            )
            .group_by(day, CostEntry.currency)
        )
        for text, currency, total in charged.all():
            amount = Decimal(int(total)).scaleb(-8) if self._sqlite else Decimal(total)
            costs[date.fromisoformat(text)][currency] = amount.quantize(Decimal("0.00000001"))
        return [
            RefreshDayOut(
                day=d,
                refreshes=sum(counts[d].values()),
                by_provider=dict(sorted(counts[d].items())),
                cost=dict(sorted(costs[d].items())),
            )
            for d in days
        ]

    async def broken_connections(self) -> list[BrokenConnectionOut]:
        rows = await self.session.scalars(
            select(Connection)
            .where(Connection.status == ConnectionStatus.BROKEN)
            .order_by(Connection.updated_at.desc(), Connection.id.desc())
            .limit(BROKEN_LISTED)
        )
        return [
            BrokenConnectionOut(
                connection_id=c.id,
                user_id=c.user_id,
                provider=c.provider.value,
                institution=c.institution_name,
                status=c.status.value,
                reason=c.status_reason,
                since=c.updated_at,
            )
            for c in rows
        ]

    async def recent_errors(self) -> list[RecentErrorOut]:
        calls = await self.session.scalars(
            select(ProviderCall)
            .where(ProviderCall.result != "ok")
            .order_by(ProviderCall.occurred_at.desc(), ProviderCall.id.desc())
            .limit(RECENT_ERRORS)
        )
        found = [
            RecentErrorOut(
                source="provider_call",
                at=c.occurred_at,
                provider=c.provider.value,
                institution=c.institution,
                what=c.operation,
                error=c.result,
                status_code=c.status_code,
            )
            for c in calls
        ]
        failed_at = func.coalesce(Account.last_error_at, Account.updated_at, type_=UTCDateTime())
        accounts = await self.session.execute(
            select(Account, Connection, failed_at)
            .join(Connection, Account.connection_id == Connection.id)
            .where(Account.last_error.is_not(None))
            .order_by(failed_at.desc(), Account.id.desc())
            .limit(RECENT_ERRORS)
        )
        found += [
            RecentErrorOut(
                source="account",
                at=at,
                provider=connection.provider.value,
                institution=connection.institution_name,
                what=account.name or f"Account {account.id}",
                error=account.last_error or "",
                account_id=account.id,
            )
            for account, connection, at in accounts.all()
        ]
        found.sort(key=lambda e: e.at, reverse=True)
        return found[:RECENT_ERRORS]

    async def webhook_lag(self, now: datetime) -> list[WebhookLagOut]:
        stats = await self.webhooks.lag_stats(now - timedelta(hours=24), now)
        return [
            WebhookLagOut(
                provider=provider.value,
                events=events,
                p50_seconds=round(p50, 3),
                worst_seconds=round(worst, 3),
            )
            for provider, (events, p50, worst) in sorted(stats.items())
        ]

    async def missing_webhooks(self, now: datetime) -> MissingWebhooksOut:
        count, silent = await self.webhooks.silent_accounts(
            now - self.missing_after, providers=self.webhook_providers, limit=MISSING_LISTED
        )
        return MissingWebhooksOut(
            threshold_hours=self.missing_after / timedelta(hours=1),
            count=count,
            accounts=[
                MissingWebhookOut(
                    account_id=s.account_id,
                    connection_id=s.connection_id,
                    provider=s.provider.value,
                    institution=s.institution,
                    account=s.name,
                    last_webhook_at=s.last_webhook_at,
                    last_synced_at=s.last_synced_at,
                    silent_seconds=round((now - s.since).total_seconds(), 3),
                )
                for s in silent
            ],
        )
