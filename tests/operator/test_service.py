"""The dashboard's figures from rows in the store, exact, on SQLite and PostgreSQL."""

from datetime import timedelta
from decimal import Decimal

import pytest

from brokerlink.domain.enums import Provider
from brokerlink.models import ConnectionStatus, LedgerStatus, RefreshStatus, RefreshTrigger
from brokerlink.operator import OperatorService
from brokerlink.repositories import (
    CostLedgerRepository,
    ProviderCallLogRepository,
    RefreshLogRepository,
    WebhookEventRepository,
)
from tests.operator.rows import NOW, account, connection

pytestmark = pytest.mark.asyncio

H = timedelta(hours=1)
M = timedelta(minutes=1)


def _service(session) -> OperatorService:
    return OperatorService(session, clock=lambda: NOW)


async def _calls(session, provider: Provider, ago: timedelta, *results: str) -> None:
    log = ProviderCallLogRepository.from_session(session)
    for n, result in enumerate(results):
        await log.record(
            provider=provider,
            operation="AccountInformation_getAllAccountPositions",
            latency_ms=40,
            result=result,
            institution="SCHWAB",
            status_code=200 if result == "ok" else 502,
            at=NOW - ago - n * timedelta(seconds=1),
        )


class TestSuccessRates:
    async def test_three_ok_and_one_error_in_the_hour_is_75_percent(self, session):
        await _calls(session, Provider.SNAPTRADE, 10 * M, "ok", "ok", "ok", "provider_unavailable")
        await _calls(session, Provider.SNAPTRADE, 2 * H, "ok", "rate_limited", "x", "y")
        await _calls(session, Provider.PLAID, 30 * M, "ok")
        await _calls(session, Provider.PLAID, 25 * H, "provider_unavailable")  # outside 24 h
        rates = {(r.provider, r.window): r for r in await _service(session).success_rates(NOW)}
        assert set(rates) == {
            ("snaptrade", "1h"),
            ("snaptrade", "24h"),
            ("plaid", "1h"),
            ("plaid", "24h"),
        }
        hour = rates["snaptrade", "1h"]
        assert (hour.calls, hour.ok, hour.rate) == (4, 3, 0.75)
        day = rates["snaptrade", "24h"]
        assert (day.calls, day.ok, day.rate) == (8, 4, 0.5)
        assert (rates["plaid", "24h"].calls, rates["plaid", "24h"].rate) == (1, 1.0)

    async def test_no_calls_no_rows(self, session):
        assert await _service(session).success_rates(NOW) == []


class TestStaleness:
    async def test_average_and_worst_per_provider_without_manual_accounts(self, session):
        snap = await connection(session, Provider.SNAPTRADE)
        await account(session, snap, data_as_of=NOW - H, last_synced_at=NOW - 10 * M)
        await account(session, snap, last_synced_at=NOW - 3 * H)  # no as-of: the last sync
        await account(session, snap)  # never synced
        plaid = await connection(session, Provider.PLAID, institution="Chase")
        await account(session, plaid, data_as_of=NOW - 30 * M)
        manual = await connection(session, Provider.MANUAL, institution="Manual")
        await account(session, manual, data_as_of=NOW - 100 * H)
        found = {s.provider: s for s in await _service(session).staleness(NOW)}
        assert set(found) == {"snaptrade", "plaid"}
        snaptrade = found["snaptrade"]
        assert (snaptrade.accounts, snaptrade.never_synced) == (3, 1)
        assert snaptrade.average_seconds == pytest.approx(7200, abs=0.01)
        assert snaptrade.worst_seconds == pytest.approx(10800, abs=0.01)
        assert found["plaid"].average_seconds == pytest.approx(1800, abs=0.01)
        assert found["plaid"].worst_seconds == pytest.approx(1800, abs=0.01)


