"""Column types on both backends: exact decimals, aware UTC timestamps, JSONB, constraints."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from brokerlink.domain import Provider
from brokerlink.models import Account, Position
from tests.db.factories import make_graph


def _position(graph, ticker="AAPL", **overrides) -> Position:
    values = {
        "portfolio_id": graph.portfolio.id,
        "user_id": graph.user.id,
        "account_id": graph.account.id,
        "ticker": ticker,
        "quantity": Decimal("1"),
        "currency": "USD",
        "type": "equity",
        "provider": Provider.SNAPTRADE,
        "position_source": "snaptrade",
    } | overrides
    return Position(**values)


class TestDecimal:
    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("stored", "read"),
        [
            ("0.12345678", "0.12345678"),
            ("1", "1.00000000"),
            ("-0.00000001", "-0.00000001"),
            ("999999999999.99999999", "999999999999.99999999"),
            ("0.123456785", "0.12345679"),  # NUMERIC rounds half away from zero; so do we
        ],
    )
    async def test_quantity_round_trips_exactly(self, session, stored, read):
        graph = await make_graph(session)
        session.add(_position(graph, quantity=Decimal(stored), price=Decimal(stored)))
        await session.flush()
        session.expunge_all()

        loaded = await session.scalar(sa.select(Position))

        # Same value and same digits/exponent (str() of 1E-8 is scientific on both backends).
        assert loaded.quantity.as_tuple() == Decimal(read).as_tuple()
        assert loaded.price.as_tuple() == Decimal(read).as_tuple()
        assert isinstance(loaded.quantity, Decimal)

    @pytest.mark.asyncio
    @pytest.mark.parametrize("value", ["1000000000000", "999999999999.999999995", "NaN"])
    async def test_values_that_do_not_fit_are_refused_before_the_database(self, session, value):
        graph = await make_graph(session)
        session.add(_position(graph, quantity=Decimal(value)))

        with pytest.raises(sa.exc.StatementError, match="does not fit|not a finite"):
            await session.flush()

    @pytest.mark.asyncio
    async def test_float_is_refused(self, session):
        graph = await make_graph(session)
        session.add(_position(graph, quantity=0.1))

        with pytest.raises(sa.exc.StatementError, match="expected Decimal"):
            await session.flush()


class TestUTCDateTime:
    @pytest.mark.asyncio
    async def test_aware_datetime_comes_back_aware_in_utc(self, session):
        graph = await make_graph(session)
        toronto = timezone(timedelta(hours=-5))
        as_of = datetime(2026, 11, 24, 10, 15, 30, 123456, tzinfo=toronto)
        session.add(_position(graph, as_of=as_of))
        await session.flush()
        session.expunge_all()

        loaded = await session.scalar(sa.select(Position))

        assert loaded.as_of == as_of
        assert loaded.as_of.utcoffset() == timedelta(0)
        assert loaded.as_of.replace(tzinfo=None) == datetime(2026, 11, 24, 15, 15, 30, 123456)
        assert loaded.created_at.tzinfo is not None

    @pytest.mark.asyncio
    async def test_naive_datetime_is_refused(self, session):
        graph = await make_graph(session)
        session.add(_position(graph, as_of=datetime(2026, 11, 24, 10, 0)))

        with pytest.raises(sa.exc.StatementError, match="naive datetime"):
            await session.flush()

    @pytest.mark.asyncio
    async def test_comparisons_happen_in_utc(self, session):
        graph = await make_graph(session)
        session.add(_position(graph, as_of=datetime(2026, 11, 24, 12, 0, tzinfo=UTC)))
        await session.flush()
        plus_two = timezone(timedelta(hours=2))

        later = await session.scalar(
            sa.select(sa.func.count())
            .select_from(Position)
            .where(Position.as_of > datetime(2026, 11, 24, 13, 30, tzinfo=plus_two))
        )

        assert later == 1  # 13:30+02:00 is 11:30 UTC


class TestJSON:
    @pytest.mark.asyncio
    async def test_capabilities_column_is_jsonb_on_postgresql(self, session, db_backend):
        columns = await session.run_sync(
            lambda s: {
                c["name"]: c["type"] for c in sa.inspect(s.connection()).get_columns("accounts")
            }
        )

        if db_backend == "postgresql":
            assert isinstance(columns["capabilities"], JSONB)
        else:
            assert isinstance(columns["capabilities"], sa.JSON)

    @pytest.mark.asyncio
    async def test_capabilities_round_trip(self, session):
        graph = await make_graph(session)
        session.expunge_all()

        loaded = await session.get(Account, graph.account.id)

        assert loaded.capabilities_json == {
            "trading": True,
            "realtime": False,
            "trading_block": None,
        }
        assert loaded.capabilities.trading is True


class TestConstraints:
    @pytest.mark.asyncio
    async def test_positions_are_unique_per_portfolio_ticker_account_provider(self, session):
        graph = await make_graph(session)
        session.add(_position(graph, ticker="AAPL"))
        await session.flush()

        with pytest.raises(sa.exc.IntegrityError):
            async with session.begin_nested():
                session.add(_position(graph, ticker="AAPL", quantity=Decimal("2")))
        # A different ticker in the same account is fine.
        session.add(_position(graph, ticker="MSFT"))
        await session.flush()

    @pytest.mark.asyncio
    async def test_foreign_keys_are_enforced(self, session):
        graph = await make_graph(session)

        with pytest.raises(sa.exc.IntegrityError):
            async with session.begin_nested():
                session.add(_position(graph, account_id=graph.account.id + 1000))

    @pytest.mark.asyncio
    async def test_provider_check_rejects_unknown_values(self, session):
        graph = await make_graph(session)
        table = Position.__table__
        # Through a plain VARCHAR bind, past the enum type's own validation.
        statement = sa.insert(table).values(
            portfolio_id=graph.portfolio.id,
            user_id=graph.user.id,
            account_id=graph.account.id,
            ticker="X",
            quantity=Decimal("1"),
            currency="USD",
            type="equity",
            provider=sa.literal("robinhood", sa.String()),
            position_source="robinhood",
            position_status="active",
            created_at=datetime.now(UTC),
            updated_at=datetime.now(UTC),
        )

        with pytest.raises(sa.exc.IntegrityError, match="(?i)check"):
            async with session.begin_nested():
                await session.execute(statement)
