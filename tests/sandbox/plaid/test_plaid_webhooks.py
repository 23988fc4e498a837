"""Webhook delivery: signed with the Plaid-Verification JWT, verifiable with the served key."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import httpx
import pytest
import pytest_asyncio
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from brokerlink.sandbox.plaid import create_app
from tests.fixtures.openapi import SpecCheckingTransport
from tests.sandbox.plaid.conftest import CLIENT_ID, SECRET, PlaidClient
from tests.sandbox.webhook_receiver import running

pytestmark = pytest.mark.asyncio


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest_asyncio.fixture
async def delivering(clock, validator):
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    app = create_app(
        client_id=CLIENT_ID,
        secret=SECRET,
        clock=clock,
        product_ready_delay=0,
        webhook_transport=httpx.MockTransport(receiver),
    )
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), validator)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://plaid.test") as http,
    ):
        yield PlaidClient(http, transport), received, app.state.webhook_delivery.dispatcher


async def _verify(api: PlaidClient, request: httpx.Request) -> dict:
    token = request.headers["Plaid-Verification"]
    header_b64, claims_b64, sig_b64 = token.split(".")
    header = json.loads(_unb64(header_b64))
    assert header["alg"] == "ES256"
    key = (await api.ok("/webhook_verification_key/get", {"key_id": header["kid"]}))["key"]
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_unb64(key["x"]), "big"),
        int.from_bytes(_unb64(key["y"]), "big"),
        ec.SECP256R1(),
    ).public_key()
    raw_sig = _unb64(sig_b64)
    der = encode_dss_signature(
        int.from_bytes(raw_sig[:32], "big"), int.from_bytes(raw_sig[32:], "big")
    )
    public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(_unb64(claims_b64))
    assert claims["request_body_sha256"] == hashlib.sha256(request.content).hexdigest()
    return claims


async def test_refresh_delivers_a_signed_holdings_webhook(delivering, clock):
    api, received, dispatcher = delivering
    item = await api.link_item(webhook="https://receiver.test/plaid")
    await api.ok("/investments/refresh", {"access_token": item["access_token"]})
    await dispatcher.join()
    [request] = received
    assert str(request.url) == "https://receiver.test/plaid"
    body = json.loads(request.content)
    assert (body["webhook_type"], body["webhook_code"]) == ("HOLDINGS", "DEFAULT_UPDATE")
    assert body["item_id"] == item["item_id"]
    claims = await _verify(api, request)
    assert claims["iat"] == int(clock.now)


async def test_tampered_body_fails_verification(delivering):
    api, received, dispatcher = delivering
    item = await api.link_item(webhook="https://receiver.test/plaid")
    await api.ok(
        "/sandbox/item/fire_webhook",
        {"access_token": item["access_token"], "webhook_type": "ITEM", "webhook_code": "ERROR"},
    )
    await dispatcher.join()
    [request] = received
    header_b64, claims_b64, sig_b64 = request.headers["Plaid-Verification"].split(".")
    forged_claims = json.loads(_unb64(claims_b64)) | {"iat": 1}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    tampered = httpx.Request(
        "POST",
        request.url,
        content=request.content,
        headers={"Plaid-Verification": f"{header_b64}.{forged}.{sig_b64}"},
    )
    with pytest.raises(InvalidSignature):
        await _verify(api, tampered)


async def test_unknown_key_id(api):
    err = await api.error("/webhook_verification_key/get", {"key_id": "nope"})
    assert err["error_code"] == "INVALID_WEBHOOK_VERIFICATION_KEY_ID"


async def test_dead_receiver_does_not_break_the_request(clock, validator):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    app = create_app(
        client_id=CLIENT_ID,
        secret=SECRET,
        clock=clock,
        product_ready_delay=0,
        webhook_transport=httpx.MockTransport(refuse),
    )
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), validator)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://plaid.test") as http,
    ):
        api = PlaidClient(http, transport)
        item = await api.link_item(webhook="https://receiver.test/plaid")
        await api.ok("/investments/refresh", {"access_token": item["access_token"]})
        [delivery] = app.state.webhook_delivery.dispatcher.deliveries
        while not (delivery.attempts and delivery.attempts[0].error):
            await asyncio.sleep(0.01)
        assert delivery.attempts[0].error == "ConnectError"
        assert delivery.state == "pending"  # to be retried in 30 s, or cancelled at shutdown
    assert delivery.state == "cancelled"


async def test_a_rotated_key_stays_served_with_expired_at(api, state, clock):
    old_kid = state.signer.kid
    clock.advance(3600)
    new_kid = state.signer.rotate(clock.now)
    assert new_kid != old_kid == (await _key(api, old_kid))["kid"]
    assert (await _key(api, old_kid))["expired_at"] == int(clock.now)
    assert (await _key(api, new_kid))["expired_at"] is None
    # What is signed from now on carries the new kid and verifies with the new key.
    body = b'{\n  "webhook_type": "HOLDINGS"\n}'
    token = state.signer.sign(body, clock.now)
    request = httpx.Request(
        "POST", "https://receiver.test/plaid", content=body, headers={"Plaid-Verification": token}
    )
    assert json.loads(_unb64(token.split(".")[0]))["kid"] == new_kid
    assert (await _verify(api, request))["iat"] == int(clock.now)


async def _key(api: PlaidClient, kid: str) -> dict:
    return (await api.ok("/webhook_verification_key/get", {"key_id": kid}))["key"]
