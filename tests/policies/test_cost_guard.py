"""Cost guards: the 24 h Plaid refresh window, the recorded override, the ledger, the budgets."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from brokerlink.domain import Provider
from brokerlink.models import RefreshStatus
from brokerlink.policies import (
    BudgetExceeded,
    CostGuard,
    CostPolicy,
    RefreshRefused,
    decide_refresh,
)
from brokerlink.policies.cost_guard import decide_budget
from brokerlink.repositories import CostLedgerRepository, RefreshLogRepository
from tests.db.factories import make_graph

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class TestDecideRefresh:
    policy = CostPolicy()

    def test_first_refresh_is_allowed(self):
        assert decide_refresh(self.policy, Provider.PLAID, last_refresh_at=None, now=T0).allowed

    def test_second_plaid_refresh_inside_24h_is_refused_with_next_time(self):
        decision = decide_refresh(
            self.policy, Provider.PLAID, last_refresh_at=T0, now=T0 + timedelta(hours=3)
        )
        assert not decision.allowed
        assert decision.next_allowed_at == T0 + timedelta(hours=24)
        assert "one per 24 h" in decision.reason
        assert "0.12" in decision.reason

    def test_allowed_again_after_the_window(self):
        later = T0 + timedelta(hours=24)
        assert decide_refresh(self.policy, Provider.PLAID, last_refresh_at=T0, now=later).allowed

    def test_override_is_allowed_and_marked(self):
        decision = decide_refresh(
            self.policy, Provider.PLAID, last_refresh_at=T0, now=T0, override=True
        )
        assert decision.allowed
        assert decision.overridden

    def test_snaptrade_has_no_interval_by_default(self):
        assert decide_refresh(self.policy, Provider.SNAPTRADE, last_refresh_at=T0, now=T0).allowed

    def test_snaptrade_interval_is_configurable(self):
        policy = CostPolicy(refresh_intervals={Provider.SNAPTRADE: timedelta(hours=1)})
        decision = decide_refresh(
            policy, Provider.SNAPTRADE, last_refresh_at=T0, now=T0 + timedelta(minutes=10)
        )
        assert not decision.allowed
        assert decision.next_allowed_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("amount", "spent", "budget", "allowed", "remaining"),
    [
        (Decimal("0.12"), Decimal("0"), None, True, Decimal("0")),
        (Decimal("0.12"), Decimal("0.88"), Decimal("1.00"), True, Decimal("0.12")),
        (Decimal("0.12"), Decimal("0.89"), Decimal("1.00"), False, Decimal("0.11")),
        (Decimal("0.05"), Decimal("1.20"), Decimal("1.00"), False, Decimal("0")),
    ],
)
def test_decide_budget(amount, spent, budget, allowed, remaining):
    ok, reason, left = decide_budget(amount=amount, spent=spent, budget=budget, scope="user's")
    assert ok is allowed
    assert left == remaining
    if not ok:
        assert "monthly budget of 1.00 USD" in reason


@pytest.mark.asyncio
async def test_plaid_refresh_twice_in_24h_is_blocked_with_reason_and_next_time(session):
    graph = await make_graph(session, provider=Provider.PLAID, provider_connection_id="item-1")
    clock = Clock(T0)
    guard = CostGuard(session, CostPolicy(), clock=clock)

    ticket = await guard.authorize_refresh(graph.connection)
    await guard.settle(ticket, accepted=True)

    clock.now = T0 + timedelta(hours=5)
    with pytest.raises(RefreshRefused) as refused:
        await guard.authorize_refresh(graph.connection)
    assert refused.value.next_allowed_at == T0 + timedelta(hours=24)
    assert "one per 24 h" in refused.value.reason
    assert refused.value.status_code == 429
    assert await guard.next_refresh_allowed_at(graph.connection) == T0 + timedelta(hours=24)

    ledger = CostLedgerRepository.from_session(session)
    assert await ledger.total(provider=Provider.PLAID) == Decimal("0.12")  # billed once
    latest = await RefreshLogRepository.from_session(session).latest(graph.connection.id)
    assert latest.status is RefreshStatus.REJECTED


@pytest.mark.asyncio
async def test_override_goes_through_and_is_recorded(session):
    graph = await make_graph(session, provider=Provider.PLAID, provider_connection_id="item-2")
    clock = Clock(T0)
    guard = CostGuard(session, CostPolicy(), clock=clock)
    await guard.settle(await guard.authorize_refresh(graph.connection), accepted=True)

    clock.now = T0 + timedelta(hours=1)
    ticket = await guard.authorize_refresh(graph.connection, override=True)
    await guard.settle(ticket, accepted=True)

    entry = await RefreshLogRepository.from_session(session).latest(graph.connection.id)
    assert entry.status is RefreshStatus.ACCEPTED
    assert "override confirmed by the user" in entry.detail
    ledger = CostLedgerRepository.from_session(session)
    assert await ledger.total(provider=Provider.PLAID) == Decimal("0.24")


@pytest.mark.asyncio
async def test_a_failed_refresh_is_not_billed_and_does_not_count(session):
    graph = await make_graph(session, provider=Provider.PLAID, provider_connection_id="item-3")
    clock = Clock(T0)
    guard = CostGuard(session, CostPolicy(), clock=clock)
    await guard.settle(await guard.authorize_refresh(graph.connection), accepted=False)

    assert await CostLedgerRepository.from_session(session).total() == Decimal(0)
    # The failure left no refresh on record, so the user may try again at once.
    await guard.authorize_refresh(graph.connection)


@pytest.mark.asyncio
async def test_user_budget_refuses_with_remaining(session):
    graph = await make_graph(session, provider=Provider.PLAID, provider_connection_id="item-4")
    clock = Clock(T0)
    policy = CostPolicy(
        refresh_intervals={Provider.PLAID: timedelta(0)}, user_monthly_budget=Decimal("0.30")
    )
    guard = CostGuard(session, policy, clock=clock)
    for _ in range(2):
        await guard.settle(await guard.authorize_refresh(graph.connection), accepted=True)
    with pytest.raises(BudgetExceeded) as refused:
        await guard.authorize_refresh(graph.connection)
    assert refused.value.remaining == Decimal("0.06")
    assert "user's monthly budget of 0.30 USD" in refused.value.reason

    # A new month starts with the budget whole again.
    clock.now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    await guard.authorize_refresh(graph.connection)


@pytest.mark.asyncio
async def test_provider_budget_is_global(session):
    graph = await make_graph(session, provider=Provider.SNAPTRADE)
    policy = CostPolicy(provider_monthly_budgets={Provider.SNAPTRADE: Decimal("0.05")})
    guard = CostGuard(session, policy, clock=Clock(T0))
    await guard.settle(await guard.authorize_refresh(graph.connection), accepted=True)
    with pytest.raises(BudgetExceeded, match="snaptrade monthly budget"):
        await guard.authorize_refresh(graph.connection)


@pytest.mark.asyncio
async def test_provider_throttle_becomes_the_same_refusal_unbilled(session):
    graph = await make_graph(session, provider=Provider.SNAPTRADE)
    guard = CostGuard(session, CostPolicy(), clock=Clock(T0))
    ticket = await guard.authorize_refresh(graph.connection)
    refusal = await guard.provider_throttled(ticket, retry_after=300, detail="429 throttled")
    assert isinstance(refusal, RefreshRefused)
    assert refusal.next_allowed_at == T0 + timedelta(seconds=300)
    assert await CostLedgerRepository.from_session(session).total() == Decimal(0)


def test_monthly_cost_of_keeping_connections():
    policy = CostPolicy()
    assert policy.monthly_cost(Provider.SNAPTRADE, connections=3, first_for_user=True) == Decimal(
        "1.75"
    )
    assert policy.monthly_cost(Provider.SNAPTRADE, connections=1, first_for_user=False) == 0
    assert policy.monthly_cost(Provider.PLAID, connections=2, first_for_user=False) == Decimal(
        "0.36"
    )


def test_policy_from_settings(monkeypatch):
    from brokerlink.config import Settings

    monkeypatch.setenv("BROKERLINK_PLAID_REFRESH_INTERVAL_HOURS", "12")
    monkeypatch.setenv("BROKERLINK_COST_PLAID_INVESTMENTS_REFRESH", "0.10")
    monkeypatch.setenv("BROKERLINK_BUDGET_PLAID_MONTHLY", "25")
    policy = CostPolicy.from_settings(Settings())
    assert policy.refresh_interval(Provider.PLAID) == timedelta(hours=12)
    assert policy.price("plaid.investments.refresh") == Decimal("0.10")
    assert policy.price("snaptrade.authorization.refresh") == Decimal("0.05")
    assert policy.provider_monthly_budgets == {Provider.PLAID: Decimal("25")}
    assert policy.user_monthly_budget is None
