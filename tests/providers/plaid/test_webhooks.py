"""Plaid webhook verification against the Plaid sandbox: its deliveries, its keys, its refusals."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import UTC, datetime

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from brokerlink.domain.errors import TechnicalError
from brokerlink.errors import BrokerlinkError
from brokerlink.providers.plaid.errors import error_from_response
from brokerlink.providers.plaid.webhooks import (
    KEY_TTL,
    KNOWN_WEBHOOKS,
    PlaidWebhookVerifier,
    WebhookRefused,
)
from brokerlink.sandbox._faults import FAULT_HEADER
from brokerlink.sandbox.plaid import create_app
from tests.fixtures.openapi import SpecCheckingTransport, SpecValidator
from tests.sandbox.plaid.conftest import AUTH, CLIENT_ID, PLAID_SPEC, SECRET, FakeClock
from tests.sandbox.plaid.conftest import PlaidClient as SandboxApi

pytestmark = pytest.mark.asyncio

KEY_PATH = "/webhook_verification_key/get"


class SandboxKeys:
    """The key fetcher as the Plaid client provides it: /webhook_verification_key/get at the
    sandbox, Plaid's error answers mapped by the client's own error table."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.fetched: list[str] = []
        self.fault: str | None = None

    async def __call__(self, kid: str) -> dict:
        self.fetched.append(kid)
        headers = {FAULT_HEADER: self.fault} if self.fault else {}
        response = await self.http.post(KEY_PATH, json={**AUTH, "key_id": kid}, headers=headers)
        if response.status_code != 200:
            raise error_from_response(response, KEY_PATH)
        return response.json()["key"]


class SeenIds:
    """The store's 'seen event ids', as a set: what was accepted is added by the test."""

    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.asked: list[str] = []

    async def __call__(self, event_id: str) -> bool:
        self.asked.append(event_id)
        return event_id in self.accepted


class Env:
    def __init__(self, api, state, keys, clock, received, deliveries) -> None:
        self.api = api
        self.deliveries = deliveries  # the sandbox delivers in the background
        self.state = state
        self.keys = keys
        self.clock = clock
        self.received: list[httpx.Request] = received
        self.seen = SeenIds()
        self.verifier = self.new_verifier()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.now, UTC)

    def new_verifier(self) -> PlaidWebhookVerifier:
        return PlaidWebhookVerifier(self.keys, clock=self.now, seen=self.seen)

    async def holdings_webhook(self) -> httpx.Request:
        """Link an Item and refresh it: the sandbox delivers a signed HOLDINGS webhook."""
        before = len(self.received)
        item = await self.api.link_item(webhook="https://receiver.test/plaid")
        await self.api.ok("/investments/refresh", {"access_token": item["access_token"]})
        await self.deliveries.join()
        [request] = self.received[before:]
        return request

    async def refuse(self, body: bytes, headers, code: str) -> WebhookRefused:
        with pytest.raises(WebhookRefused) as caught:
            await self.verifier.verify(body, headers)
        assert caught.value.code == code, caught.value.message
        return caught.value


@pytest.fixture(scope="module")
def validator() -> SpecValidator:
    return SpecValidator(PLAID_SPEC, strip_prefixes=())


@pytest_asyncio.fixture
async def env(validator):
    received: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(200)

    clock = FakeClock()
    app = create_app(
        client_id=CLIENT_ID,
        secret=SECRET,
        clock=clock,
        product_ready_delay=0,
        webhook_transport=httpx.MockTransport(receiver),
    )
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), validator)
    async with httpx.AsyncClient(transport=transport, base_url="http://plaid.test") as http:
        yield Env(
            SandboxApi(http, transport),
            app.state.sandbox,
            SandboxKeys(http),
            clock,
            received,
            app.state.webhook_delivery.dispatcher,
        )


def _token(key, algorithm: str, claims: dict, **headers) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers or None)


def _claims(body: bytes, iat: float) -> dict:
    return {"iat": int(iat), "request_body_sha256": hashlib.sha256(body).hexdigest()}


