"""SnapTrade webhook verification: webhooks signed by the SnapTrade sandbox, and forged ones."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from brokerlink.errors import BrokerlinkError
from brokerlink.providers.snaptrade.webhooks import (
    SnapTradeEventType,
    SnapTradeWebhookVerifier,
    UnknownSnapTradeWebhook,
    WebhookRefused,
)
from brokerlink.sandbox.snaptrade.webhooks import sign_webhook, webhook_payload
from tests.providers.snaptrade.conftest import ACCOUNT_ID, CLIENT_ID, CONSUMER_KEY, USER_ID

pytestmark = pytest.mark.asyncio

SENT_AT = 1_795_500_000.0
AUTHORIZATION_ID = "a0231bd2-9b77-4732-ba78-f9c6af6a1a62"
BROKERAGE_ID = "c8153291-0761-43a8-8ed0-4642103c2cb8"
HOLDINGS_DETAILS = {
    "total_value": {"success": True, "error": None},
    "positions": {"success": True, "error": None},
    "balances": {"success": True, "error": None},
    "orders": {"success": True, "error": None},
}
TRADE_DETAILS = {
    "orders": [
        {"brokerage_order_id": "66", "status": "EXECUTED", "execution_price": "187.12"},
    ]
}
# The events issue 14 acts on, with the fields SnapTrade sends for each.
EVENTS: dict[str, dict] = {
    "CONNECTION_ADDED": {"brokerageId": BROKERAGE_ID, "brokerageAuthorizationId": AUTHORIZATION_ID},
    "NEW_ACCOUNT_AVAILABLE": {
        "accountId": ACCOUNT_ID,
        "brokerageAuthorizationId": AUTHORIZATION_ID,
    },
    "ACCOUNT_HOLDINGS_UPDATED": {
        "accountId": ACCOUNT_ID,
        "brokerageId": BROKERAGE_ID,
        "brokerageAuthorizationId": AUTHORIZATION_ID,
        "details": HOLDINGS_DETAILS,
    },
    "CONNECTION_BROKEN": {"brokerageAuthorizationId": AUTHORIZATION_ID},
    "CONNECTION_FIXED": {"brokerageAuthorizationId": AUTHORIZATION_ID},
    "CONNECTION_DELETED": {
        "brokerageId": BROKERAGE_ID,
        "brokerageAuthorizationId": AUTHORIZATION_ID,
    },
    "ACCOUNT_REMOVED": {"accountId": ACCOUNT_ID, "brokerageAuthorizationId": AUTHORIZATION_ID},
    "USER_DELETED": {},
    "TRADE_DETECTION": {"accountId": ACCOUNT_ID, "details": TRADE_DETAILS},
    "TRADE_UPDATE": {"accountId": ACCOUNT_ID, "details": TRADE_DETAILS},
}


def independent_signature(key: str, body: bytes) -> str:
    """§1.5 as SnapTrade's example does it: parse, re-serialise sorted and compact, HMAC-SHA256
    under the consumer key, base64."""
    canonical = json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True)
    return base64.b64encode(
        hmac.new(key.encode(), canonical.encode(), hashlib.sha256).digest()
    ).decode()


class SeenIds:
    def __init__(self) -> None:
        self.accepted: set[str] = set()
        self.asked: list[str] = []

    async def __call__(self, event_id: str) -> bool:
        self.asked.append(event_id)
        return event_id in self.accepted


class Receiver:
    """A verifier on a clock the test moves, and what it was asked about replays."""

    def __init__(self) -> None:
        self.now = datetime.fromtimestamp(SENT_AT, UTC)
        self.seen = SeenIds()
        self.verifier = SnapTradeWebhookVerifier(
            CONSUMER_KEY, clock=lambda: self.now, seen=self.seen
        )

    async def refuse(self, body: bytes, headers: dict[str, str], code: str) -> WebhookRefused:
        with pytest.raises(WebhookRefused) as caught:
            await self.verifier.verify(body, headers)
        assert caught.value.code == code, caught.value.message
        return caught.value


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


def sandbox_webhook(
    event_type: str = "ACCOUNT_HOLDINGS_UPDATED", key: str = CONSUMER_KEY, **fields
):
    payload = webhook_payload(
        event_type,
        client_id=CLIENT_ID,
        user_id=USER_ID,
        now=SENT_AT,
        **(EVENTS[event_type] | fields),
    )
    return payload, sign_webhook(key, payload)


def signed_by_test(payload: dict) -> tuple[bytes, dict[str, str]]:
    """A delivery signed here, from §1.5, with a body laid out unlike the sandbox's."""
    body = json.dumps(payload, indent=4, sort_keys=False).encode()
    return body, {"Signature": independent_signature(CONSUMER_KEY, body)}


