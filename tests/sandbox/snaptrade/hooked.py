"""The `hooked` fixture: a SnapTrade sandbox whose webhooks reach an in-process receiver, each
delivery verified against the HMAC of research notes §1.5 computed here (registered for every
test of this folder by conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import datetime

import httpx
import pytest_asyncio

from brokerlink.sandbox.snaptrade import create_app
from tests.fixtures.openapi import SpecCheckingTransport, SpecValidator
from tests.sandbox.snaptrade.conftest import (
    CLIENT_ID,
    CONSUMER_KEY,
    FakeClock,
    SandboxUser,
    SignedClient,
)
from tests.sandbox.webhook_receiver import Receiver, running

__all__ = ["HOOK", "Hooked", "hooked", "section_1_5"]

HOOK = "https://receiver.test/snaptrade"


def section_1_5(key: str, body: bytes) -> str:
    canonical = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True)
    return base64.b64encode(
        hmac.new(key.encode(), canonical.encode(), hashlib.sha256).digest()
    ).decode()


class Hooked:
    def __init__(self, app, api: SignedClient, receiver: Receiver) -> None:
        self.app = app
        self.api = api
        self.receiver = receiver
        self.seen = 0

    async def events(self) -> list[dict]:
        """The payloads delivered since the last call, each verified (§1.5) on its way."""
        await self.app.state.webhooks.dispatcher.join()
        fresh = self.receiver.requests[self.seen :]
        self.seen = len(self.receiver.requests)
        payloads = []
        for request in fresh:
            assert str(request.url) == HOOK
            assert request.headers["Signature"] == section_1_5(CONSUMER_KEY, request.content)
            assert request.headers["Signature"] != section_1_5("another-key", request.content)
            payload = json.loads(request.content)
            assert payload["clientId"] == CLIENT_ID
            assert datetime.fromisoformat(payload["eventTimestamp"]).tzinfo is not None
            assert "webhookSecret" not in payload
            payloads.append(payload)
        return payloads

    async def user(self, user_id: str = "alice") -> SandboxUser:
        r = await self.api.post("/snapTrade/registerUser", json_body={"userId": user_id})
        assert r.status_code == 200, r.text
        return SandboxUser(r.json()["userId"], r.json()["userSecret"])


@pytest_asyncio.fixture
async def hooked(clock: FakeClock, spec_validator: SpecValidator) -> AsyncIterator[Hooked]:
    receiver = Receiver()
    app = create_app(
        client_id=CLIENT_ID,
        consumer_key=CONSUMER_KEY,
        clock=clock,
        webhook_url=HOOK,
        webhook_transport=receiver.transport,
    )
    transport = SpecCheckingTransport(httpx.ASGITransport(app=app), spec_validator)
    async with (
        running(app),
        httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http,
    ):
        yield Hooked(app, SignedClient(http, clock), receiver)