class TestAccepted:
    async def test_a_sandbox_holdings_webhook_verifies(self, env):
        request = await env.holdings_webhook()
        event = await env.verifier.verify(request.content, request.headers)
        body = json.loads(request.content)
        assert (event.webhook_type, event.webhook_code) == ("HOLDINGS", "DEFAULT_UPDATE")
        assert event.item_id == body["item_id"]
        assert event.environment == "sandbox"
        assert event.signed_at == env.now()
        assert event.payload == body
        assert (
            event.event_id == f"{hashlib.sha256(request.content).hexdigest()}:{int(env.clock.now)}"
        )
        assert env.seen.asked == [event.event_id]

    async def test_an_item_error_carries_its_code(self, env):
        item = await env.api.link_item(webhook="https://receiver.test/plaid")
        await env.api.ok(
            "/sandbox/item/fire_webhook",
            {"access_token": item["access_token"], "webhook_type": "ITEM", "webhook_code": "ERROR"},
        )
        await env.deliveries.join()
        [request] = env.received
        event = await env.verifier.verify(request.content, request.headers)
        assert (event.webhook_type, event.webhook_code) == ("ITEM", "ERROR")
        assert event.error_code == "ITEM_LOGIN_REQUIRED"
        assert event.item_id == item["item_id"]

    async def test_the_header_name_is_case_insensitive(self, env):
        request = await env.holdings_webhook()
        token = request.headers["Plaid-Verification"]
        event = await env.verifier.verify(request.content, {"PLAID-VERIFICATION": token})
        assert event.webhook_type == "HOLDINGS"

    async def test_five_minutes_old_is_still_fresh(self, env):
        request = await env.holdings_webhook()
        env.clock.advance(300)
        assert (await env.verifier.verify(request.content, request.headers)).item_id


class TestKeyCache:
    async def test_a_second_webhook_with_the_same_kid_does_not_fetch(self, env):
        first, second = await env.holdings_webhook(), await env.holdings_webhook()
        await env.verifier.verify(first.content, first.headers)
        await env.verifier.verify(second.content, second.headers)
        assert env.keys.fetched == [env.state.signer.kid]

    async def test_concurrent_webhooks_with_a_new_kid_fetch_it_once(self, env):
        first, second = await env.holdings_webhook(), await env.holdings_webhook()
        events = await asyncio.gather(
            env.verifier.verify(first.content, first.headers),
            env.verifier.verify(second.content, second.headers),
        )
        assert len({e.item_id for e in events}) == 2
        assert env.keys.fetched == [env.state.signer.kid]

    async def test_concurrent_webhooks_with_an_unknown_kid_are_all_refused(self, env):
        request = await env.holdings_webhook()
        attacker = ec.generate_private_key(ec.SECP256R1())
        token = _token(attacker, "ES256", _claims(request.content, env.clock.now), kid="k-404")
        results = await asyncio.gather(
            *(env.verifier.verify(request.content, {"Plaid-Verification": token}) for _ in "ab"),
            return_exceptions=True,
        )
        assert [getattr(r, "code", r) for r in results] == ["bad_signature"] * 2
        assert env.keys.fetched == ["k-404"]

    async def test_a_cached_key_is_fetched_again_after_its_ttl(self, env):
        first = await env.holdings_webhook()
        await env.verifier.verify(first.content, first.headers)
        env.clock.advance(KEY_TTL.total_seconds())
        second = await env.holdings_webhook()
        await env.verifier.verify(second.content, second.headers)
        assert env.keys.fetched == [env.state.signer.kid] * 2

    async def test_a_key_expired_since_it_was_cached_is_refused_at_the_next_fetch(self, env):
        first = await env.holdings_webhook()
        await env.verifier.verify(first.content, first.headers)
        old_kid = env.state.signer.kid
        env.clock.advance(KEY_TTL.total_seconds())
        # A webhook signed by the old key just before Plaid rotated it.
        body = first.content
        token = env.state.signer.sign(body, env.clock.now)
        env.state.signer.rotate(env.clock.now)
        refused = await env.refuse(body, {"Plaid-Verification": token}, "bad_signature")
        assert "expired" in refused.message
        assert env.keys.fetched == [old_kid, old_kid]
        # The new key verifies from then on.
        fresh = await env.holdings_webhook()
        assert (await env.verifier.verify(fresh.content, fresh.headers)).item_id

    async def test_a_technical_failure_fetching_the_key_is_not_a_refusal(self, env):
        request = await env.holdings_webhook()
        env.keys.fault = "status=503"
        with pytest.raises(TechnicalError):
            await env.verifier.verify(request.content, request.headers)
        env.keys.fault = None
        assert (await env.verifier.verify(request.content, request.headers)).item_id
        assert len(env.keys.fetched) == 2


