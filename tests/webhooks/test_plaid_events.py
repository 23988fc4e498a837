"""Each Plaid event the sandbox sends changes what it should in the store."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from brokerlink.models import ConnectionStatus, Position
from brokerlink.secrets.store import plaid_access_token_name
from tests.webhooks.world import World

pytestmark = pytest.mark.asyncio


async def _chase(world: World) -> tuple[Any, int, str]:
    """A user with Chase linked through Plaid Hosted Link; the Item's webhooks delivered once
    the link completed. The user, the connection's id, the Item's access token."""
    user = await world.api.user()
    world.receiver.open.clear()
    await world.api.connect(user, "Chase")
    world.receiver.open.set()
    await world.settled()
    listed = (await user.get("/api/connections")).json()
    connection_id = max(c["id"] for c in listed if c["provider"] == "plaid")
    item_id = (await world.connection(connection_id)).provider_connection_id
    token = await world.secrets.get(plaid_access_token_name(str(user.id), item_id))
    return user, connection_id, str(token["access_token"])


async def _positions(world: World, connection_id: int) -> dict[tuple[int, str], Any]:
    accounts = [a.id for a in await world.accounts(connection_id)]
    async with world.state.sessionmaker() as session:
        rows = await session.scalars(select(Position).where(Position.account_id.in_(accounts)))
        return {(p.account_id, p.ticker): (p.quantity, p.price) for p in rows}


async def _fire(world: World, token: str, code: str, webhook_type: str | None = None) -> None:
    body: dict[str, Any] = {
        "client_id": "stack-plaid-client",
        "secret": "stack-plaid-secret-not-a-secret",
        "access_token": token,
        "webhook_code": code,
    }
    if webhook_type is not None:
        body["webhook_type"] = webhook_type
    fired = await world.sandbox("plaid").post("/sandbox/item/fire_webhook", json=body)
    assert fired.status_code == 200, fired.text
    await world.settled()


class TestHoldings:
    async def test_default_update_syncs_the_items_connection(self, world):
        _, connection_id, _ = await _chase(world)
        item_id = (await world.connection(connection_id)).provider_connection_id
        before = await _positions(world, connection_id)
        assert before
        moved = await world.sandbox("plaid").post(f"/sandbox-admin/items/{item_id}/move-holdings")
        assert moved.status_code == 200, moved.text
        await world.settled()
        assert await _positions(world, connection_id) != before
        event = (await world.events(event_type="HOLDINGS:DEFAULT_UPDATE"))[-1]
        assert (event.result, event.connection_id) == ("handled", connection_id)


class TestItemStatus:
    async def test_error_marks_it_for_reconnect_and_login_repaired_clears_it(self, world):
        _, connection_id, token = await _chase(world)
        await _fire(world, token, "ERROR", "ITEM")
        broken = await world.connection(connection_id)
        assert broken.status is ConnectionStatus.BROKEN
        assert broken.status_reason is not None
        await _fire(world, token, "LOGIN_REPAIRED", "ITEM")
        repaired = await world.connection(connection_id)
        assert (repaired.status, repaired.status_reason) == (ConnectionStatus.ACTIVE, None)
        for kind in ("ITEM:ERROR", "ITEM:LOGIN_REPAIRED"):
            events = await world.events(event_type=kind, connection_id=connection_id)
            assert [e.result for e in events] == ["handled"]

    async def test_pending_expiration_dates_the_reconnect(self, world):
        _, connection_id, token = await _chase(world)
        assert (await world.connection(connection_id)).reconnect_by is None
        await _fire(world, token, "PENDING_EXPIRATION", "ITEM")
        dated = await world.connection(connection_id)
        assert dated.reconnect_by is not None
        assert dated.status is ConnectionStatus.ACTIVE
        events = await world.events(
            event_type="ITEM:PENDING_EXPIRATION", connection_id=connection_id
        )
        assert [e.result for e in events] == ["handled"]

    async def test_a_key_endpoint_down_answers_503_and_plaids_retry_is_handled(self, world):
        _, connection_id, token = await _chase(world)
        item_id = (await world.connection(connection_id)).provider_connection_id
        # A receiver with no key cached yet, as after a restart.
        del world.api.app.state.webhook_receiver
        await world.sandbox("plaid").put(
            "/sandbox-admin/faults",
            json={"fail_next": [503, 503, 503], "path_pattern": "webhook_verification_key"},
        )
        await world.sandbox("plaid").post(f"/sandbox-admin/items/{item_id}/move-holdings")
        await world.settled()
        statuses = [d.status for d in world.receiver.of("plaid")]
        assert statuses[-2:] == [503, 200]
        event = (await world.events(event_type="HOLDINGS:DEFAULT_UPDATE"))[-1]
        assert event.result == "handled"
