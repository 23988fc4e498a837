"""The portfolio service: consolidation of stored positions, the analysis view, manual entries.

    consolidate(portfolio_id)      → summary (positions counted, providers, last updated) and
                                     every position stamped with the consolidation time
    consolidate_all(user_id)       → the same for each of the user's portfolios
    analysis(portfolio_id)         → ticker → shares summed over every source (cash on proxies)
    add_manual / update_manual / remove_manual   → the user's own entries, which take part in all
                                                   of the above at the lowest priority

Reads and writes go through the repositories; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.enums import InstrumentKind, Provider
from brokerlink.errors import NotFoundError, ValidationError
from brokerlink.models import Account, Connection, PositionStatus
from brokerlink.models import Position as PositionRow
from brokerlink.portfolio.consolidate import (
    DEFAULT_CASH_PROXIES,
    AccountRef,
    AnalysisLine,
    ConsolidatedPortfolio,
    DuplicateAccount,
    SourcePosition,
    analysis_view,
    consolidate,
    detect_duplicate_accounts,
)
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
    PositionValues,
)

__all__ = ["ConsolidationSummary", "PortfolioService"]

# The store's Money is NUMERIC(24, 8): values below 10**16.
_MONEY_LIMIT = Decimal(10) ** 16


def _market_value(price: Decimal | None, quantity: Decimal) -> Decimal | None:
    if price is None:
        return None
    value = price * quantity
    if abs(value) >= _MONEY_LIMIT:
        raise ValidationError(
            f"price × quantity ({value:.2E}) is too large to store", field="price"
        )
    return value


@dataclass
class ConsolidationSummary:
    portfolio_id: int
    positions: int
    superseded: int
    providers: list[str]
    last_updated: datetime | None
    cash: dict[str, Decimal] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)


class PortfolioService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        cash_proxies: Mapping[str, str] = DEFAULT_CASH_PROXIES,
        prefer_accounts: Mapping[str, str] | None = None,
    ) -> None:
        self.session = session
        self.cash_proxies = cash_proxies
        self.prefer_accounts = prefer_accounts or {}
        self.portfolios = PortfolioRepository.from_session(session)
        self.positions = PositionRepository.from_session(session)
        self.accounts = AccountRepository.from_session(session)
        self.connections = ConnectionRepository.from_session(session)

    async def _owned_portfolio(self, portfolio_id: int, user_id: int | None) -> None:
        portfolio = await self.portfolios.get(portfolio_id)
        if portfolio is None or (user_id is not None and portfolio.user_id != user_id):
            raise NotFoundError(f"portfolio {portfolio_id} not found")

    async def duplicates(self, user_id: int) -> list[DuplicateAccount]:
        """The user's accounts seen through more than one connection, with the winner."""
        refs = []
        for account in await self.accounts.list_for_user(user_id):
            connection = await self.connections.get(account.connection_id)
            if connection is None or connection.provider is Provider.MANUAL:
                continue
            refs.append(
                AccountRef(
                    key=str(account.id),
                    institution=connection.institution_slug or connection.institution_name,
                    mask=account.number_mask,
                    type=account.type,
                    provider=connection.provider,
                    connection=str(connection.id),
                    label=f"{connection.institution_name} {account.name or ''}".strip(),
                )
            )
        return detect_duplicate_accounts(refs, prefer=self.prefer_accounts)

    async def consolidated(
        self, portfolio_id: int, *, user_id: int | None = None
    ) -> tuple[ConsolidatedPortfolio, list[DuplicateAccount]]:
        await self._owned_portfolio(portfolio_id, user_id)
        portfolio = await self.portfolios.get(portfolio_id)
        assert portfolio is not None
        rows = await self.positions.list_for_portfolio(portfolio_id)
        duplicates = await self.duplicates(portfolio.user_id)
        sources = [
            SourcePosition(
                ticker=row.ticker,
                quantity=row.quantity,
                currency=row.currency,
                kind=row.type,
                account=str(row.account_id),
                provider=row.provider,
                cost_basis=row.cost_basis,
                market_value=row.market_value,
                price=row.price,
                as_of=row.as_of,
                ref=row.id,
            )
            for row in rows
        ]
        return consolidate(sources, duplicates=duplicates), duplicates

    async def consolidate(
        self, portfolio_id: int, *, user_id: int | None = None
    ) -> ConsolidationSummary:
        result, duplicates = await self.consolidated(portfolio_id, user_id=user_id)
        await self.positions.mark_consolidated(portfolio_id, datetime.now(UTC))
        return ConsolidationSummary(
            portfolio_id=portfolio_id,
            positions=len(result.counted),
            superseded=len(result.superseded),
            providers=sorted(p.value for p in result.providers),
            last_updated=result.last_updated,
            cash=dict(result.cash),
            duplicates=[d.reason for d in duplicates],
        )

    async def consolidate_all(self, user_id: int) -> list[ConsolidationSummary]:
        return [
            await self.consolidate(p.id, user_id=user_id)
            for p in await self.portfolios.list_for_user(user_id)
        ]

    async def analysis(
        self,
        portfolio_id: int,
        *,
        user_id: int | None = None,
        fx_rates: Mapping[tuple[str, str], Decimal] | None = None,
    ) -> dict[str, AnalysisLine]:
        result, _ = await self.consolidated(portfolio_id, user_id=user_id)
        return analysis_view(result, cash_proxies=self.cash_proxies, fx_rates=fx_rates)

    # -- manual positions ------------------------------------------------------------------

    async def _manual_account(self, user_id: int, account_id: int | None) -> Account:
        if account_id is None:
            manual = await self.connections.get_or_create_manual(user_id)
            return await self.accounts.get_or_create_manual(manual)
        account = await self.accounts.get(account_id)
        connection: Connection | None = (
            await self.connections.get(account.connection_id) if account is not None else None
        )
        if account is None or connection is None or connection.user_id != user_id:
            raise NotFoundError(f"account {account_id} not found")
        return account

    async def add_manual(
        self,
        user_id: int,
        *,
        ticker: str,
        quantity: Decimal,
        currency: str = "USD",
        kind: InstrumentKind = InstrumentKind.EQUITY,
        cost_basis: Decimal | None = None,
        price: Decimal | None = None,
        account_id: int | None = None,
        portfolio_id: int | None = None,
    ) -> PositionRow:
        """A manual position, in the user's manual account or beside a linked account's own."""
        ticker = ticker.strip().upper()
        if not ticker:
            raise ValidationError("a ticker is required", field="ticker")
        if quantity < 0:
            raise ValidationError("quantity cannot be negative", field="quantity")
        if kind is InstrumentKind.CASH and not ticker.startswith("CUR:"):
            ticker = f"CUR:{currency.upper()}"
        account = await self._manual_account(user_id, account_id)
        if portfolio_id is None:
            portfolio_id = (await self.portfolios.get_or_create_default(user_id)).id
        else:
            await self._owned_portfolio(portfolio_id, user_id)
        row = PositionValues(
            portfolio_id=portfolio_id,
            user_id=user_id,
            account_id=account.id,
            ticker=ticker,
            quantity=quantity,
            currency=currency.upper(),
            type=kind.value,
            provider=Provider.MANUAL,
            cost_basis=cost_basis,
            price=price,
            market_value=_market_value(price, quantity),
            as_of=datetime.now(UTC),
        )
        await self.positions.bulk_upsert([row])
        for stored in await self.positions.list_for_account(account.id):
            if stored.ticker == ticker and stored.provider is Provider.MANUAL:
                return stored
        raise AssertionError("the manual position was not written")  # pragma: no cover

    async def _owned_manual(self, user_id: int, position_id: int) -> PositionRow:
        row = await self.positions.get(position_id)
        if row is None or row.user_id != user_id:
            raise NotFoundError(f"position {position_id} not found")
        if row.provider is not Provider.MANUAL:
            raise ValidationError(
                f"position {position_id} comes from {row.provider.value}; only manual entries "
                "can be edited",
                field="position_id",
            )
        return row

    async def update_manual(
        self,
        user_id: int,
        position_id: int,
        *,
        quantity: Decimal | None = None,
        cost_basis: Decimal | None = None,
        price: Decimal | None = None,
    ) -> PositionRow:
        row = await self._owned_manual(user_id, position_id)
        if quantity is not None and quantity < 0:
            raise ValidationError("quantity cannot be negative", field="quantity")
        value = _market_value(
            price if price is not None else row.price,
            quantity if quantity is not None else row.quantity,
        )
        if quantity is not None:
            row.quantity = quantity
        if cost_basis is not None:
            row.cost_basis = cost_basis
        if price is not None:
            row.price = price
        if value is not None:
            row.market_value = value
        row.as_of = datetime.now(UTC)
        await self.session.flush()
        return row

    async def remove_manual(self, user_id: int, position_id: int) -> None:
        """The entry stops counting; the row stays (inactive), as provider positions do."""
        row = await self._owned_manual(user_id, position_id)
        row.position_status = PositionStatus.INACTIVE
        await self.session.flush()
