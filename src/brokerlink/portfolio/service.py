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
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.enums import AccountType, InstrumentKind, Provider
from brokerlink.errors import BrokerlinkError, NotFoundError, ValidationError
from brokerlink.models import Account, Connection, PositionStatus, User
from brokerlink.models import Position as PositionRow
from brokerlink.portfolio.consolidate import (
    CASH_PREFIX,
    DEFAULT_CASH_PROXIES,
    AccountRef,
    AnalysisLine,
    ConsolidatedPortfolio,
    DuplicateAccount,
    SourcePosition,
    analysis_view,
    consolidate,
    contract_multiplier,
    detect_duplicate_accounts,
    is_cash,
)
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
    PositionValues,
)

__all__ = [
    "ConsolidationSummary",
    "DuplicateEffect",
    "ManualPositionExists",
    "OnExisting",
    "PortfolioService",
    "duplicate_effects",
    "preferred_accounts",
]

#: What to do when a manual entry for the same ticker exists: add to its quantity or replace it.
OnExisting = Literal["add", "replace"]


class ManualPositionExists(BrokerlinkError):
    """A second manual entry for a ticker the account already holds, with no choice made."""

    status_code = 409
    code = "manual_position_exists"

    def __init__(self, row: PositionRow) -> None:
        self.field = "ticker"
        super().__init__(
            f"this account already has {row.quantity.normalize():f} {row.ticker} entered by hand; "
            'send on_existing "add" to add to it or "replace" to replace it'
        )
        self.position_id = row.id


# The store's Money is NUMERIC(24, 8): values below 10**16.
_MONEY_LIMIT = Decimal(10) ** 16


def _price(
    price: Decimal | None, value: Decimal | None, quantity: Decimal, kind: str = ""
) -> Decimal | None:
    """The unit price: given, or the total value entered divided by the quantity (and by the
    contract multiplier for an option, whose price is per share)."""
    if price is not None and value is not None:
        raise ValidationError("give a price or a total value, not both", field="value")
    if value is None:
        return price
    if quantity == 0:
        raise ValidationError("a total value needs a quantity above zero", field="quantity")
    return (value / quantity / contract_multiplier(kind)).quantize(Decimal("0.00000001"))


def _market_value(price: Decimal | None, quantity: Decimal, kind: str = "") -> Decimal | None:
    """Price × quantity; an option's price is per share, so × the contract multiplier too."""
    if price is None:
        return None
    value = price * quantity * contract_multiplier(kind)
    if abs(value) >= _MONEY_LIMIT:
        raise ValidationError(
            f"price × quantity ({value:.2E}) is too large to store", field="price"
        )
    return value


def _worth(position: SourcePosition) -> Decimal:
    if is_cash(position):
        return position.quantity
    return position.market_value if position.market_value is not None else Decimal(0)


@dataclass(frozen=True)
class DuplicateEffect:
    """What each side of a duplicated account is worth, and the totals if the other counted."""

    kept_value: dict[str, Decimal]
    dropped_value: dict[str, Decimal]
    totals_if_switched: dict[str, Decimal]


def duplicate_effects(
    result: ConsolidatedPortfolio,
    duplicates: list[DuplicateAccount],
    totals: Mapping[str, Decimal],
) -> list[DuplicateEffect]:
    """Per duplicate (in order): the counted account's value, the left-out twin's, and the
    portfolio's totals per currency were the twin counted instead."""
    out = []
    for duplicate in duplicates:
        kept: dict[str, Decimal] = {}
        dropped: dict[str, Decimal] = {}
        for position in result.counted:
            if position.account == duplicate.winner.key:
                kept[position.currency] = kept.get(position.currency, Decimal(0)) + _worth(position)
        for left_out in result.superseded:
            position = left_out.position
            if position.account == duplicate.loser.key:
                dropped[position.currency] = dropped.get(position.currency, Decimal(0)) + _worth(
                    position
                )
        switched = {
            c: totals.get(c, Decimal(0)) - kept.get(c, Decimal(0)) + dropped.get(c, Decimal(0))
            for c in sorted({*totals, *kept, *dropped})
        }
        out.append(DuplicateEffect(kept, dropped, switched))
    return out


@dataclass
class ConsolidationSummary:
    portfolio_id: int
    positions: int
    superseded: int
    providers: list[str]
    last_updated: datetime | None
    cash: dict[str, Decimal] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)


