"""A forged, altered, stale or replayed webhook is refused, recorded as refused, and changes
nothing; the same event delivered again after the app failed is handled once."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from brokerlink.sync.tasks import BackgroundSyncs
from brokerlink.webhooks.service import refused_event_id
from tests.fixtures.api import assert_error
from tests.webhooks.world import Delivery, World

pytestmark = pytest.mark.asyncio

SIGNATURES = {"snaptrade": "signature", "plaid": "plaid-verification"}


async def _a_holdings_delivery(world: World, provider: str) -> Delivery:
    """Link an institution, move its holdings at the sandbox, and return the holdings webhook
    the app received and handled (body and headers as sent)."""
    user = await world.api.user()
    world.receiver.open.clear()
    await world.api.connect(user, "Charles Schwab" if provider == "snaptrade" else "Chase")
    world.receiver.open.set()
    await world.settled()
    connection_id = max(c["id"] for c in (await user.get("/api/connections")).json())
    connection = await world.connection(connection_id)
    if provider == "snaptrade":
        account = (await world.accounts(connection_id))[0]
        path = f"/sandbox/accounts/{account.provider_account_id}/move-holdings"
        moved = await world.sandbox(provider).post(path, json={"units": "1"})
    else:
        path = f"/sandbox-admin/items/{connection.provider_connection_id}/move-holdings"
        moved = await world.sandbox(provider).post(path)
    assert moved.status_code == 200, moved.text
    await world.settled()
    delivered = world.receiver.of(provider)[-1]
    assert delivered.status == 200
    assert b"HOLDINGS" in delivered.body
    return delivered


async def _send(world: World, provider: str, body: bytes, signature: str) -> Any:
    async with world.api.client() as sender:
        return await sender.post(
            f"/webhooks/{provider}",
            content=body,
            headers={"Content-Type": "application/json", SIGNATURES[provider]: signature},
        )


def _forged(provider: str, delivered: Delivery) -> str:
    """A signature made without the provider's key, in the provider's own format."""
    if provider == "snaptrade":
        return base64.b64encode(hashlib.sha256(b"not the consumer key").digest()).decode()
    kid = jwt.get_unverified_header(delivered.headers[SIGNATURES[provider]])["kid"]
    signed = jwt.decode(
        delivered.headers[SIGNATURES[provider]], options={"verify_signature": False}
    )
    claims = {
        "iat": signed["iat"],
        "request_body_sha256": hashlib.sha256(delivered.body).hexdigest(),
    }
    return jwt.encode(
        claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid}
    )


def _one_byte_changed(body: bytes) -> bytes:
    """The body with one digit changed (still JSON, so only the signature can tell)."""
    text = body.decode()
    at = max(i for i, c in enumerate(text) if c.isdigit())
    digit = "1" if text[at] != "1" else "2"
    return (text[:at] + digit + text[at + 1 :]).encode()


@pytest.mark.parametrize("provider", ["snaptrade", "plaid"])
@pytest.mark.parametrize("case", ["forged", "one_byte", "stale", "replayed"])
async def test_refused_recorded_and_nothing_changes(world, provider, case):
    delivered = await _a_holdings_delivery(world, provider)
    signature = delivered.headers[SIGNATURES[provider]]
    body = delivered.body
    status, code = {
        "forged": (401, "bad_signature"),
        "one_byte": (401, "bad_signature"),
        "stale": (401, "stale"),
        "replayed": (409, "replayed"),
    }[case]
    if case == "forged":
        signature = _forged(provider, delivered)
    elif case == "one_byte":
        body = _one_byte_changed(body)
        assert body != delivered.body
        assert len(body) == len(delivered.body)
        json.loads(body)
    elif case == "stale":
        world.api.clock.advance(timedelta(minutes=6))
    before = await world.store()
    calls = world.api.provider_calls
    events = len(await world.events())

    answer = await _send(world, provider, body, signature)
    await world.settled()

    assert_error(answer, status, code)
    assert await world.store() == before
    assert world.api.provider_calls == calls
    recorded = await world.events()
    assert len(recorded) == events + 1
    refused = recorded[-1]
    assert (refused.event_id, refused.result) == (refused_event_id(body), f"refused:{code}")
    assert (refused.event_type, refused.connection_id, refused.account_id) == (
        "unverified",
        None,
        None,
    )


class TestDeliveredAgain:
    async def test_a_retry_after_the_app_failed_is_handled_once(self, world):
        delivered = await _a_holdings_delivery(world, "snaptrade")
        event_id = json.loads(delivered.body)["webhookId"]
        accounts = json.loads(delivered.body)["accountId"]
        engine = world.state.syncs.engine

        class BrokerDownOnce(BackgroundSyncs):
            failed = False

            async def dispatch(self, job):
                if not BrokerDownOnce.failed:
                    BrokerDownOnce.failed = True
                    raise ConnectionError("the broker is unreachable")
                await super().dispatch(job)

        await world.state.syncs.close()
        queue = BrokerDownOnce(engine, busy_retry_seconds=0.01)
        world.state.syncs = world.state.jobs = queue
        listings = world.api.stack.snaptrade_wire.paths["/accounts"]
        seen = len(world.receiver.of("snaptrade"))
        moved = await world.sandbox("snaptrade").post(
            f"/sandbox/accounts/{accounts}/move-holdings", json={"units": "1"}
        )
        assert moved.status_code == 200
        await world.settled()

        again = world.receiver.of("snaptrade")[seen:]
        assert [d.status for d in again] == [503, 200]
        assert json.loads(again[0].body)["webhookId"] == json.loads(again[1].body)["webhookId"]
        assert json.loads(again[0].body)["webhookId"] != event_id
        new = await world.events(event_id=json.loads(again[0].body)["webhookId"])
        assert [e.result for e in new] == ["handled"]
        # One follow-up sync: one listing of the user's accounts more.
        assert world.api.stack.snaptrade_wire.paths["/accounts"] == listings + 1
