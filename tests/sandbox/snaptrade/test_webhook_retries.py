"""SnapTrade's delivery: 200/201/202/204 deliver; anything else is retried after 30, 60 and
120 minutes (scaled down here), then given up; deliveries run beside the requests and stop at
shutdown."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from brokerlink.sandbox.snaptrade import create_app
from tests.sandbox.snaptrade.conftest import CLIENT_ID, CONSUMER_KEY, SignedClient
from tests.sandbox.webhook_receiver import Receiver, running

pytestmark = pytest.mark.asyncio

HOOK = "https://receiver.test/snaptrade"
SCALE = 0.0005  # 30 minutes -> 0.9 s


def _app(clock, receiver: Receiver, scale: float = SCALE):
    return create_app(
        client_id=CLIENT_ID,
        consumer_key=CONSUMER_KEY,
        clock=clock,
        webhook_url=HOOK,
        webhook_transport=receiver.transport,
        webhook_retry_scale=scale,
    )


async def _register(http: httpx.AsyncClient, clock, user_id: str = "alice") -> None:
    r = await SignedClient(http, clock).post(
        "/snapTrade/registerUser", json_body={"userId": user_id}
    )
    assert r.status_code == 200, r.text


async def _deliveries(http: httpx.AsyncClient) -> list[dict]:
    r = await http.get("/sandbox/webhooks")
    assert r.status_code == 200
    return r.json()


async def test_500_twice_then_200_is_three_attempts_on_the_backoff(clock):
    receiver = Receiver(500, 500, then=200)
    app = _app(clock, receiver)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        await app.state.webhooks.dispatcher.join()
        [delivery] = await _deliveries(http)
    assert delivery["event"] == "USER_REGISTERED"
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["waited"] for a in delivery["attempts"]] == [0.0, 1800 * SCALE, 3600 * SCALE]
    first, second, third = delivery["offsets"]
    assert second - first >= 1800 * SCALE
    assert third - second >= 3600 * SCALE
    # The same webhook each time: same bytes, same signature, same webhookId.
    assert len({r.content for r in receiver.requests}) == 1
    assert len({r.headers["Signature"] for r in receiver.requests}) == 1


async def test_a_receiver_that_always_fails_gets_one_plus_three_attempts(clock):
    receiver = Receiver(then=503)
    app = _app(clock, receiver, scale=0.0001)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        dispatcher = app.state.webhooks.dispatcher
        await dispatcher.join()
        assert dispatcher.in_flight == 0
        [delivery] = await _deliveries(http)
    assert delivery["state"] == "failed"
    assert [a["status"] for a in delivery["attempts"]] == [503] * 4
    assert [a["waited"] for a in delivery["attempts"]] == [
        d * 0.0001 for d in (0, 1800, 3600, 7200)
    ]
    assert len(receiver.requests) == 4


@pytest.mark.parametrize("status", [200, 201, 202, 204])
async def test_each_accepted_status_delivers_at_once(clock, status):
    receiver = Receiver(then=status)
    app = _app(clock, receiver)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        await app.state.webhooks.dispatcher.join()
        [delivery] = await _deliveries(http)
    assert [a["status"] for a in delivery["attempts"]] == [status]
    assert delivery["state"] == "delivered"


@pytest.mark.parametrize("status", [203, 301, 400, 410])
async def test_other_statuses_are_retried(clock, status):
    receiver = Receiver(status, then=200)
    app = _app(clock, receiver, scale=0.0001)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        await app.state.webhooks.dispatcher.join()
        [delivery] = await _deliveries(http)
    assert [a["status"] for a in delivery["attempts"]] == [status, 200]


async def test_a_dead_receiver_is_an_undelivered_attempt(clock):
    calls = 0

    def refuse(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200)

    app = create_app(
        client_id=CLIENT_ID,
        consumer_key=CONSUMER_KEY,
        clock=clock,
        webhook_url=HOOK,
        webhook_transport=httpx.MockTransport(refuse),
        webhook_retry_scale=0.0001,
    )
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        await app.state.webhooks.dispatcher.join()
        [delivery] = await _deliveries(http)
    assert [(a["status"], a["error"]) for a in delivery["attempts"]] == [
        (None, "ConnectError"),
        (200, None),
    ]


async def test_the_request_never_waits_for_the_receiver(clock):
    receiver = Receiver()
    receiver.hold = asyncio.Event()
    app = _app(clock, receiver)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)  # answered while the receiver still holds the webhook
        await asyncio.sleep(0)
        [pending] = await _deliveries(http)
        assert pending["state"] == "pending"
        assert len(receiver.requests) == 1
        receiver.hold.set()
        await app.state.webhooks.dispatcher.join()
        [done] = await _deliveries(http)
    assert done["state"] == "delivered"


async def test_shutdown_cancels_deliveries_in_flight(clock):
    receiver = Receiver(then=500)
    app = _app(clock, receiver, scale=1.0)  # the first retry would come in 30 minutes
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        while not receiver.requests:
            await asyncio.sleep(0.01)
        dispatcher = app.state.webhooks.dispatcher
        assert dispatcher.in_flight == 1
    assert dispatcher.in_flight == 0
    [delivery] = dispatcher.as_json()
    assert delivery["state"] == "cancelled"
    assert len(delivery["attempts"]) == 1
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("webhook ")]
    assert leftover == []


async def test_finished_deliveries_can_be_forgotten(clock):
    receiver = Receiver()
    app = _app(clock, receiver)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://sb.test"
        ) as http,
    ):
        await _register(http, clock)
        await app.state.webhooks.dispatcher.join()
        assert len(await _deliveries(http)) == 1
        assert (await http.delete("/sandbox/webhooks")).json() == []
        assert await _deliveries(http) == []