class TestAccepted:
    @pytest.mark.parametrize("event_type", list(EVENTS))
    async def test_every_event_the_product_acts_on(self, receiver, event_type):
        payload, signed = sandbox_webhook(event_type)
        event = await receiver.verifier.verify(signed.body, signed.headers)
        assert event.event_type is SnapTradeEventType(event_type)
        assert event.event_id == payload["webhookId"]
        assert event.user_id == USER_ID
        assert event.occurred_at == receiver.now
        assert event.payload == payload
        assert event.authorization_id == EVENTS[event_type].get("brokerageAuthorizationId")
        assert event.account_id == EVENTS[event_type].get("accountId")
        assert receiver.seen.asked == [payload["webhookId"]]

    async def test_the_sandbox_signs_as_section_1_5_describes(self):
        _, signed = sandbox_webhook()
        assert signed.headers["Signature"] == independent_signature(CONSUMER_KEY, signed.body)
        # ... over the canonical form, not the wire bytes it sends.
        raw = base64.b64encode(
            hmac.new(CONSUMER_KEY.encode(), signed.body, hashlib.sha256).digest()
        )
        assert signed.headers["Signature"] != raw.decode()

    async def test_a_webhook_signed_from_the_description_verifies(self, receiver):
        payload, _ = sandbox_webhook("CONNECTION_BROKEN", brokerageName="Société Générale")
        body, headers = signed_by_test(payload)
        event = await receiver.verifier.verify(body, headers)
        assert event.event_type is SnapTradeEventType.CONNECTION_BROKEN
        assert event.payload["brokerageName"] == "Société Générale"

    async def test_the_specs_misspelt_webook_id(self, receiver):
        payload, _ = sandbox_webhook("USER_DELETED")
        payload["webookId"] = payload.pop("webhookId")
        body, headers = signed_by_test(payload)
        assert (await receiver.verifier.verify(body, headers)).event_id == payload["webookId"]

    async def test_trade_webhooks_carry_both_ids(self, receiver):
        payload, signed = sandbox_webhook("TRADE_UPDATE")
        assert payload["webookId"] == payload["webhookId"]
        event = await receiver.verifier.verify(signed.body, signed.headers)
        assert event.orders == tuple(TRADE_DETAILS["orders"])

    async def test_a_holdings_update_says_which_part_failed(self, receiver):
        details = HOLDINGS_DETAILS | {"positions": {"success": False, "error": "timed out"}}
        _, signed = sandbox_webhook(details=details)
        event = await receiver.verifier.verify(signed.body, signed.headers)
        assert event.holdings is not None
        assert not event.holdings.succeeded
        assert event.holdings.failed == {"positions": "timed out"}

    async def test_an_oauth_payload_names_the_connection_connection_id(self, receiver):
        payload, _ = sandbox_webhook("CONNECTION_FIXED")
        del payload["brokerageAuthorizationId"], payload["clientId"]
        payload |= {"schemaVersion": "oauth_v1", "oauthClientId": "app", "connectionId": "c-1"}
        body, headers = signed_by_test(payload)
        assert (await receiver.verifier.verify(body, headers)).authorization_id == "c-1"

    async def test_five_minutes_old_is_still_fresh(self, receiver):
        _, signed = sandbox_webhook()
        receiver.now += timedelta(minutes=5)
        assert (await receiver.verifier.verify(signed.body, signed.headers)).account_id


