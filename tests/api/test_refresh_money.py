"""Billed refreshes under overlap and faults, through the API on SQLite and PostgreSQL.

What the ledger and the refresh log say must be what the provider saw: a billed call stays
recorded whatever fails after it, two requests never both bill, a lost answer is counted and not
re-sent, and a slow provider blocks nobody's reads or writes.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import select

from brokerlink.models import Connection, CostEntry, LedgerStatus, RefreshLog, RefreshStatus
from brokerlink.policies.cost_guard import CostPolicy
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio

PLAID_REFRESH = "/investments/refresh"


async def _rows(api, connection_id: int) -> tuple[list[RefreshLog], list[CostEntry]]:
    async with api.state.sessionmaker() as session:
        log = list(
            await session.scalars(
                select(RefreshLog)
                .where(RefreshLog.connection_id == connection_id)
                .order_by(RefreshLog.id)
            )
        )
        ledger = list(
            await session.scalars(
                select(CostEntry)
                .where(CostEntry.refresh_id.in_([e.id for e in log]))
                .order_by(CostEntry.id)
            )
        )
    return log, ledger


def _refreshes_at_plaid_sandbox(api) -> int:
    """Refreshes the Plaid sandbox itself carried out (its items' refresh epochs)."""
    return sum(item.refresh_epoch for item in api.stack.plaid_app.state.sandbox.items.values())


class TestConcurrentRefreshes:
    async def test_twenty_at_once_bill_exactly_one(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        before = _refreshes_at_plaid_sandbox(api)

        answers = await asyncio.gather(
            *(user.post(f"/api/connections/{chase['id']}/refresh") for _ in range(20))
        )

        accepted = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert len(accepted) == 1, [a.text for a in answers]
        assert len(refused) == 19
        for answer in refused:
            error = assert_error(answer, answer.status_code)
            assert answer.status_code in (409, 429), answer.text
            assert error["code"] in ("refresh_in_flight", "refresh_too_soon"), error
            assert error["reason"]
            assert error["next_allowed_at"]
        assert _refreshes_at_plaid_sandbox(api) - before == 1
        log, ledger = await _rows(api, chase["id"])
        assert [e.status for e in log].count(RefreshStatus.ACCEPTED) == 1
        assert [e.status for e in log].count(RefreshStatus.REJECTED) == 19
        assert [(c.status, c.amount) for c in ledger] == [(LedgerStatus.BILLED, Decimal("0.12"))]

    async def test_a_user_budget_holds_across_connections_at_once(self, api):
        api.state.policy = CostPolicy(user_monthly_budget=Decimal("0.12"))
        user = await api.user()
        first = await api.connect(user, "Chase")
        second = await api.connect(user, "First Platypus Bank")
        before = _refreshes_at_plaid_sandbox(api)

        answers = await asyncio.gather(
            *(user.post(f"/api/connections/{c['id']}/refresh") for c in (first, second) * 3)
        )

        assert sorted(a.status_code for a in answers).count(200) == 1, [a.text for a in answers]
        assert _refreshes_at_plaid_sandbox(api) - before == 1
        codes = {a.json()["error"]["code"] for a in answers if a.status_code != 200}
        assert "budget_exceeded" in codes


class TestFailureAfterABilledCall:
    async def test_keeps_the_billed_call_in_the_ledger_and_the_log(self, api):
        user = await api.user()
        schwab = await api.connect(user, "Charles Schwab")
        fidelity = await api.connect(user, "Fidelity")
        async with api.state.sessionmaker() as session:
            second = await session.get(Connection, fidelity["id"])
            assert second is not None
            second_upstream = second.provider_connection_id
        api.faults(
            "snaptrade", fail_next=[500], path_pattern=f"/authorizations/{second_upstream}/refresh"
        )

        response = await user.post("/api/snaptrade/refresh-holdings")

        assert_error(response, 502)
        log, ledger = await _rows(api, schwab["id"])
        assert [e.status for e in log] == [RefreshStatus.ACCEPTED]
        assert [(c.status, c.amount) for c in ledger] == [(LedgerStatus.BILLED, Decimal("0.05"))]
        # The failed one reached the provider, so its outcome is unknown: counted, not dropped.
        log, ledger = await _rows(api, fidelity["id"])
        assert [e.status for e in log] == [RefreshStatus.IN_DOUBT]
        assert [c.status for c in ledger] == [LedgerStatus.IN_DOUBT]

    async def test_the_next_refusal_names_a_time_in_the_future(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        api.faults("plaid", fail_next=[500], path_pattern=PLAID_REFRESH)
        failed = await user.post(f"/api/connections/{chase['id']}/refresh")
        assert_error(failed, 502)
        # The 500 came after the request arrived: in doubt, counted, and not sent again.
        log, ledger = await _rows(api, chase["id"])
        assert [e.status for e in log] == [RefreshStatus.IN_DOUBT]
        assert [(c.status, c.amount) for c in ledger] == [(LedgerStatus.IN_DOUBT, Decimal("0.12"))]

        again = await user.post(f"/api/connections/{chase['id']}/refresh")

        error = assert_error(again, 429, "refresh_too_soon")
        assert error["next_allowed_at"] > api.clock().isoformat()


class TestSlowProvider:
    async def test_reads_and_writes_finish_while_a_refresh_hangs(self, api):
        user, other = await api.user(), await api.user()
        chase = await api.connect(user, "Chase")
        await api.connect(other, "Chase")
        api.faults("plaid", latency=30.0, path_pattern=PLAID_REFRESH)

        hanging = asyncio.create_task(user.post(f"/api/connections/{chase['id']}/refresh"))
        # Wait until the intent is committed: the call is then at the provider.
        for _ in range(2000):
            log, _ = await _rows(api, chase["id"])
            if log and log[-1].status is RefreshStatus.SENDING:
                break
            await asyncio.sleep(0.005)
        else:
            raise AssertionError("the refresh never reached the provider")

        reads = await asyncio.gather(
            user.get("/api/accounts"),
            user.get("/api/connections"),
            user.get("/api/portfolio"),
            other.get("/api/accounts"),
        )
        writes = await asyncio.gather(
            user.post(
                "/api/manual-positions",
                json={"ticker": "VTI", "quantity": "3", "currency": "USD"},
            ),
            other.post(
                "/api/manual-positions",
                json={"ticker": "BND", "quantity": "2", "currency": "USD"},
            ),
        )
        assert not hanging.done()  # all of the above finished while the refresh still hangs
        assert [r.status_code for r in reads] == [200, 200, 200, 200], [r.text for r in reads]
        assert [w.status_code for w in writes] == [201, 201], [w.text for w in writes]
        second = await user.post(f"/api/connections/{chase['id']}/refresh")
        assert_error(second, 409, "refresh_in_flight")

        hanging.cancel()
        await asyncio.gather(hanging, return_exceptions=True)
        api.faults("plaid")