class TestRefreshes:
    async def test_volume_and_cost_per_day_for_14_days(self, session):
        snap = await connection(session, Provider.SNAPTRADE)
        plaid = await connection(session, Provider.PLAID, institution="Chase")
        log = RefreshLogRepository.from_session(session)
        for at in (NOW - M, NOW - 2 * M):
            await log.record(snap, trigger=RefreshTrigger.MANUAL, at=at)
        await log.record(plaid, trigger=RefreshTrigger.MANUAL, at=NOW - 3 * M)
        await log.record(
            plaid, trigger=RefreshTrigger.SCHEDULED, status=RefreshStatus.FAILED, at=NOW - 24 * H
        )
        await log.record(snap, trigger=RefreshTrigger.MANUAL, at=NOW - 20 * 24 * H)  # too old
        ledger = CostLedgerRepository.from_session(session)
        for status in (LedgerStatus.BILLED, LedgerStatus.PENDING, LedgerStatus.VOID):
            await ledger.record(
                provider=Provider.SNAPTRADE,
                operation="refresh",
                amount=Decimal("0.05"),
                status=status,
                at=NOW - M,
            )
        await ledger.record(
            provider=Provider.PLAID,
            operation="/investments/refresh",
            amount=Decimal("0.12"),
            status=LedgerStatus.IN_DOUBT,
            at=NOW - 2 * M,
        )
        await ledger.record(
            provider=Provider.PLAID,
            operation="/investments/refresh",
            amount=Decimal("0.12"),
            at=NOW - 24 * H,
        )
        days = await _service(session).refreshes(NOW)
        assert len(days) == 14
        assert days[-1].day == NOW.date()
        assert days[0].day == (NOW - 13 * 24 * H).date()
        today, yesterday = days[-1], days[-2]
        assert today.refreshes == 3
        assert today.by_provider == {"plaid": 1, "snaptrade": 2}
        assert today.cost == {"USD": Decimal("0.22")}
        assert (yesterday.refreshes, yesterday.cost) == (1, {"USD": Decimal("0.12")})
        assert all(d.refreshes == 0 and d.cost == {} for d in days[:-2])


class TestBrokenConnections:
    async def test_broken_ones_with_their_reasons_newest_first(self, session):
        older = await connection(
            session, Provider.PLAID, status=ConnectionStatus.BROKEN, reason="ITEM_LOGIN_REQUIRED"
        )
        newer = await connection(
            session,
            Provider.SNAPTRADE,
            status=ConnectionStatus.BROKEN,
            reason="the brokerage asked the user to sign in again",
        )
        await connection(session, Provider.SNAPTRADE)  # active: not listed
        older.updated_at = NOW - 5 * H
        newer.updated_at = NOW - H
        await session.flush()
        broken = await _service(session).broken_connections()
        assert [b.connection_id for b in broken] == [newer.id, older.id]
        assert broken[1].reason == "ITEM_LOGIN_REQUIRED"
        assert broken[0].provider == "snaptrade"


class TestRecentErrors:
    async def test_failed_calls_and_account_errors_newest_first(self, session):
        await _calls(session, Provider.SNAPTRADE, 10 * M, "provider_unavailable")
        await _calls(session, Provider.SNAPTRADE, 5 * M, "ok")
        await _calls(session, Provider.PLAID, 20 * M, "rate_limited")
        plaid = await connection(session, Provider.PLAID, institution="Chase")
        failed = await account(
            session,
            plaid,
            name="Checking",
            last_error="ITEM_LOGIN_REQUIRED: the login details changed",
            last_error_at=NOW - 15 * M,
        )
        await account(session, plaid, name="Fine")
        errors = await _service(session).recent_errors()
        assert [(e.source, e.error) for e in errors] == [
            ("provider_call", "provider_unavailable"),
            ("account", "ITEM_LOGIN_REQUIRED: the login details changed"),
            ("provider_call", "rate_limited"),
        ]
        assert errors[1].account_id == failed.id
        assert errors[1].what == "Checking"
        assert errors[0].status_code == 502

    async def test_only_the_newest_20(self, session):
        await _calls(session, Provider.SNAPTRADE, M, *["provider_unavailable"] * 25)
        errors = await _service(session).recent_errors()
        assert len(errors) == 20
        assert errors[0].at == NOW - M
        assert errors[-1].at == NOW - M - timedelta(seconds=19)


async def _hook(session, provider, event_type, *, received, lag=None, **ids) -> None:
    seen = await WebhookEventRepository.from_session(session).record(
        provider=provider,
        event_id=f"evt-{provider.value}-{received.timestamp()}-{lag}-{event_type}",
        event_type=event_type,
        event_at=None if lag is None else received - lag,
        received_at=received,
        **ids,
    )
    assert seen is True


