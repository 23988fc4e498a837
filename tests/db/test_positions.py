"""PositionRepository: bulk upserts and atomic per-account replacement."""

from decimal import Decimal

import pytest

from brokerlink.domain import Instrument, InstrumentKind, Position, Provider
from brokerlink.models import PositionStatus
from brokerlink.repositories import PositionRepository, PositionValues
from tests.db.factories import AS_OF, holding, make_graph


class FetchFailed(Exception):
    pass


def _quantities(positions) -> dict[str, Decimal]:
    return {p.ticker: p.quantity for p in positions}


async def _seed(session, graph) -> PositionRepository:
    repo = PositionRepository.from_session(session)
    await repo.replace_account_positions(
        graph.account,
        [holding("AAPL", "10"), holding("MSFT", "5.5")],
        portfolio_id=graph.portfolio.id,
    )
    return repo


class TestReplaceAccountPositions:
    @pytest.mark.asyncio
    async def test_writes_positions_with_account_user_and_provider(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)

        positions = await repo.list_for_account(graph.account.id)

        assert _quantities(positions) == {"AAPL": Decimal("10"), "MSFT": Decimal("5.5")}
        aapl = positions[0]
        assert (aapl.user_id, aapl.portfolio_id, aapl.provider) == (
            graph.user.id,
            graph.portfolio.id,
            Provider.SNAPTRADE,
        )
        assert aapl.position_source == "snaptrade"
        assert aapl.price == Decimal("10.5")
        assert aapl.market_value == Decimal("105")
        assert aapl.type == "equity"

    @pytest.mark.asyncio
    async def test_updates_inserts_and_deactivates_what_is_no_longer_reported(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)

        written = await repo.replace_account_positions(
            graph.account,
            [holding("AAPL", "12"), holding("VTI", "1")],
            portfolio_id=graph.portfolio.id,
        )

        assert written == 2
        active = await repo.list_for_account(graph.account.id)
        assert _quantities(active) == {"AAPL": Decimal("12"), "VTI": Decimal("1")}
        everything = await repo.list_for_account(graph.account.id, include_inactive=True)
        assert {p.ticker: p.position_status for p in everything} == {
            "AAPL": PositionStatus.ACTIVE,
            "MSFT": PositionStatus.INACTIVE,
            "VTI": PositionStatus.ACTIVE,
        }

    @pytest.mark.asyncio
    async def test_a_reported_again_position_is_reactivated(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)
        await repo.replace_account_positions(graph.account, [], portfolio_id=graph.portfolio.id)
        assert await repo.list_for_account(graph.account.id) == []

        await repo.replace_account_positions(
            graph.account, [holding("MSFT", "1")], portfolio_id=graph.portfolio.id
        )

        assert _quantities(await repo.list_for_account(graph.account.id)) == {"MSFT": 1}

    @pytest.mark.asyncio
    async def test_async_iterable_failing_midway_leaves_previous_positions(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)

        async def fetch():
            yield holding("AAPL", "999")
            yield holding("NEW", "1")
            raise FetchFailed("provider went away")

        with pytest.raises(FetchFailed):
            await repo.replace_account_positions(
                graph.account, fetch(), portfolio_id=graph.portfolio.id, batch_size=1
            )

        # The caller's transaction is still usable and still holds the old rows.
        await session.commit()
        positions = await repo.list_for_account(graph.account.id, include_inactive=True)
        assert _quantities(positions) == {"AAPL": Decimal("10"), "MSFT": Decimal("5.5")}
        assert {p.position_status for p in positions} == {PositionStatus.ACTIVE}

    @pytest.mark.asyncio
    async def test_sync_iterable_failing_midway_leaves_previous_positions(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)

        def fetch():
            yield holding("AAPL", "1")
            raise FetchFailed("timeout")

        with pytest.raises(FetchFailed):
            await repo.replace_account_positions(
                graph.account, fetch(), portfolio_id=graph.portfolio.id
            )

        assert _quantities(await repo.list_for_account(graph.account.id)) == {
            "AAPL": Decimal("10"),
            "MSFT": Decimal("5.5"),
        }

    @pytest.mark.asyncio
    async def test_a_write_failing_midway_leaves_previous_positions(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)
        too_big = holding("BIG", "1" + "0" * 20)  # does not fit NUMERIC(20, 8)

        with pytest.raises(Exception, match="does not fit"):
            await repo.replace_account_positions(
                graph.account,
                [holding("AAPL", "1"), holding("ZZZ", "2"), too_big],
                portfolio_id=graph.portfolio.id,
                batch_size=1,
            )

        assert _quantities(await repo.list_for_account(graph.account.id)) == {
            "AAPL": Decimal("10"),
            "MSFT": Decimal("5.5"),
        }

    @pytest.mark.asyncio
    async def test_positions_of_another_account_are_refused(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)

        with pytest.raises(ValueError, match="acct-2"):
            await repo.replace_account_positions(
                graph.account,
                [holding("AAPL", "1"), holding("X", "1", account_id="acct-2")],
                portfolio_id=graph.portfolio.id,
            )

        assert _quantities(await repo.list_for_account(graph.account.id))["AAPL"] == 10

    @pytest.mark.asyncio
    async def test_repeated_tickers_are_summed(self, session):
        graph = await make_graph(session)
        repo = PositionRepository.from_session(session)

        await repo.replace_account_positions(
            graph.account,
            [holding("AAPL", "1.5"), holding("AAPL", "2.25")],
            portfolio_id=graph.portfolio.id,
        )

        [aapl] = await repo.list_for_account(graph.account.id)
        assert aapl.quantity == Decimal("3.75")
        assert aapl.market_value == Decimal("39.375")

    @pytest.mark.asyncio
    async def test_a_holding_without_ticker_is_kept_under_its_figi(self, session):
        graph = await make_graph(session)
        repo = PositionRepository.from_session(session)
        unnamed = Position(
            provider=Provider.SNAPTRADE,
            account_id="acct-1",
            instrument=Instrument(symbol=None, kind=InstrumentKind.BOND, figi="BBG000XYZ"),
            quantity=Decimal("2"),
            currency="USD",
        )

        await repo.replace_account_positions(
            graph.account, [unnamed], portfolio_id=graph.portfolio.id
        )

        [position] = await repo.list_for_account(graph.account.id)
        assert (position.ticker, position.type) == ("FIGI:BBG000XYZ", "bond")