class TestRefused:
    async def test_no_header(self, env):
        request = await env.holdings_webhook()
        await env.refuse(request.content, {}, "bad_signature")
        assert env.keys.fetched == []

    async def test_a_header_that_is_no_jwt(self, env):
        request = await env.holdings_webhook()
        await env.refuse(request.content, {"Plaid-Verification": "not.a-jwt"}, "bad_signature")

    async def test_the_body_changed_by_one_byte(self, env):
        request = await env.holdings_webhook()
        body = bytearray(request.content)
        at = body.index(b"HOLDINGS")
        body[at] = ord("h")
        refused = await env.refuse(bytes(body), request.headers, "bad_signature")
        assert "request_body_sha256" in refused.message
        assert env.seen.asked == []

    async def test_forged_claims_under_the_real_signature(self, env):
        request = await env.holdings_webhook()
        header_b64, _, sig_b64 = request.headers["Plaid-Verification"].split(".")
        other = b'{"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED"}'
        claims = jwt.utils.base64url_encode(json.dumps(_claims(other, env.clock.now)).encode())
        token = f"{header_b64}.{claims.decode()}.{sig_b64}"
        await env.refuse(other, {"Plaid-Verification": token}, "bad_signature")

    async def test_signed_by_another_key_under_the_sandboxs_kid(self, env):
        body = b'{"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED", "item_id": "x"}'
        attacker = ec.generate_private_key(ec.SECP256R1())
        token = _token(attacker, "ES256", _claims(body, env.clock.now), kid=env.state.signer.kid)
        await env.refuse(body, {"Plaid-Verification": token}, "bad_signature")

    async def test_alg_none(self, env):
        body = b'{"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE"}'
        token = _token(None, "none", _claims(body, env.clock.now), kid=env.state.signer.kid)
        refused = await env.refuse(body, {"Plaid-Verification": token}, "bad_signature")
        assert "'none'" in refused.message
        assert env.keys.fetched == []

    async def test_hs256_keyed_with_the_public_key(self, env):
        # The classic confusion: the public key's bytes used as an HMAC secret.
        body = b'{"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE"}'
        public_x = env.state.signer.jwk(env.state.signer.kid)["x"]
        token = _token(public_x, "HS256", _claims(body, env.clock.now), kid=env.state.signer.kid)
        await env.refuse(body, {"Plaid-Verification": token}, "bad_signature")
        assert env.keys.fetched == []

    async def test_rs256(self, env):
        body = b'{"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE"}'
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        token = _token(rsa_key, "RS256", _claims(body, env.clock.now), kid=env.state.signer.kid)
        await env.refuse(body, {"Plaid-Verification": token}, "bad_signature")
        assert env.keys.fetched == []

    async def test_es256_without_kid(self, env):
        request = await env.holdings_webhook()
        attacker = ec.generate_private_key(ec.SECP256R1())
        token = _token(attacker, "ES256", _claims(request.content, env.clock.now))
        refused = await env.refuse(request.content, {"Plaid-Verification": token}, "bad_signature")
        assert "kid" in refused.message
        assert env.keys.fetched == []

    async def test_an_unknown_kid(self, env):
        request = await env.holdings_webhook()
        attacker = ec.generate_private_key(ec.SECP256R1())
        kid = str(uuid.uuid4())
        token = _token(attacker, "ES256", _claims(request.content, env.clock.now), kid=kid)
        await env.refuse(request.content, {"Plaid-Verification": token}, "bad_signature")
        assert env.keys.fetched == [kid]  # the sandbox answered INVALID_WEBHOOK_VERIFICATION_KEY_ID

    async def test_an_expired_key(self, env):
        request = await env.holdings_webhook()
        env.state.signer.rotate(env.clock.now)
        refused = await env.refuse(request.content, request.headers, "bad_signature")
        assert "expired" in refused.message

    async def test_an_iat_older_than_five_minutes(self, env):
        request = await env.holdings_webhook()
        env.clock.advance(301)
        await env.refuse(request.content, request.headers, "stale")
        assert env.seen.asked == []

    async def test_an_iat_in_the_future(self, env):
        body = b'{"webhook_type": "HOLDINGS", "webhook_code": "DEFAULT_UPDATE"}'
        token = env.state.signer.sign(body, env.clock.now + 60)
        await env.refuse(body, {"Plaid-Verification": token}, "stale")

    async def test_a_replay(self, env):
        request = await env.holdings_webhook()
        event = await env.verifier.verify(request.content, request.headers)
        env.seen.accepted.add(event.event_id)
        env.clock.advance(10)
        refused = await env.refuse(request.content, request.headers, "replayed")
        assert refused.status_code == 409

    @pytest.mark.parametrize(
        "body",
        [
            b"{not json",
            b"[1, 2]",
            b'{"webhook_type": "HOLDINGS"}',
            b'{"webhook_type": "ITEM", "webhook_code": "ERROR", "error": "bad"}',
            b'{"webhook_type": "ITEM", "webhook_type": "HOLDINGS", "webhook_code": "ERROR"}',
        ],
    )
    async def test_a_signed_body_that_is_no_plaid_webhook(self, env, body):
        token = env.state.signer.sign(body, env.clock.now)
        refused = await env.refuse(body, {"Plaid-Verification": token}, "malformed")
        assert refused.status_code == 400
        assert env.seen.asked == []


