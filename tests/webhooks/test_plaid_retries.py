"""Plaid's retries, signed afresh over the same body, are the event they retry: handled once.

The Plaid sandbox signs each attempt as Plaid does (a new `iat`, so a new event id), here on the
app's clock, which moves 30 s after each delivery (`World.plaid_signs_on_the_app_clock`).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from typing import Any

import jwt
import pytest

from brokerlink.providers.plaid.webhooks import RETRY_WINDOW
from brokerlink.sync.tasks import BackgroundSyncs
from brokerlink.webhooks.service import refused_event_id
from tests.webhooks.world import Delivery, World

pytestmark = pytest.mark.asyncio

HOLDINGS = "HOLDINGS:DEFAULT_UPDATE"
HOLDINGS_READS = "/investments/holdings/get"


async def _chase(world: World) -> tuple[int, str]:
    """Chase linked through Plaid, its Item's webhooks delivered, then the sandbox signing on
    the app's clock. The connection's id and the Item's id."""
    user = await world.api.user()
    world.receiver.open.clear()
    await world.api.connect(user, "Chase")
    world.receiver.open.set()
    await world.settled()
    connection_id = max(
        c["id"] for c in (await user.get("/api/connections")).json() if c["provider"] == "plaid"
    )
    world.plaid_signs_on_the_app_clock()
    return connection_id, (await world.connection(connection_id)).provider_connection_id


async def _move_holdings(world: World, item_id: str) -> list[Delivery]:
    """The sandbox's next extraction at the Item: every attempt of its HOLDINGS webhook."""
    seen = len(world.receiver.of("plaid"))
    moved = await world.sandbox("plaid").post(f"/sandbox-admin/items/{item_id}/move-holdings")
    assert moved.status_code == 200, moved.text
    await world.settled()
    return world.receiver.of("plaid")[seen:]


def _reads(world: World) -> int:
    return world.api.stack.plaid_wire.paths[HOLDINGS_READS]


def _iat(delivery: Delivery) -> int:
    claims = jwt.decode(delivery.headers["plaid-verification"], options={"verify_signature": False})
    return int(claims["iat"])


class TestRetried:
    async def test_a_retry_after_a_lost_answer_is_refused_as_a_replay(self, world):
        connection_id, item_id = await _chase(world)
        reads = _reads(world)
        world.receiver.lose = 1

        attempts = await _move_holdings(world, item_id)

        # Plaid never got the first answer, so it retried, each attempt signed afresh.
        assert (attempts[0].lost, attempts[0].status) == (True, 200)
        assert len({a.body for a in attempts}) == 1
        assert len({_iat(a) for a in attempts}) == len(attempts) > 1
        assert [a.status for a in attempts[1:]] == [409] * (len(attempts) - 1)
        # One sync, one read of the Item's holdings: the retries changed nothing.
        assert _reads(world) == reads + 1
        [event] = await world.events(event_type=HOLDINGS, connection_id=connection_id)
        assert event.result == "handled"
        assert event.body_sha256 == hashlib.sha256(attempts[0].body).hexdigest()
        refused = await world.events(event_id=refused_event_id(attempts[0].body))
        assert [(e.result, e.event_type) for e in refused] == [("refused:replayed", "unverified")]

    async def test_a_retry_after_the_follow_up_was_not_queued_takes_the_event_up_again(self, world):
        connection_id, item_id = await _chase(world)
        engine = world.state.syncs.engine

        class BrokerDownOnce(BackgroundSyncs):
            failed = False

            async def dispatch(self, job: Any) -> None:
                if not BrokerDownOnce.failed:
                    BrokerDownOnce.failed = True
                    raise ConnectionError("the broker is unreachable")
                await super().dispatch(job)

        await world.state.syncs.close()
        world.state.syncs = world.state.jobs = BrokerDownOnce(engine, busy_retry_seconds=0.01)
        reads = _reads(world)

        attempts = await _move_holdings(world, item_id)

        assert [a.status for a in attempts] == [503, 200]
        assert _iat(attempts[0]) != _iat(attempts[1])
        assert _reads(world) == reads + 1
        # One event, recorded under the first delivery's id: failed, then taken up again.
        [event] = await world.events(event_type=HOLDINGS, connection_id=connection_id)
        digest = hashlib.sha256(attempts[0].body).hexdigest()
        assert event.event_id == f"{digest}:{_iat(attempts[0])}"
        assert (event.result, event.error) == ("handled", None)


class TestTheWindow:
    async def test_the_same_body_within_the_retry_span_is_one_event_after_it_two(self, world):
        connection_id, item_id = await _chase(world)
        [first] = await _move_holdings(world, item_id)
        assert first.status == 200
        reads = _reads(world)

        world.api.clock.advance(RETRY_WINDOW - timedelta(minutes=5))
        again = await _move_holdings(world, item_id)
        assert {a.body for a in again} == {first.body}
        assert {a.status for a in again} == {409}
        assert _reads(world) == reads

        world.api.clock.advance(timedelta(minutes=10))
        [later] = await _move_holdings(world, item_id)
        assert (later.body, later.status) == (first.body, 200)
        assert _reads(world) == reads + 1
        events = await world.events(event_type=HOLDINGS, connection_id=connection_id)
        assert [e.result for e in events] == ["handled", "handled"]

    async def test_copies_racing_in_are_accepted_once(self, world):
        connection_id, item_id = await _chase(world)
        [first] = await _move_holdings(world, item_id)
        world.api.clock.advance(RETRY_WINDOW + timedelta(minutes=1))
        signer = world.plaid_app.state.sandbox.signer
        now = world.api.clock.now.timestamp()
        reads = _reads(world)

        async def send(seconds_ago: int) -> int:
            token = signer.sign(first.body, now - seconds_ago)
            async with world.api.client() as sender:
                answer = await sender.post(
                    "/webhooks/plaid",
                    content=first.body,
                    headers={"Content-Type": "application/json", "Plaid-Verification": token},
                )
            return answer.status_code

        statuses = await asyncio.gather(*(send(n) for n in range(6)))
        await world.settled()

        assert sorted(statuses) == [200] + [409] * 5
        assert _reads(world) == reads + 1
        events = await world.events(event_type=HOLDINGS, connection_id=connection_id)
        assert [e.result for e in events] == ["handled", "handled"]
