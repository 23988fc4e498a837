"""The portfolio service on the real schema: the product's examples, exactly, end to end."""

import uuid
from decimal import Decimal

import pytest

from brokerlink.domain import (
    AccountType,
    Instrument,
    InstrumentKind,
    Position,
    Provider,
)
from brokerlink.errors import NotFoundError, ValidationError
from brokerlink.portfolio.service import PortfolioService
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
    UserRepository,
)

pytestmark = pytest.mark.asyncio
D = Decimal


async def _user(session):
    user = await UserRepository.from_session(session).create(email=f"{uuid.uuid4().hex}@x.test")
    portfolio = await PortfolioRepository.from_session(session).get_or_create_default(user.id)
    return user.id, portfolio.id


async def _account(session, user_id, provider, institution, *, mask, type=AccountType.BROKERAGE):
    connection = await ConnectionRepository.from_session(session).upsert(
        user_id=user_id,
        provider=provider,
        provider_connection_id=f"{provider.value}-{uuid.uuid4().hex[:8]}",
        institution_name=institution,
        institution_slug=institution.lower(),
    )
    return await AccountRepository.from_session(session).upsert(
        connection, provider_account_id=uuid.uuid4().hex[:8], number_mask=mask, type=type
    )


async def _hold(session, account, portfolio_id, provider, *rows):
    positions = [
        Position(
            provider=provider,
            account_id=account.provider_account_id,
            instrument=Instrument(
                symbol=ticker,
                kind=InstrumentKind.CASH if ticker.startswith("CUR:") else InstrumentKind.EQUITY,
            ),
            quantity=D(qty),
            currency="USD",
        )
        for ticker, qty in rows
    ]
    await PositionRepository.from_session(session).replace_account_positions(
        account, positions, portfolio_id=portfolio_id
    )


async def test_cash_aggregates_chase_schwab_and_manual_to_9000(session):
    user, portfolio = await _user(session)
    chase = await _account(
        session, user, Provider.PLAID, "Chase", mask="1111", type=AccountType.BANK
    )
    schwab = await _account(session, user, Provider.SNAPTRADE, "Charles Schwab", mask="2222")
    await _hold(session, chase, portfolio, Provider.PLAID, ("CUR:USD", "5000"))
    await _hold(session, schwab, portfolio, Provider.SNAPTRADE, ("CUR:USD", "3000"))
    service = PortfolioService(session)
    await service.add_manual(user, ticker="USD", quantity=D("1000"), kind=InstrumentKind.CASH)

    summary = await service.consolidate(portfolio, user_id=user)
    assert summary.cash == {"USD": D("9000")}
    assert summary.providers == ["manual", "plaid", "snaptrade"]
    view = await service.analysis(portfolio, user_id=user)
    assert view["SGOV"].shares == D("9000")


async def test_a_card_balance_owed_is_not_portfolio_cash_but_a_margin_debt_is(session):
    user, portfolio = await _user(session)
    bank = await _account(session, user, Provider.PLAID, "Citi", mask="1111", type=AccountType.BANK)
    card = await _account(
        session, user, Provider.PLAID, "Citi", mask="2222", type=AccountType.OTHER
    )
    margin = await _account(session, user, Provider.SNAPTRADE, "Charles Schwab", mask="3333")
    await _hold(session, bank, portfolio, Provider.PLAID, ("CUR:USD", "5000"))
    await _hold(session, card, portfolio, Provider.PLAID, ("CUR:USD", "-600"))
    await _hold(session, margin, portfolio, Provider.SNAPTRADE, ("AAPL", "10"), ("CUR:USD", "-200"))

    summary = await PortfolioService(session).consolidate(portfolio, user_id=user)

    # The card's debt is a liability (net worth), not cash; the margin debt is the account's own.
    assert summary.cash == {"USD": D("4800")}


async def test_manual_tsla_10_loses_to_snaptrade_tsla_12_in_the_same_account(session):
    user, portfolio = await _user(session)
    schwab = await _account(session, user, Provider.SNAPTRADE, "Charles Schwab", mask="2222")
    await _hold(session, schwab, portfolio, Provider.SNAPTRADE, ("TSLA", "12"))
    service = PortfolioService(session)
    manual = await service.add_manual(user, ticker="tsla", quantity=D("10"), account_id=schwab.id)
    assert manual.ticker == "TSLA"

    summary = await service.consolidate(portfolio, user_id=user)
    assert (summary.positions, summary.superseded) == (1, 1)
    assert (await service.analysis(portfolio))["TSLA"].shares == D("12")