class TestRetries:
    async def test_a_retry_is_a_new_signature_over_the_same_body(self, env):
        request = await env.holdings_webhook()
        first = await env.verifier.verify(request.content, request.headers)
        env.seen.accepted.add(first.event_id)
        env.clock.advance(30)  # Plaid's first retry
        token = env.state.signer.sign(request.content, env.clock.now)
        retry = await env.verifier.verify(request.content, {"Plaid-Verification": token})
        # The verifier cannot tell: the body's hash, the same in both, is how the store can.
        assert retry.event_id != first.event_id
        assert retry.body_sha256 == first.body_sha256
        assert retry.body_sha256 == hashlib.sha256(request.content).hexdigest()
        assert (retry.signed_at - first.signed_at).total_seconds() == 30


class TestUnknownWebhooks:
    @pytest.mark.parametrize(
        ("webhook_type", "webhook_code", "known"),
        [
            ("HOLDINGS", "DEFAULT_UPDATE", True),
            ("ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED", True),
            ("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE", True),
            ("ITEM", "SOMETHING_NEW", False),
            ("HOLDINGS", "HISTORICAL_UPDATE", False),
            ("WALLET", "WALLET_TRANSACTION_STATUS_UPDATE", False),
        ],
    )
    async def test_are_verified_and_told_apart(self, env, webhook_type, webhook_code, known):
        body = json.dumps(
            {"webhook_type": webhook_type, "webhook_code": webhook_code, "item_id": "item-1"}
        ).encode()
        token = env.state.signer.sign(body, env.clock.now)
        event = await env.verifier.verify(body, {"Plaid-Verification": token})
        assert event.known is known
        assert event.known is (webhook_code in KNOWN_WEBHOOKS.get(webhook_type, ()))
        assert event.item_id == ("item-1" if known else None)

    async def test_an_unknown_ones_fields_are_not_read(self, env):
        body = (
            b'{"webhook_type": "ITEM", "webhook_code": "SOMETHING_NEW", "item_id": 7, '
            b'"error": "a new shape"}'
        )
        token = env.state.signer.sign(body, env.clock.now)
        event = await env.verifier.verify(body, {"Plaid-Verification": token})
        assert (event.webhook_code, event.known, event.item_id) == ("SOMETHING_NEW", False, None)
        assert event.payload["item_id"] == 7


async def test_refusals_are_typed_4xx_app_errors(env):
    request = await env.holdings_webhook()
    refused = await env.refuse(request.content, {}, "bad_signature")
    assert isinstance(refused, BrokerlinkError)
    assert refused.status_code == 401