class TestBulkUpsert:
    @pytest.mark.asyncio
    async def test_inserts_then_updates_on_conflict_in_batches(self, session):
        graph = await make_graph(session)
        repo = PositionRepository.from_session(session)

        def rows(quantity: str, count: int) -> list[PositionValues]:
            return [
                PositionValues(
                    portfolio_id=graph.portfolio.id,
                    user_id=graph.user.id,
                    account_id=graph.account.id,
                    ticker=f"T{i:03d}",
                    quantity=Decimal(quantity),
                    currency="USD",
                    type="equity",
                    provider=Provider.SNAPTRADE,
                )
                for i in range(count)
            ]

        assert await repo.bulk_upsert(rows("1", 7), batch_size=3) == 7
        assert await repo.bulk_upsert(rows("2.5", 10), batch_size=4) == 10

        positions = await repo.list_for_portfolio(graph.portfolio.id)
        assert len(positions) == 10
        assert {p.quantity for p in positions} == {Decimal("2.5")}


class TestMarkConsolidated:
    @pytest.mark.asyncio
    async def test_stamps_active_positions(self, session):
        graph = await make_graph(session)
        repo = await _seed(session, graph)

        await repo.mark_consolidated(graph.portfolio.id, AS_OF)

        positions = await repo.list_for_portfolio(graph.portfolio.id)
        assert {p.last_consolidation_at for p in positions} == {AS_OF}


class TestFreshness:
    @pytest.mark.asyncio
    async def test_the_holdings_and_the_prices_as_of_times_are_both_kept(self, session):
        from datetime import timedelta

        graph = await make_graph(session)
        lagging = holding("AAPL", "10").model_copy(
            update={"price_as_of": AS_OF - timedelta(hours=20)}
        )
        repo = PositionRepository.from_session(session)
        await repo.replace_account_positions(
            graph.account, [lagging], portfolio_id=graph.portfolio.id
        )
        (stored,) = await repo.list_for_account(graph.account.id)
        assert stored.as_of == AS_OF
        assert stored.price_as_of == AS_OF - timedelta(hours=20)
