"""Read models of connections, accounts and positions, served from the store only.

No provider is called here: every answer carries its own freshness (status, last sync, the
provider's as-of time, the last error) instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.accounts.schemas import (
    AccountOut,
    Balances,
    CapabilitiesOut,
    ConnectionOut,
    NetWorthLine,
    NetWorthOut,
    PositionOut,
)
from brokerlink.domain.enums import Provider
from brokerlink.errors import NotFoundError
from brokerlink.models import (
    Account,
    AccountSyncStatus,
    Connection,
    ConnectionStatus,
    PositionStatus,
    User,
)
from brokerlink.models import Position as PositionRow
from brokerlink.policies.cost_guard import CostGuard, CostPolicy
from brokerlink.policies.trading_gate import TradingRefused, check_trading_allowed
from brokerlink.portfolio.service import PortfolioService, preferred_accounts

__all__ = ["LIABILITY_TYPES", "AccountsView", "net_worth", "position_out"]

#: Account types whose balance is owed, not held: counted as liabilities in net worth.
LIABILITY_TYPES = frozenset({"credit", "credit_card", "loan", "mortgage"})


def position_out(row: PositionRow) -> PositionOut:
    return PositionOut(
        id=row.id,
        account_id=row.account_id,
        ticker=row.ticker,
        name=row.name,
        quantity=row.quantity,
        currency=row.currency,
        type=row.type,
        provider=row.provider.value,
        source=row.position_source,
        status=row.position_status.value,
        cost_basis=row.cost_basis,
        price=row.price,
        market_value=row.market_value,
        as_of=row.as_of,
        price_as_of=row.price_as_of,
    )


def _balances(rows: Sequence[PositionRow]) -> Balances:
    cash: dict[str, Decimal] = defaultdict(Decimal)
    held: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        if row.ticker.startswith("CUR:") or row.type == "cash":
            cash[row.currency] += row.quantity
        elif row.market_value is not None:
            held[row.currency] += row.market_value
    total = {c: cash.get(c, Decimal(0)) + held.get(c, Decimal(0)) for c in {*cash, *held}}
    return Balances(cash=dict(cash), holdings_value=dict(held), total=total)


def net_worth(
    accounts: Sequence[AccountOut],
    base_currency: str = "USD",
    *,
    left_out: Collection[int] = (),
) -> NetWorthOut:
    """Assets minus liabilities per currency. An account whose balance is negative (a credit
    card's or a loan's balance owed, as the providers' adapters store it, or a margin debt) is a
    liability of that amount; so is any balance of an account typed as a credit card or loan,
    whichever sign it was given. Accounts in `left_out` (the copies of a duplicated account that
    the portfolio does not count) are not counted either."""
    assets: dict[str, Decimal] = defaultdict(Decimal)
    owed: dict[str, Decimal] = defaultdict(Decimal)
    liability_accounts = 0
    counted = [a for a in accounts if a.id not in left_out]
    for account in counted:
        typed = account.type in LIABILITY_TYPES
        owes = False
        for currency, amount in account.balances.total.items():
            if typed or amount < 0:
                owed[currency] += abs(amount)
                owes = owes or amount != 0
            else:
                assets[currency] += amount
        liability_accounts += owes
    currencies = sorted({*assets, *owed})
    lines = [
        NetWorthLine(
            currency=c,
            assets=assets.get(c, Decimal(0)),
            liabilities=owed.get(c, Decimal(0)),
            net=assets.get(c, Decimal(0)) - owed.get(c, Decimal(0)),
        )
        for c in currencies
    ]
    base = base_currency.upper()
    unconverted = [c for c in currencies if c != base]
    base_net = None
    if not unconverted:
        base_net = sum((line.net for line in lines), Decimal(0))
    return NetWorthOut(
        base_currency=base,
        base_net=base_net,
        unconverted=unconverted,
        lines=lines,
        accounts=len(counted),
        liability_accounts=liability_accounts,
        duplicates_left_out=len(accounts) - len(counted),
    )


def _trading_reason(account: Account, connection: Connection) -> str | None:
    try:
        check_trading_allowed(
            account_label=account.name or account.provider_account_id,
            provider=connection.provider,
            capabilities=account.capabilities,
            institution=connection.institution_name,
        )
    except TradingRefused as refused:
        return refused.reason
    return None


class AccountsView:
    def __init__(
        self,
        session: AsyncSession,
        *,
        policy: CostPolicy,
        clock: Callable[[], datetime],
        max_age: timedelta = timedelta(hours=24),
    ) -> None:
        self.session = session
        self.guard = CostGuard(session, policy, clock=clock)
        self.clock = clock
        self.max_age = max_age

    async def _connections(self, user_id: int) -> list[Connection]:
        rows = await self.session.scalars(
            select(Connection)
            .where(Connection.user_id == user_id, Connection.status != ConnectionStatus.DISABLED)
            .order_by(Connection.id)
        )
        return list(rows)

    async def _accounts(self, connection_ids: Sequence[int]) -> list[Account]:
        if not connection_ids:
            return []
        rows = await self.session.scalars(
            select(Account).where(Account.connection_id.in_(connection_ids)).order_by(Account.id)
        )
        return list(rows)

    async def _positions(self, account_ids: Sequence[int]) -> dict[int, list[PositionRow]]:
        found: dict[int, list[PositionRow]] = defaultdict(list)
        if not account_ids:
            return found
        rows = await self.session.scalars(
            select(PositionRow)
            .where(
                PositionRow.account_id.in_(account_ids),
                PositionRow.position_status == PositionStatus.ACTIVE,
            )
            .order_by(PositionRow.account_id, PositionRow.ticker)
        )
        for row in rows:
            found[row.account_id].append(row)
        return found

    def _stale(self, account: Account) -> bool:
        """Not fresh: never synced, the last sync failed, or older than the allowed age."""
        if account.sync_status is not AccountSyncStatus.FRESH or account.last_synced_at is None:
            return True
        return self.clock() - account.last_synced_at > self.max_age

    async def connections(self, user_id: int) -> list[ConnectionOut]:
        connections = await self._connections(user_id)
        accounts = await self._accounts([c.id for c in connections])
        positions = await self._positions([a.id for a in accounts])
        by_connection: dict[int, list[Account]] = defaultdict(list)
        for account in accounts:
            by_connection[account.connection_id].append(account)
        next_refresh = await self.guard.next_refresh_allowed_at_many(
            [c for c in connections if c.provider is not Provider.MANUAL]
        )
        out = []
        for connection in connections:
            next_at = next_refresh.get(connection.id)
            out.append(
                ConnectionOut(
                    id=connection.id,
                    provider=connection.provider.value,
                    institution=connection.institution_name,
                    institution_slug=connection.institution_slug,
                    status=connection.status.value,
                    status_reason=connection.status_reason,
                    last_synced_at=connection.last_synced_at,
                    last_manual_refresh_at=connection.last_manual_refresh_at,
                    next_refresh_allowed_at=next_at,
                    accounts=[
                        self._account_out(a, connection, positions.get(a.id, []), next_at)
                        for a in by_connection[connection.id]
                    ],
                )
            )
        return out

    def _account_out(
        self,
        account: Account,
        connection: Connection,
        rows: Sequence[PositionRow],
        next_refresh: datetime | None,
    ) -> AccountOut:
        caps = account.capabilities
        status = account.sync_status
        if connection.status is ConnectionStatus.BROKEN:
            status = AccountSyncStatus.BROKEN
        manual = connection.provider is Provider.MANUAL
        if manual:
            # Entered by the user: nothing syncs it, so it is never pending or stale.
            status = AccountSyncStatus.FRESH
        return AccountOut(
            id=account.id,
            connection_id=connection.id,
            institution=connection.institution_name,
            institution_slug=connection.institution_slug,
            name=account.name,
            mask=account.number_mask,
            type=account.type.value,
            currency=account.currency,
            provider=connection.provider.value,
            linked_at=connection.created_at,
            capabilities=CapabilitiesOut(
                trading=caps.trading and not manual,
                realtime=caps.realtime,
                trading_reason=_trading_reason(account, connection),
            ),
            status=status.value,
            stale=False if manual else self._stale(account),
            last_synced_at=account.last_synced_at,
            data_as_of=account.data_as_of,
            last_error=account.last_error,
            last_error_at=account.last_error_at,
            next_refresh_allowed_at=next_refresh,
            positions=len(rows),
            balances=_balances(rows),
        )

    async def accounts(self, user_id: int) -> list[AccountOut]:
        return [a for c in await self.connections(user_id) for a in c.accounts]

    async def net_worth(self, user: User, base_currency: str = "USD") -> NetWorthOut:
        """The user's net worth, counting each duplicated account once: the copy the portfolio
        counts (the user's choice, else the provider priority)."""
        duplicates = await PortfolioService(
            self.session, prefer_accounts=preferred_accounts(user)
        ).duplicates(user.id)
        left_out = {int(d.loser.key) for d in duplicates}
        return net_worth(await self.accounts(user.id), base_currency, left_out=left_out)

    async def account(self, user_id: int, account_id: int) -> AccountOut:
        for account in await self.accounts(user_id):
            if account.id == account_id:
                return account
        raise NotFoundError(f"account {account_id} not found")

    async def positions(self, user_id: int, account_id: int | None = None) -> list[PositionOut]:
        accounts = [a.id for a in await self.accounts(user_id)]
        if account_id is not None:
            if account_id not in accounts:
                raise NotFoundError(f"account {account_id} not found")
            accounts = [account_id]
        rows = await self._positions(accounts)
        return [position_out(r) for a in accounts for r in rows.get(a, [])]