def preferred_accounts(user: User) -> dict[str, str]:
    """The user's choices of which copy of a duplicated account counts (account id → id)."""
    prefs = user.preferences or {}
    chosen = prefs.get("prefer_accounts") or {}
    return {str(k): str(v) for k, v in chosen.items()}


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
        rows = _without_debts(await self.positions.list_for_portfolio(portfolio_id))
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
                name=row.name,
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

    async def add_manual_account(
        self, user_id: int, *, name: str, currency: str = "USD"
    ) -> Account:
        """A new account of the user's own (a wallet, a house, a private holding), never synced."""
        name = name.strip()
        if not name:
            raise ValidationError("an account name is required", field="name")
        manual = await self.connections.get_or_create_manual(user_id)
        existing = await self.accounts.list_for_connection(manual.id)
        return await self.accounts.upsert(
            manual,
            provider_account_id=f"manual-{len(existing) + 1}-{datetime.now(UTC):%Y%m%d%H%M%S%f}",
            name=name,
            type=AccountType.OTHER,
            currency=currency.upper(),
        )

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
        value: Decimal | None = None,
        account_id: int | None = None,
        portfolio_id: int | None = None,
        on_existing: OnExisting | None = None,
    ) -> PositionRow:
        """A manual position, in the user's manual account or beside a linked account's own.

        A ticker the account already holds by hand is never overwritten silently: without
        `on_existing` it is refused (ManualPositionExists); "add" adds the quantity (and the cost
        basis) to it, "replace" replaces it."""
        ticker = ticker.strip().upper()
        if not ticker:
            raise ValidationError("a ticker is required", field="ticker")
        if quantity < 0:
            raise ValidationError("quantity cannot be negative", field="quantity")
        if kind is InstrumentKind.CASH and not ticker.startswith("CUR:"):
            ticker = f"CUR:{currency.upper()}"
        price = _price(price, value, quantity, kind.value)
        if kind is InstrumentKind.CASH and price is None:
            price = Decimal(1)
        account = await self._manual_account(user_id, account_id)
        if portfolio_id is None:
            portfolio_id = (await self.portfolios.get_or_create_default(user_id)).id
        else:
            await self._owned_portfolio(portfolio_id, user_id)
        existing = await self._active_manual(account.id, ticker)
        if existing is not None:
            if on_existing is None:
                raise ManualPositionExists(existing)
            if on_existing == "add":
                quantity = existing.quantity + quantity
                price = price if price is not None else existing.price
                if cost_basis is not None and existing.cost_basis is not None:
                    cost_basis = existing.cost_basis + cost_basis
                elif cost_basis is None:
                    cost_basis = existing.cost_basis
        row = PositionValues(
            portfolio_id=portfolio_id,
            user_id=user_id,
            account_id=account.id,
            ticker=ticker,
            quantity=quantity,
            currency=currency.upper(),
            type=kind.value,
            provider=Provider.MANUAL,
            position_status=PositionStatus.ACTIVE,
            cost_basis=cost_basis,
            price=price,
            market_value=_market_value(price, quantity, kind.value),
            as_of=datetime.now(UTC),
        )
        await self.positions.bulk_upsert([row])
        stored = await self._active_manual(account.id, ticker)
        if stored is None:  # pragma: no cover
            raise AssertionError("the manual position was not written")
        await self.session.refresh(stored)
        return stored

    async def _active_manual(self, account_id: int, ticker: str) -> PositionRow | None:
        for stored in await self.positions.list_for_account(account_id):
            if (
                stored.ticker == ticker
                and stored.provider is Provider.MANUAL
                and stored.position_status is PositionStatus.ACTIVE
            ):
                return stored
        return None

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
        value: Decimal | None = None,
        kind: InstrumentKind | None = None,
    ) -> PositionRow:
        row = await self._owned_manual(user_id, position_id)
        if quantity is not None and quantity < 0:
            raise ValidationError("quantity cannot be negative", field="quantity")
        price = _price(
            price,
            value,
            quantity if quantity is not None else row.quantity,
            kind.value if kind is not None else row.type,
        )
        if kind is not None and not row.ticker.startswith("CUR:"):
            row.type = kind.value
        value = _market_value(
            price if price is not None else row.price,
            quantity if quantity is not None else row.quantity,
            kind.value if kind is not None else row.type,
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


def _without_debts(rows: list[PositionRow]) -> list[PositionRow]:
    """The portfolio's positions without what is owed on credit cards and loans.

    Their adapters store the balance owed as negative cash in an account that holds nothing
    else; that is a liability (net worth counts it, `accounts.service.net_worth`), not cash to
    invest, and counting it would turn a cash proxy negative. Negative cash beside holdings (a
    margin debt) stays: it is the account's own cash.
    """

    def cash(row: PositionRow) -> bool:
        return row.type == InstrumentKind.CASH or row.ticker.startswith(CASH_PREFIX)

    holding = {r.account_id for r in rows if not cash(r)}
    return [r for r in rows if not (cash(r) and r.quantity < 0 and r.account_id not in holding)]
