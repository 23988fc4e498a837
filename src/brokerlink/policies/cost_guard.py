"""Cost guards: refreshes that cost money happen only as often as the policy allows, and every
billable call is written to the cost ledger.

    decide_refresh / decide_budget   pure decisions (`policies.cost_policy`, re-exported here)
    CostGuard                        store-backed: authorise → (provider call) → settle

A billed refresh is three transactions, never one (`connections.refresh.RefreshService` runs
them): the intent — refresh log `sending`, ledger `pending` — is committed before the provider is
called; the call runs with no transaction open; the outcome is settled in a third. What the
database guarantees, across any number of processes:

- the decision and the intent are made under a row lock on the connection (`SELECT … FOR
  UPDATE` on PostgreSQL; SQLite's write lock does the same), so the interval check and the new
  `sending` row can't interleave with another request's;
- a partial unique index admits one `sending` row per connection (one refresh in flight);
- budgets are checked under a transaction-scoped advisory lock per budget (the user's, the
  provider's), and count `pending` and `in_doubt` charges as spent.

A call whose answer was lost is settled `in_doubt`: it counts against the 24 h interval and the
budgets like a billed one, and is never sent again blind. An intent left `sending` by a process
that died mid-call becomes `in_doubt` once it is older than `CostPolicy.in_flight_timeout`.

A Plaid investments refresh is billed per successful call (about $0.12 pay-as-you-go) and Plaid
keeps investments data fresh on its own about once a day, so by default one manual refresh per
connection per 24 h. The user may override only with an explicit confirmation, which is recorded
in the refresh log. SnapTrade's manual refresh costs about $0.05; its own "refreshed too
recently" answer becomes the same kind of refusal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.enums import Provider
from brokerlink.errors import BrokerlinkError
from brokerlink.models import (
    Connection,
    CostEntry,
    LedgerStatus,
    RefreshLog,
    RefreshStatus,
    RefreshTrigger,
)
from brokerlink.policies.cost_policy import (
    REFRESH_OPERATION,
    CostPolicy,
    RefreshDecision,
    decide_budget,
    decide_refresh,
    month_start,
)
from brokerlink.repositories.connections import ConnectionRepository
from brokerlink.repositories.cost_ledger import CostLedgerRepository
from brokerlink.repositories.refresh_log import RefreshLogRepository

__all__ = [
    "PROVIDER_THROTTLE_WAIT",
    "REFRESH_OPERATION",
    "BudgetExceeded",
    "CostGuard",
    "CostPolicy",
    "RefreshDecision",
    "RefreshInFlight",
    "RefreshRefused",
    "RefreshTicket",
    "decide_budget",
    "decide_refresh",
    "month_start",
]

# The shortest wait after a provider's own "refreshed too recently".
PROVIDER_THROTTLE_WAIT = timedelta(minutes=1)

_COUNTED = (
    RefreshStatus.REQUESTED,
    RefreshStatus.SENDING,
    RefreshStatus.IN_DOUBT,
    RefreshStatus.ACCEPTED,
    RefreshStatus.COMPLETED,
)


class RefreshRefused(BrokerlinkError):
    """A refresh the cost guard (or the provider's own throttle) refused.

    `can_override` says whether confirming the cost (`override`) would let it through: true for
    the cost guard's own window, false where the provider itself refuses (its throttle) or a
    refresh is already on its way.
    """

    status_code = 429
    code = "refresh_too_soon"

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        next_allowed_at: datetime | None,
        can_override: bool = True,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.next_allowed_at = next_allowed_at
        self.can_override = can_override


class RefreshInFlight(RefreshRefused):
    """Another refresh of the same connection is being sent right now (any process)."""

    status_code = 409
    code = "refresh_in_flight"

    def __init__(self, message: str, *, reason: str, next_allowed_at: datetime | None) -> None:
        super().__init__(
            message, reason=reason, next_allowed_at=next_allowed_at, can_override=False
        )


class BudgetExceeded(BrokerlinkError):
    """A billable call refused because it would exceed a monthly budget (a hard cap)."""

    status_code = 429
    code = "budget_exceeded"
    # A budget is a hard cap: confirming the cost does not lift it.
    can_override = False

    def __init__(self, message: str, *, reason: str, remaining: Decimal, budget: Decimal) -> None:
        super().__init__(message)
        self.reason = reason
        self.remaining = remaining
        self.budget = budget


@dataclass
class RefreshTicket:
    """An authorised refresh: settle it with `CostGuard.settle` once the provider answered."""

    entry: RefreshLog
    connection: Connection
    operation: str
    price: Decimal
    decision: RefreshDecision
    charge: CostEntry | None = None


class CostGuard:
    """Applies a `CostPolicy` to one session's store. Flushes only; the boundary commits."""

    def __init__(
        self,
        session: AsyncSession,
        policy: CostPolicy,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.refreshes = RefreshLogRepository.from_session(session)
        self.ledger = CostLedgerRepository.from_session(session)
        self.connections = ConnectionRepository.from_session(session)

    def _next_allowed(self, connection: Connection, logged: datetime | None) -> datetime | None:
        candidates = [t for t in (logged, connection.last_manual_refresh_at) if t]
        decision = decide_refresh(
            self.policy,
            connection.provider,
            last_refresh_at=max(candidates) if candidates else None,
            now=self.clock(),
        )
        return None if decision.allowed else decision.next_allowed_at

    async def last_refresh_at(self, connection: Connection) -> datetime | None:
        latest = await self.refreshes.latest(connection.id, statuses=_COUNTED)
        candidates = [
            t for t in (latest and latest.requested_at, connection.last_manual_refresh_at) if t
        ]
        return max(candidates) if candidates else None

    async def next_refresh_allowed_at(self, connection: Connection) -> datetime | None:
        """When a manual refresh is next allowed without an override (None: now)."""
        latest = await self.refreshes.latest(connection.id, statuses=_COUNTED)
        return self._next_allowed(connection, latest.requested_at if latest else None)

    async def next_refresh_allowed_at_many(
        self, connections: Sequence[Connection]
    ) -> dict[int, datetime | None]:
        """`next_refresh_allowed_at` for many connections, in one query."""
        logged = await self.refreshes.latest_times((c.id for c in connections), statuses=_COUNTED)
        return {c.id: self._next_allowed(c, logged.get(c.id)) for c in connections}

    async def check_budget(self, provider: Provider, amount: Decimal, user_id: int | None) -> None:
        """Raise `BudgetExceeded` if `amount` would break the user's or the provider's cap.

        Each budget's check runs under its own advisory lock (held to the end of the
        transaction, taken in one order: the user's, then the provider's), so two requests can
        not both see the same remaining amount; the caller's pending ledger row is what the
        next one then counts.
        """
        since = month_start(self.clock())
        checks: list[tuple[Decimal | None, Decimal, str]] = []
        if user_id is not None and self.policy.user_monthly_budget is not None and amount > 0:
            await self.connections.advisory_lock(_lock_key("budget:user", user_id))
            spent = await self.ledger.total(since=since, user_id=user_id)
            checks.append((self.policy.user_monthly_budget, spent, "user's"))
        provider_budget = self.policy.provider_monthly_budgets.get(provider)
        if provider_budget is not None and amount > 0:
            await self.connections.advisory_lock(_lock_key(f"budget:{provider.value}", 0))
            spent = await self.ledger.total(since=since, provider=provider)
            checks.append((provider_budget, spent, f"{provider.value}"))
        for budget, spent, scope in checks:
            allowed, reason, remaining = decide_budget(
                amount=amount, spent=spent, budget=budget, scope=scope
            )
            if not allowed:
                assert budget is not None
                raise BudgetExceeded(
                    f"Refused: {reason}.", reason=reason, remaining=remaining, budget=budget
                )

    async def expire_in_flight(self, connection: Connection) -> None:
        """An intent left `sending` longer than the in-flight timeout: its process died
        mid-call. It becomes `in_doubt` (still counted, still billed), freeing the slot."""
        cutoff = self.clock() - self.policy.in_flight_timeout
        for entry in await self.refreshes.in_flight(connection.id):
            if entry.requested_at <= cutoff:
                await self._settle(
                    entry,
                    RefreshStatus.IN_DOUBT,
                    LedgerStatus.IN_DOUBT,
                    detail="no answer was recorded (the call's process stopped); counted as billed",
                )

    async def authorize_refresh(
        self,
        connection: Connection,
        *,
        override: bool = False,
        trigger: RefreshTrigger = RefreshTrigger.MANUAL,
    ) -> RefreshTicket:
        """Decide, check the budgets, and record the intent: refresh log `sending`, ledger
        `pending`. Call it with the connection row locked (`ConnectionRepository.lock`) and
        commit before the provider call.

        Raises `RefreshInFlight`, `RefreshRefused` (with the next allowed time) or
        `BudgetExceeded`; a refusal is logged as REJECTED (commit it too) and counts for
        nothing.
        """
        now = self.clock()
        operation = REFRESH_OPERATION.get(connection.provider)
        if operation is None:
            raise RefreshRefused(
                f"{connection.provider.value} connections have nothing to refresh.",
                reason="manual entries are not fetched from a provider",
                next_allowed_at=None,
            )
        await self.expire_in_flight(connection)
        interval = self.policy.refresh_interval(connection.provider)
        in_flight = await self.refreshes.in_flight(connection.id)
        if in_flight:
            started = in_flight[0].requested_at
            reason = (
                "a refresh of this connection is already being sent "
                f"(since {started.isoformat(timespec='seconds')})"
            )
            await self._reject(connection, trigger, reason, now)
            raise RefreshInFlight(
                f"Refresh refused: {reason}; its result will show on the connection.",
                reason=reason,
                next_allowed_at=started + interval if interval > timedelta(0) else None,
            )
        decision = decide_refresh(
            self.policy,
            connection.provider,
            last_refresh_at=await self.last_refresh_at(connection),
            now=now,
            override=override,
        )
        if not decision.allowed:
            await self._reject(connection, trigger, decision.reason, now)
            assert decision.next_allowed_at is not None
            raise RefreshRefused(
                f"Refresh refused: {decision.reason}. Next refresh allowed at "
                f"{decision.next_allowed_at.isoformat(timespec='seconds')}.",
                reason=decision.reason,
                next_allowed_at=decision.next_allowed_at,
            )
        price = self.policy.price(operation)
        try:
            await self.check_budget(connection.provider, price, connection.user_id)
        except BudgetExceeded as refusal:
            await self._reject(connection, trigger, refusal.reason, now)
            raise
        detail = "override confirmed by the user" if decision.overridden else None
        entry = await self.refreshes.record(
            connection, trigger=trigger, status=RefreshStatus.SENDING, detail=detail, at=now
        )
        charge = await self.ledger.record(
            provider=connection.provider,
            operation=operation,
            amount=price,
            user_id=connection.user_id,
            at=now,
            status=LedgerStatus.PENDING,
            refresh_id=entry.id,
        )
        return RefreshTicket(entry, connection, operation, price, decision, charge)

    async def _reject(
        self, connection: Connection, trigger: RefreshTrigger, reason: str, now: datetime
    ) -> None:
        await self.refreshes.record(
            connection, trigger=trigger, status=RefreshStatus.REJECTED, detail=reason, at=now
        )

    async def _settle(
        self,
        entry: RefreshLog,
        status: RefreshStatus,
        charge_status: LedgerStatus,
        *,
        detail: str | None,
    ) -> None:
        now = self.clock()
        await self.refreshes.complete(entry, status, detail=detail, at=now)
        charge = await self.ledger.for_refresh(entry.id)
        if charge is not None:
            await self.ledger.settle(charge, charge_status, at=now)

    async def settle(
        self,
        ticket: RefreshTicket,
        *,
        accepted: bool,
        detail: str | None = None,
        in_doubt: bool = False,
    ) -> None:
        """Record how the provider answered, in the settling transaction: accepted → billed;
        refused → void; `in_doubt` (the answer was lost) → counted as billed, flagged.

        `ticket` may come from another session: the rows are re-read here by id.
        """
        entry = await self.refreshes.get(ticket.entry.id)
        assert entry is not None, "a ticket's refresh-log row is never deleted while in flight"
        if in_doubt:
            lost = "; ".join(
                p for p in (detail, "the answer was lost: counted as billed, not re-sent") if p
            )
            await self._settle(entry, RefreshStatus.IN_DOUBT, LedgerStatus.IN_DOUBT, detail=lost)
            return
        if not accepted:
            await self._settle(entry, RefreshStatus.FAILED, LedgerStatus.VOID, detail=detail)
            return
        note = "; ".join(p for p in (entry.detail, detail) if p) or None
        await self._settle(entry, RefreshStatus.ACCEPTED, LedgerStatus.BILLED, detail=note)
        connection = await self.connections.get(ticket.connection.id)
        if connection is not None:
            connection.last_manual_refresh_at = self.clock()
            await self.connections.session.flush()

    async def provider_throttled(
        self, ticket: RefreshTicket, *, retry_after: float | None, detail: str
    ) -> RefreshRefused:
        """The provider itself said "refreshed too recently": the same kind of refusal, unbilled,
        in plain words, and one no override can lift (the provider would refuse it again)."""
        now = self.clock()
        entry = await self.refreshes.get(ticket.entry.id)
        assert entry is not None
        await self._settle(entry, RefreshStatus.REJECTED, LedgerStatus.VOID, detail=detail)
        # SnapTrade says neither when it refreshed nor when it will again (its Retry-After is a
        # token second): wait at least PROVIDER_THROTTLE_WAIT.
        wait = max(timedelta(seconds=retry_after or 0), PROVIDER_THROTTLE_WAIT)
        next_at = (now + wait).replace(microsecond=0)
        provider = ticket.connection.provider.label
        reason = (
            f"{provider} refreshed {ticket.connection.institution_name} a short while ago and "
            "does not allow another refresh yet"
        )
        return RefreshRefused(
            f"{reason}. Try again after {_clock_time(next_at)}; nothing was charged.",
            reason=reason,
            next_allowed_at=next_at,
            can_override=False,
        )


def _clock_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def _lock_key(scope: str, ident: int) -> int:
    """A stable signed 64-bit advisory-lock key for (scope, id), the same in every process."""
    digest = hashlib.blake2b(f"brokerlink:{scope}:{ident}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
