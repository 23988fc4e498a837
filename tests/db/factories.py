"""Small builders for store tests (users, portfolios, connections, accounts, positions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain import Capabilities, Instrument, InstrumentKind, Position, Provider
from brokerlink.models import Account, Connection, Portfolio, User
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    UserRepository,
)

AS_OF = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)


@dataclass
class Graph:
    user: User
    portfolio: Portfolio
    connection: Connection
    account: Account


async def make_graph(
    session: AsyncSession,
    *,
    provider: Provider = Provider.SNAPTRADE,
    email: str = "ada@example.com",
    provider_connection_id: str = "auth-1",
    provider_account_id: str = "acct-1",
) -> Graph:
    user = await UserRepository.from_session(session).create(email=email, name="Ada")
    portfolio = await PortfolioRepository.from_session(session).create(user_id=user.id, name="Main")
    connection = await ConnectionRepository.from_session(session).upsert(
        user_id=user.id,
        provider=provider,
        provider_connection_id=provider_connection_id,
        institution_name="Questrade",
        institution_slug="QUESTRADE",
    )
    account = await AccountRepository.from_session(session).upsert(
        connection,
        provider_account_id=provider_account_id,
        name="Margin",
        currency="CAD",
        number_mask="1234",
        capabilities=Capabilities(trading=True, realtime=False),
    )
    return Graph(user, portfolio, connection, account)


def holding(
    ticker: str,
    quantity: str,
    *,
    account_id: str = "acct-1",
    provider: Provider = Provider.SNAPTRADE,
    price: str | None = "10.5",
) -> Position:
    return Position(
        provider=provider,
        account_id=account_id,
        instrument=Instrument(symbol=ticker, kind=InstrumentKind.EQUITY),
        quantity=Decimal(quantity),
        currency="USD",
        price=Decimal(price) if price is not None else None,
        market_value=Decimal(price) * Decimal(quantity) if price is not None else None,
        as_of=AS_OF,
    )