class TestWebhookLag:
    async def test_p50_and_worst_per_provider_over_24_hours(self, session):
        for n, seconds in enumerate((30, 10, 400, 20)):
            await _hook(
                session,
                Provider.SNAPTRADE,
                "ACCOUNT_HOLDINGS_UPDATED",
                received=NOW - (n + 1) * M,
                lag=timedelta(seconds=seconds),
            )
        await _hook(
            session,
            Provider.SNAPTRADE,
            "ACCOUNT_HOLDINGS_UPDATED",
            received=NOW - 25 * H,
            lag=timedelta(hours=2),
        )
        await _hook(session, Provider.SNAPTRADE, "CONNECTION_BROKEN", received=NOW - M)  # no time
        await _hook(
            session,
            Provider.PLAID,
            "HOLDINGS:DEFAULT_UPDATE",
            received=NOW - M,
            lag=timedelta(seconds=5),
        )
        lag = {w.provider: w for w in await _service(session).webhook_lag(NOW)}
        assert (lag["snaptrade"].events, lag["snaptrade"].p50_seconds) == (4, 20.0)
        assert lag["snaptrade"].worst_seconds == 400.0
        assert (lag["plaid"].events, lag["plaid"].p50_seconds, lag["plaid"].worst_seconds) == (
            1,
            5.0,
            5.0,
        )


class TestMissingWebhooks:
    async def test_accounts_silent_for_12_hours_oldest_first(self, session):
        snap = await connection(session, Provider.SNAPTRADE)
        late = await account(session, snap, name="Late", last_synced_at=NOW - H)
        await _hook(
            session,
            Provider.SNAPTRADE,
            "ACCOUNT_HOLDINGS_UPDATED",
            received=NOW - 13 * H,
            account_id=late.id,
            connection_id=snap.id,
        )
        recent = await account(session, snap, name="Recent", last_synced_at=NOW - 20 * H)
        await _hook(
            session,
            Provider.SNAPTRADE,
            "ACCOUNT_HOLDINGS_UPDATED",
            received=NOW - H,
            account_id=recent.id,
            connection_id=snap.id,
        )
        other = await account(session, snap, name="Other event", last_synced_at=NOW - 15 * H)
        await _hook(
            session,
            Provider.SNAPTRADE,
            "ACCOUNT_HOLDINGS_UPDATED",
            received=NOW - 15 * H,
            account_id=other.id,
        )
        await _hook(
            session,
            Provider.SNAPTRADE,
            "CONNECTION_FIXED",  # not a holdings webhook
            received=NOW - H,
            account_id=other.id,
        )
        await account(session, snap, name="Synced", last_synced_at=NOW - H)
        item = await connection(session, Provider.PLAID, institution="Chase")
        await account(session, item, name="Item webhook", last_synced_at=NOW - 30 * H)
        await _hook(
            session,
            Provider.PLAID,
            "HOLDINGS:DEFAULT_UPDATE",
            received=NOW - 2 * H,
            connection_id=item.id,  # Plaid's holdings webhooks name the item, not an account
        )
        bank = await connection(session, Provider.PLAID, institution="Wells Fargo")
        never = await account(session, bank, name="No webhook", last_synced_at=NOW - 20 * H)
        manual = await connection(session, Provider.MANUAL, institution="Manual")
        await account(session, manual, last_synced_at=NOW - 100 * H)
        broken = await connection(session, Provider.SNAPTRADE, status=ConnectionStatus.BROKEN)
        await account(session, broken, last_synced_at=NOW - 100 * H)

        missing = await _service(session).missing_webhooks(NOW)
        assert missing.threshold_hours == 12
        assert missing.count == 3
        assert [(m.account_id, m.silent_seconds) for m in missing.accounts] == [
            (never.id, 20 * 3600.0),
            (other.id, 15 * 3600.0),
            (late.id, 13 * 3600.0),
        ]
        assert missing.accounts[0].last_webhook_at is None
        assert missing.accounts[2].last_webhook_at == NOW - 13 * H


class TestSummary:
    async def test_an_empty_store_answers_every_section(self, session):
        summary = await _service(session).summary()
        assert summary.generated_at == NOW
        assert summary.success_rates == []
        assert summary.staleness == []
        assert len(summary.refreshes) == 14
        assert summary.broken_connections == []
        assert summary.recent_errors == []
        assert summary.webhook_lag == []
        assert (summary.missing_webhooks.count, summary.missing_webhooks.accounts) == (0, [])
