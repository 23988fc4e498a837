"""The Plaid sandbox delivers its Items' webhooks when their state changes, signed so that PyJWT
verifies them with the key from /webhook_verification_key/get, and retried on Plaid's schedule
(30 s, then each wait 4 times the last, within 24 hours; scaled down here)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from contextlib import asynccontextmanager

import httpx
import jwt
import pytest
import pytest_asyncio

from brokerlink.sandbox.plaid import create_app
from brokerlink.sandbox.plaid.state import timestamp
from tests.fixtures.openapi import SpecCheckingTransport
from tests.sandbox.plaid.conftest import CLIENT_ID, SECRET, PlaidClient, validate_webhook
from tests.sandbox.webhook_receiver import Receiver, running

pytestmark = pytest.mark.asyncio

HOOK = "https://receiver.test/plaid"
DAY = 86400.0
LINK = {
    "client_name": "brokerlink",
    "language": "en",
    "country_codes": ["US"],
    "user": {"client_user_id": "user-1"},
}


class Hooked:
    def __init__(self, app, api: PlaidClient, receiver: Receiver, clock, validator) -> None:
        self.app = app
        self.api = api
        self.receiver = receiver
        self.clock = clock
        self.validator = validator
        self.seen = 0

    @property
    def dispatcher(self):
        return self.app.state.webhook_delivery.dispatcher

    async def verify(self, request: httpx.Request) -> dict:
        """Plaid's documented check, with PyJWT: ES256, the key by kid, iat, the body's hash."""
        token = request.headers["Plaid-Verification"]
        header = jwt.get_unverified_header(token)
        assert header["alg"] == "ES256"
        jwk = (await self.api.ok("/webhook_verification_key/get", {"key_id": header["kid"]}))["key"]
        # iat is checked against the sandbox's clock, not the machine's.
        key = jwt.PyJWK(jwk).key
        claims = jwt.decode(token, key, algorithms=["ES256"], options={"verify_iat": False})
        assert 0 <= self.clock.now - claims["iat"] <= 300
        assert claims["request_body_sha256"] == hashlib.sha256(request.content).hexdigest()
        return claims

    async def events(self) -> list[dict]:
        """The bodies delivered since the last call, each verified and checked against the spec."""
        await self.dispatcher.join()
        fresh = self.receiver.requests[self.seen :]
        self.seen = len(self.receiver.requests)
        bodies = []
        for request in fresh:
            assert str(request.url) == HOOK
            await self.verify(request)
            body = json.loads(request.content)
            validate_webhook(self.validator, body)
            bodies.append(body)
        return bodies


def _app(clock, receiver: Receiver, **options):
    return create_app(
        client_id=CLIENT_ID,
        secret=SECRET,
        clock=clock,
        product_ready_delay=0,
        webhook_transport=receiver.transport,
        **{"webhook_retry_scale": 0.001, **options},
    )


@asynccontextmanager
async def _hooked(app, receiver, clock, validator):
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), validator)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://plaid.test") as http,
    ):
        yield Hooked(app, PlaidClient(http, transport), receiver, clock, validator)


@pytest_asyncio.fixture
async def hooked(clock, validator):
    receiver = Receiver()
    async with _hooked(_app(clock, receiver), receiver, clock, validator) as env:
        yield env


def _codes(bodies: list[dict]) -> list[tuple[str, str]]:
    return [(b["webhook_type"], b["webhook_code"]) for b in bodies]


async def test_a_refresh_sends_holdings_default_update(hooked):
    item = await hooked.api.link_item(webhook=HOOK)
    await hooked.api.ok("/investments/refresh", {"access_token": item["access_token"]})
    [body] = await hooked.events()
    assert _codes([body]) == [("HOLDINGS", "DEFAULT_UPDATE")]
    assert body["item_id"] == item["item_id"]
    assert body["environment"] == "sandbox"


async def test_moving_holdings_moves_prices_and_says_so(hooked):
    item = await hooked.api.link_item(webhook=HOOK)
    access = {"access_token": item["access_token"]}

    async def prices() -> dict[str, float]:
        holdings = (await hooked.api.ok("/investments/holdings/get", access))["holdings"]
        return {h["security_id"]: h["institution_price"] for h in holdings}

    before = await prices()
    r = await hooked.api.http.post(f"/sandbox-admin/items/{item['item_id']}/move-holdings")
    assert r.status_code == 200
    after = await prices()
    assert after != before
    [body] = await hooked.events()
    assert (_codes([body]), body["item_id"]) == ([("HOLDINGS", "DEFAULT_UPDATE")], item["item_id"])
    missing = await hooked.api.http.post("/sandbox-admin/items/nope/move-holdings")
    assert missing.status_code == 404


async def test_a_reset_login_sends_item_error_once(hooked):
    item = await hooked.api.link_item(webhook=HOOK)
    access = {"access_token": item["access_token"]}
    await hooked.api.ok("/sandbox/item/reset_login", access)
    [body] = await hooked.events()
    assert _codes([body]) == [("ITEM", "ERROR")]
    assert body["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
    await hooked.api.ok("/sandbox/item/reset_login", access)
    assert await hooked.events() == []  # already needing login: nothing changed


async def test_a_login_is_announced_a_week_before_it_expires_then_expires(hooked, clock):
    item = await hooked.api.link_item(webhook=HOOK)
    access = {"access_token": item["access_token"]}
    expires = clock.now + 30 * DAY
    clock.advance(22 * DAY)
    await hooked.api.ok("/item/get", access)
    assert await hooked.events() == []
    clock.advance(1 * DAY)
    await hooked.api.ok("/institutions/search", {"query": "x", "country_codes": ["US"]})
    [notice] = await hooked.events()
    assert _codes([notice]) == [("ITEM", "PENDING_EXPIRATION")]
    assert notice["consent_expiration_time"] == timestamp(expires)
    clock.advance(7 * DAY)
    await hooked.api.ok("/institutions/search", {"query": "x", "country_codes": ["US"]})
    [error] = await hooked.events()
    assert _codes([error]) == [("ITEM", "ERROR")]
    assert error["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
    assert (await hooked.api.ok("/item/get", access))["item"]["error"] is not None
    assert await hooked.events() == []


async def test_the_login_expiry_control(hooked):
    item = await hooked.api.link_item(webhook=HOOK)
    path = f"/sandbox-admin/items/{item['item_id']}/login-expiry"
    r = await hooked.api.http.post(path, json={"in_seconds": 3600})
    assert r.status_code == 200
    assert _codes(await hooked.events()) == [("ITEM", "PENDING_EXPIRATION")]
    r = await hooked.api.http.post(path, json={"in_seconds": 0})
    assert r.json()["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
    assert _codes(await hooked.events()) == [("ITEM", "ERROR")]
    assert (await hooked.api.http.post(path, json={"in_seconds": "soon"})).status_code == 422
    assert (await hooked.api.http.post(path, json={})).status_code == 422
    unknown = await hooked.api.http.post(
        "/sandbox-admin/items/x/login-expiry", json={"in_seconds": 1}
    )
    assert unknown.status_code == 404


async def test_update_mode_sends_login_repaired(hooked):
    item = await hooked.api.link_item(webhook=HOOK)
    await hooked.api.ok("/sandbox/item/reset_login", {"access_token": item["access_token"]})
    created = await hooked.api.ok(
        "/link/token/create", {**LINK, "access_token": item["access_token"], "hosted_link": {}}
    )
    page = await hooked.api.http.get(created["hosted_link_url"])
    assert re.search(r"name='institution_id'", page.text)
    done = await hooked.api.http.post(
        created["hosted_link_url"], data={"username": "user_good", "password": "pass_good"}
    )
    assert done.status_code == 200
    assert _codes(await hooked.events()) == [("ITEM", "ERROR"), ("ITEM", "LOGIN_REPAIRED")]


async def test_fired_webhooks_are_delivered_too(hooked):
    item = await hooked.api.link_item(webhook=HOOK)
    await hooked.api.ok(
        "/sandbox/item/fire_webhook",
        {"access_token": item["access_token"], "webhook_code": "NEW_ACCOUNTS_AVAILABLE"},
    )
    assert _codes(await hooked.events()) == [("ITEM", "NEW_ACCOUNTS_AVAILABLE")]


async def test_nothing_is_sent_without_a_url(hooked):
    item = await hooked.api.link_item()
    await hooked.api.ok("/investments/refresh", {"access_token": item["access_token"]})
    await hooked.api.ok("/sandbox/item/reset_login", {"access_token": item["access_token"]})
    assert await hooked.events() == []
    assert (await hooked.api.http.get("/sandbox-admin/webhook-deliveries")).json() == []


async def _one_delivery(clock, validator, receiver: Receiver, **options) -> tuple[dict, Hooked]:
    async with _hooked(_app(clock, receiver, **options), receiver, clock, validator) as env:
        item = await env.api.link_item(webhook=HOOK)
        await env.api.ok("/investments/refresh", {"access_token": item["access_token"]})
        await env.dispatcher.join()
        [delivery] = (await env.api.http.get("/sandbox-admin/webhook-deliveries")).json()
        for request in receiver.requests:
            await env.verify(request)  # every attempt is signed afresh, and verifies
    return delivery, env


async def test_500_twice_then_200_is_three_attempts_on_plaids_backoff(clock, validator):
    scale = 0.001
    receiver = Receiver(500, 500, then=200)
    delivery, _ = await _one_delivery(clock, validator, receiver, webhook_retry_scale=scale)
    assert delivery["event"] == "HOLDINGS DEFAULT_UPDATE"
    assert delivery["state"] == "delivered"
    assert [a["status"] for a in delivery["attempts"]] == [500, 500, 200]
    assert [a["waited"] for a in delivery["attempts"]] == [0.0, 30 * scale, 120 * scale]
    first, second, third = delivery["offsets"]
    assert second - first >= 30 * scale
    assert third - second >= 120 * scale
    assert len({r.content for r in receiver.requests}) == 1
    assert len({r.headers["Plaid-Verification"] for r in receiver.requests}) == 3


async def test_a_receiver_that_always_fails_is_tried_for_24_hours(clock, validator):
    scale = 0.00002
    receiver = Receiver(then=500)
    delivery, env = await _one_delivery(clock, validator, receiver, webhook_retry_scale=scale)
    waits = [0, 30, 120, 480, 1920, 7680, 30720]
    assert [a["waited"] for a in delivery["attempts"]] == [w * scale for w in waits]
    assert sum(waits) <= DAY < sum(waits) + waits[-1] * 4
    assert delivery["state"] == "failed"
    assert len(receiver.requests) == 7
    assert env.dispatcher.in_flight == 0


@pytest.mark.parametrize("status", [201, 204, 302, 404])
async def test_only_200_delivers(clock, validator, status):
    receiver = Receiver(status, then=200)
    delivery, _ = await _one_delivery(clock, validator, receiver, webhook_retry_scale=0.0001)
    assert [a["status"] for a in delivery["attempts"]] == [status, 200]


async def test_no_answer_within_the_timeout_is_retried(clock, validator):
    receiver = Receiver()
    receiver.hold = asyncio.Event()  # never released: every attempt times out
    delivery, _ = await _one_delivery(
        clock, validator, receiver, webhook_retry_scale=0.00001, webhook_timeout=0.02
    )
    assert [a["error"] for a in delivery["attempts"]] == ["timeout"] * 7
    assert delivery["state"] == "failed"