async def test_aapl_100_from_plaid_and_50_from_snaptrade_is_150(session):
    user, portfolio = await _user(session)
    vanguard = await _account(session, user, Provider.PLAID, "Vanguard", mask="3333")
    schwab = await _account(session, user, Provider.SNAPTRADE, "Charles Schwab", mask="2222")
    await _hold(session, vanguard, portfolio, Provider.PLAID, ("AAPL", "100"))
    await _hold(session, schwab, portfolio, Provider.SNAPTRADE, ("AAPL", "50"))
    view = await PortfolioService(session).analysis(portfolio, user_id=user)
    assert view["AAPL"].shares == D("150")
    assert view["AAPL"].account_id == str(schwab.id)  # metadata from the higher priority


async def test_the_same_account_through_two_providers_counts_once(session):
    user, portfolio = await _user(session)
    via_plaid = await _account(session, user, Provider.PLAID, "Charles Schwab", mask="9999")
    via_snap = await _account(session, user, Provider.SNAPTRADE, "Charles Schwab", mask="9999")
    await _hold(session, via_plaid, portfolio, Provider.PLAID, ("VTI", "40"))
    await _hold(session, via_snap, portfolio, Provider.SNAPTRADE, ("VTI", "40"))
    service = PortfolioService(session)
    summary = await service.consolidate(portfolio, user_id=user)
    assert len(summary.duplicates) == 1
    assert "higher provider priority" in summary.duplicates[0]
    assert (await service.analysis(portfolio))["VTI"].shares == D("40")

    chosen = PortfolioService(session, prefer_accounts={str(via_snap.id): str(via_plaid.id)})
    assert "user's choice" in (await chosen.consolidate(portfolio)).duplicates[0]


async def test_manual_positions_edit_and_remove(session):
    user, portfolio = await _user(session)
    service = PortfolioService(session)
    row = await service.add_manual(user, ticker="BRK.B", quantity=D("3"), price=D("400"))
    edited = await service.update_manual(user, row.id, quantity=D("5"))
    assert edited.quantity == D("5")
    assert edited.market_value == D("2000")
    assert (await service.analysis(portfolio))["BRK.B"].shares == D("5")

    await service.remove_manual(user, row.id)
    assert "BRK.B" not in await service.analysis(portfolio)
    await service.add_manual(user, ticker="BRK.B", quantity=D("1"))  # back again
    assert (await service.analysis(portfolio))["BRK.B"].shares == D("1")


async def test_only_the_owner_and_only_manual_entries(session):
    user, portfolio = await _user(session)
    other, _ = await _user(session)
    schwab = await _account(session, user, Provider.SNAPTRADE, "Charles Schwab", mask="2222")
    await _hold(session, schwab, portfolio, Provider.SNAPTRADE, ("MSFT", "1"))
    service = PortfolioService(session)
    provider_row = (await PositionRepository.from_session(session).list_for_account(schwab.id))[0]
    with pytest.raises(ValidationError, match="only manual entries"):
        await service.update_manual(user, provider_row.id, quantity=D("2"))
    with pytest.raises(NotFoundError):
        await service.update_manual(other, provider_row.id, quantity=D("2"))
    with pytest.raises(NotFoundError):
        await service.consolidate(portfolio, user_id=other)
    with pytest.raises(NotFoundError):
        await service.add_manual(other, ticker="X", quantity=D(1), account_id=schwab.id)
    with pytest.raises(ValidationError):
        await service.add_manual(user, ticker="X", quantity=D(-1))


async def test_consolidate_all_stamps_every_portfolio(session):
    user, portfolio = await _user(session)
    service = PortfolioService(session)
    await service.add_manual(user, ticker="VOO", quantity=D("2"))
    summaries = await service.consolidate_all(user)
    assert [s.portfolio_id for s in summaries] == [portfolio]
    rows = await PositionRepository.from_session(session).list_for_portfolio(portfolio)
    assert all(r.last_consolidation_at is not None for r in rows)
