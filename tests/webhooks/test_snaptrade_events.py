"""Each SnapTrade event the sandbox sends changes what it should in the store."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from brokerlink.models import ConnectionStatus, OrderRecord, Position
from brokerlink.models.enums import AccountSyncStatus
from brokerlink.providers.snaptrade.users import SnapTradeUsers
from tests.webhooks.world import World

pytestmark = pytest.mark.asyncio

LIMIT_BUY = {
    "side": "buy",
    "symbol": "AAPL",
    "order_type": "limit",
    "quantity": "1",
    "limit_price": "1",
}


async def _linked(world: World, institution: str = "Charles Schwab", **connect):
    """A user with `institution` linked through the app; its webhooks delivered once the link
    completed (as they would reach a slower app), and their follow-ups finished."""
    user = await world.api.user()
    world.receiver.open.clear()
    await world.api.connect(user, institution, **connect)
    world.receiver.open.set()
    await world.settled()
    listed = (await user.get("/api/connections")).json()
    return user, max(c["id"] for c in listed if c["institution"] == institution)


async def _quantities(world: World, connection_id: int) -> dict[str, Decimal]:
    async with world.state.sessionmaker() as session:
        accounts = [a.id for a in await world.accounts(connection_id)]
        rows = await session.scalars(select(Position).where(Position.account_id.in_(accounts)))
        return {f"{p.account_id}:{p.ticker}": p.quantity for p in rows}


class TestLinkEvents:
    async def test_connection_added_and_new_accounts_sync_the_connection(self, world):
        _, connection_id = await _linked(world)
        # The store is shared by the tests of a run: only this connection's events count.
        added = await world.events(event_type="CONNECTION_ADDED", connection_id=connection_id)
        new_accounts = await world.events(
            event_type="NEW_ACCOUNT_AVAILABLE", connection_id=connection_id
        )
        assert [(e.result, e.connection_id) for e in added] == [("handled", connection_id)]
        assert new_accounts
        assert {(e.result, e.connection_id) for e in new_accounts} == {("handled", connection_id)}
        stored = {a.id for a in await world.accounts(connection_id)}
        assert {e.account_id for e in new_accounts} <= stored
        # The follow-ups synced it again after the link's own first sync.
        assert world.api.stack.snaptrade_wire.paths["/accounts"] >= 2

    async def test_connection_added_for_an_authorization_the_app_never_linked_is_left_alone(
        self, world
    ):
        user, connection_id = await _linked(world)
        before = await world.store()
        creds = await world.api.stack.snaptrade.users.credentials(str(user.id))
        await world.snap_client.sandbox_create_connection(
            creds.snaptrade_user_id, creds.secret, "FIDELITY"
        )
        await world.settled()
        added = (await world.events(event_type="CONNECTION_ADDED"))[-1]
        assert (added.result, added.connection_id) == ("handled", None)
        assert await world.store() == before


class TestHoldings:
    async def test_holdings_updated_syncs_that_accounts_connection(self, world):
        _, connection_id = await _linked(world)
        before = await _quantities(world, connection_id)
        account = (await world.accounts(connection_id))[0]
        moved = await world.sandbox("snaptrade").post(
            f"/sandbox/accounts/{account.provider_account_id}/move-holdings", json={"units": "1"}
        )
        assert moved.status_code == 200, moved.text
        await world.settled()
        after = await _quantities(world, connection_id)
        changed = {k for k in after if after[k] != before.get(k)}
        assert changed
        assert all(k.startswith(f"{account.id}:") for k in changed)
        assert all(after[k] == before[k] + 1 for k in changed)
        event = (await world.events(event_type="ACCOUNT_HOLDINGS_UPDATED"))[-1]
        assert (event.result, event.connection_id, event.account_id) == (
            "handled",
            connection_id,
            account.id,
        )

    async def test_the_route_answers_before_the_follow_up_sync_runs(self, world):
        _, connection_id = await _linked(world)
        before = await _quantities(world, connection_id)
        account = (await world.accounts(connection_id))[0]
        calls = world.api.stack.snaptrade_wire.total
        world.gate.clear()  # the app's calls to SnapTrade wait
        await world.sandbox("snaptrade").post(
            f"/sandbox/accounts/{account.provider_account_id}/move-holdings", json={"units": "1"}
        )
        await world.snap_app.state.webhooks.dispatcher.join()
        delivered = world.receiver.of("snaptrade")[-1]
        assert delivered.status == 200
        event = (await world.events(event_type="ACCOUNT_HOLDINGS_UPDATED"))[-1]
        assert event.result == "accepted"  # queued: the job marks it
        assert await _quantities(world, connection_id) == before
        world.gate.set()
        await world.settled()
        assert world.api.stack.snaptrade_wire.total > calls
        assert (await world.events(event_type="ACCOUNT_HOLDINGS_UPDATED"))[-1].result == "handled"
        assert await _quantities(world, connection_id) != before


class TestConnectionStatus:
    async def test_broken_then_fixed(self, world):
        _, connection_id = await _linked(world)
        authorization = (await world.connection(connection_id)).provider_connection_id
        sandbox = world.sandbox("snaptrade")
        assert (await sandbox.post(f"/sandbox/connections/{authorization}/break")).is_success
        await world.settled()
        broken = await world.connection(connection_id)
        assert broken.status is ConnectionStatus.BROKEN
        assert broken.status_reason is not None
        assert "CONNECTION_BROKEN" in broken.status_reason
        assert (await sandbox.post(f"/sandbox/connections/{authorization}/repair")).is_success
        await world.settled()
        fixed = await world.connection(connection_id)
        assert (fixed.status, fixed.status_reason) == (ConnectionStatus.ACTIVE, None)
        for kind in ("CONNECTION_BROKEN", "CONNECTION_FIXED"):
            events = await world.events(event_type=kind, connection_id=connection_id)
            assert [e.result for e in events] == ["handled"]

    async def test_deleted_at_snaptrade_disables_it_and_keeps_its_data_readable(self, world):
        user, connection_id = await _linked(world)
        held = await _quantities(world, connection_id)
        assert held
        authorization = (await world.connection(connection_id)).provider_connection_id
        await world.api.stack.snaptrade.remove(str(user.id), authorization)
        await world.settled()
        gone = await world.connection(connection_id)
        assert gone.status is ConnectionStatus.DISABLED
        accounts = await world.accounts(connection_id)
        assert {a.sync_status for a in accounts} == {AccountSyncStatus.STALE}
        assert all("no longer reported" in (a.last_error or "") for a in accounts)
        assert await _quantities(world, connection_id) == held
        removed = await world.events(event_type="ACCOUNT_REMOVED")
        assert {e.account_id for e in removed} == {a.id for a in accounts}
        assert {e.result for e in removed} == {"handled"}

    async def test_user_deleted_disables_its_connections_and_removes_its_secrets(self, world):
        user, connection_id = await _linked(world)
        prefix = SnapTradeUsers.prefix(str(user.id))
        assert await world.secrets.list(prefix)
        snaptrade_user = await world.api.stack.snaptrade.users.credentials(str(user.id))
        deletions = len(await world.events(event_type="USER_DELETED"))
        await world.snap_client.delete_user(snaptrade_user.snaptrade_user_id)
        await world.settled()
        assert (await world.connection(connection_id)).status is ConnectionStatus.DISABLED
        assert await world.secrets.list(prefix) == []
        deleted = await world.events(event_type="USER_DELETED")
        assert [e.result for e in deleted[deletions:]] == ["handled"]


class TestTrades:
    async def test_trade_update_updates_the_stored_order(self, world):
        user, connection_id = await _linked(world, need_trading=True)
        accounts = (await user.get("/api/accounts")).json()
        account = next(a for a in accounts if a["capabilities"]["trading"])
        placed = await user.post(
            f"/api/accounts/{account['id']}/orders",
            json=LIMIT_BUY,
            headers={"Idempotency-Key": "webhook-trade-0001"},
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["status"] != "canceled"
        await world.settled()
        stored = {a.id: a for a in await world.accounts(connection_id)}
        creds = await world.api.stack.snaptrade.users.credentials(str(user.id))
        await world.snap_client.cancel_order(
            creds.snaptrade_user_id,
            creds.secret,
            stored[account["id"]].provider_account_id,
            order["order_id"],
        )
        await world.settled()
        async with world.state.sessionmaker() as session:
            record = await session.scalar(
                select(OrderRecord).where(OrderRecord.idempotency_key == "webhook-trade-0001")
            )
        assert record is not None
        assert record.result is not None
        assert record.result["status"] == "canceled"
        assert record.result["client_order_id"] == "webhook-trade-0001"
        trades = await world.events(event_type="TRADE_UPDATE")
        assert trades[-1].result == "handled"
        assert trades[-1].account_id == account["id"]