class TestRefused:
    async def test_no_signature(self, receiver):
        _, signed = sandbox_webhook()
        refused = await receiver.refuse(signed.body, {}, "bad_signature")
        assert refused.status_code == 401
        assert isinstance(refused, BrokerlinkError)

    async def test_signed_with_another_key(self, receiver):
        _, signed = sandbox_webhook(key="not-our-consumer-key")
        await receiver.refuse(signed.body, signed.headers, "bad_signature")
        assert receiver.seen.asked == []

    async def test_a_forged_signature(self, receiver):
        _, signed = sandbox_webhook()
        forged = base64.b64encode(b"\0" * 32).decode()
        await receiver.refuse(signed.body, {"Signature": forged}, "bad_signature")
        await receiver.refuse(signed.body, {"Signature": "ünïcode"}, "bad_signature")

    async def test_the_body_changed_by_one_byte(self, receiver):
        _, signed = sandbox_webhook()
        at = signed.body.index(ACCOUNT_ID.encode())
        body = signed.body[:at] + b"8" + signed.body[at + 1 :]  # ACCOUNT_ID starts with a 9
        assert json.loads(body)["accountId"] != ACCOUNT_ID
        await receiver.refuse(body, signed.headers, "bad_signature")

    async def test_an_event_older_than_five_minutes(self, receiver):
        _, signed = sandbox_webhook()
        receiver.now += timedelta(minutes=5, seconds=1)
        refused = await receiver.refuse(signed.body, signed.headers, "stale")
        assert refused.status_code == 401
        assert receiver.seen.asked == []

    async def test_an_event_from_the_future(self, receiver):
        _, signed = sandbox_webhook()
        receiver.now -= timedelta(minutes=1)
        await receiver.refuse(signed.body, signed.headers, "stale")

    async def test_a_replayed_webhook_id(self, receiver):
        payload, signed = sandbox_webhook()
        await receiver.verifier.verify(signed.body, signed.headers)
        receiver.seen.accepted.add(payload["webhookId"])
        refused = await receiver.refuse(signed.body, signed.headers, "replayed")
        assert refused.status_code == 409

    @pytest.mark.parametrize(
        "body",
        [b"{not json", b"", b"[]", b'{"a": NaN}', b'{"a": 1, "a": 2}', b"\xff\xfe"],
    )
    async def test_a_body_that_is_no_json_object(self, receiver, body):
        headers = {"Signature": base64.b64encode(b"x" * 32).decode()}
        refused = await receiver.refuse(body, headers, "malformed")
        assert refused.status_code == 400

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"accountId": None}, "accountId"),
            ({"eventType": 7}, "eventType"),
            ({"eventTimestamp": "yesterday"}, "eventTimestamp"),
            ({"eventTimestamp": "2026-11-23T12:00:00"}, "eventTimestamp"),
            ({"webhookId": None}, "webhookId"),
            ({"userId": 7}, "userId"),
            ({"details": {"positions": {"success": True}}}, "details"),
        ],
    )
    async def test_a_signed_payload_missing_what_the_event_needs(self, receiver, change, field):
        payload, _ = sandbox_webhook()
        payload = {k: v for k, v in (payload | change).items() if v is not None}
        body, headers = signed_by_test(payload)
        refused = await receiver.refuse(body, headers, "malformed")
        assert field in refused.message
        assert receiver.seen.asked == []


def future_event(**change) -> dict:
    """A payload of an eventType SnapTrade does not document (yet), with fields of its own."""
    payload, _ = sandbox_webhook("USER_DELETED")
    payload |= {"eventType": "PORTFOLIO_REBALANCED", "userId": 7, "details": ["new", "shape"]}
    return {k: v for k, v in (payload | change).items() if v is not None}


class TestAFutureEventType:
    async def test_is_verified_and_nothing_but_its_id_and_time_is_read(self, receiver):
        payload = future_event()
        body, headers = signed_by_test(payload)
        event = await receiver.verifier.verify(body, headers)
        assert isinstance(event, UnknownSnapTradeWebhook)
        assert (event.event_id, event.event_type, event.occurred_at) == (
            payload["webhookId"],
            "PORTFOLIO_REBALANCED",
            receiver.now,
        )
        assert event.payload == payload
        assert receiver.seen.asked == [payload["webhookId"]]

    async def test_is_refused_when_forged_stale_or_replayed(self, receiver):
        payload = future_event()
        body, headers = signed_by_test(payload)
        forged = {"Signature": base64.b64encode(b"\0" * 32).decode()}
        await receiver.refuse(body, forged, "bad_signature")
        receiver.seen.accepted.add(payload["webhookId"])
        await receiver.refuse(body, headers, "replayed")
        receiver.now += timedelta(minutes=6)
        await receiver.refuse(body, headers, "stale")

    @pytest.mark.parametrize("missing", ["webhookId", "eventTimestamp"])
    async def test_without_its_id_or_time_is_malformed(self, receiver, missing):
        body, headers = signed_by_test(future_event(**{missing: None}))
        refused = await receiver.refuse(body, headers, "malformed")
        assert missing in refused.message
        assert receiver.seen.asked == []


async def test_the_consumer_key_stays_out_of_the_repr():
    verifier = SnapTradeWebhookVerifier(
        CONSUMER_KEY, clock=lambda: datetime.now(UTC), seen=SeenIds()
    )
    assert CONSUMER_KEY not in repr(verifier)

    async def test_an_id_longer_than_the_events_table_keeps_is_malformed(self, receiver):
        payload, _ = sandbox_webhook("USER_DELETED")
        payload["webhookId"] = "x" * 129
        body, headers = signed_by_test(payload)
        refused = await receiver.refuse(body, headers, "malformed")
        assert "longer than 128" in refused.message
        assert receiver.seen.asked == []
        payload["webhookId"] = "x" * 128
        body, headers = signed_by_test(payload)
        assert (await receiver.verifier.verify(body, headers)).event_id == "x" * 128
