"""A verified webhook of a type this product does not know is recorded `ignored`, answered 200
(so the provider does not retry it) and changes nothing else; its metric's type is `other`."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from brokerlink.observability import metrics
from brokerlink.sandbox.plaid.webhooks import encode_body
from tests.webhooks.world import Delivery, World

pytestmark = pytest.mark.asyncio

METRIC = "brokerlink_webhook_events_total"


def _count(provider: str, type_: str, result: str) -> float:
    labels = {"provider": provider, "type": type_, "result": result}
    return metrics.REGISTRY.get_sample_value(METRIC, labels) or 0.0


async def _linked(world: World, institution: str) -> tuple[Any, int]:
    """A user with `institution` linked, every webhook of the link delivered."""
    user = await world.api.user()
    world.receiver.open.clear()
    await world.api.connect(user, institution)
    world.receiver.open.set()
    await world.settled()
    connection_id = max(c["id"] for c in (await user.get("/api/connections")).json())
    return user, connection_id


async def _delivered(world: World, provider: str, send: Any) -> list[Delivery]:
    """Every attempt the sandbox made of what `send()` queued."""
    seen = len(world.receiver.of(provider))
    send()
    await world.settled()
    return world.receiver.of(provider)[seen:]


async def _resend(world: World, provider: str, delivery: Delivery) -> int:
    async with world.api.client() as sender:
        answer = await sender.post(
            f"/webhooks/{provider}", content=delivery.body, headers=delivery.headers
        )
    return answer.status_code


class TestSnapTrade:
    @pytest.mark.parametrize("event_type", ["PORTFOLIO_REBALANCED", "FUTURE_" * 15])
    async def test_a_future_event_type_is_ignored_once(self, world, event_type):
        user, connection_id = await _linked(world, "Charles Schwab")
        authorization = (await world.connection(connection_id)).provider_connection_id
        account = (await world.accounts(connection_id))[0].provider_account_id
        before = await world.store()
        calls = world.api.provider_calls
        ignored = _count("snaptrade", "other", "ignored")

        [delivery] = await _delivered(
            world,
            "snaptrade",
            lambda: world.snap_app.state.webhooks.publish(
                event_type,
                str(user.id),
                {"brokerageAuthorizationId": authorization, "accountId": account},
            ),
        )

        # Answered 200 at once: SnapTrade does not retry it.
        assert delivery.status == 200
        assert await world.store() == before
        assert world.api.provider_calls == calls
        [event] = await world.events(event_type=event_type[:64])
        assert (event.result, event.connection_id, event.account_id, event.error) == (
            "ignored",
            None,
            None,
            None,
        )
        assert event.body_sha256 == hashlib.sha256(delivery.body).hexdigest()
        assert _count("snaptrade", "other", "ignored") == ignored + 1
        assert _count("snaptrade", event_type[:64], "ignored") == 0
        # Delivered again, it is a replay like any other event.
        assert await _resend(world, "snaptrade", delivery) == 409
        assert await world.store() == before


class TestPlaid:
    @pytest.mark.parametrize(
        ("webhook_type", "webhook_code"),
        [("ITEM", "SOMETHING_NEW"), ("CREDIT_SCORE", "UPDATED")],
    )
    async def test_an_unknown_type_or_code_is_ignored_once(self, world, webhook_type, webhook_code):
        code = webhook_code
        _, connection_id = await _linked(world, "Chase")
        item_id = (await world.connection(connection_id)).provider_connection_id
        url = world.plaid_app.state.sandbox.items[item_id].webhook
        body = {
            "webhook_type": webhook_type,
            "webhook_code": code,
            "item_id": item_id,
            "error": {"error_code": "ITEM_LOGIN_REQUIRED"},
            "environment": "sandbox",
        }
        before = await world.store()
        calls = world.api.provider_calls
        ignored = _count("plaid", "other", "ignored")

        [delivery] = await _delivered(
            world, "plaid", lambda: world.plaid_app.state.webhook_delivery.send(url, body)
        )

        assert delivery.status == 200
        assert delivery.body == encode_body(body)
        assert await world.store() == before
        # The key was cached when the link's webhooks were verified: no call at all.
        assert world.api.provider_calls == calls
        [event] = await world.events(event_type=f"{webhook_type}:{code}")
        assert (event.result, event.connection_id, event.account_id) == ("ignored", None, None)
        assert _count("plaid", "other", "ignored") == ignored + 1
        assert _count("plaid", f"{webhook_type}:{code}", "ignored") == 0
        assert await _resend(world, "plaid", delivery) == 409
        assert await world.store() == before

    async def test_a_known_one_with_nothing_to_do_is_still_handled(self, world):
        _, connection_id = await _linked(world, "Chase")
        item_id = (await world.connection(connection_id)).provider_connection_id
        url = world.plaid_app.state.sandbox.items[item_id].webhook
        body = {
            "webhook_type": "TRANSACTIONS",
            "webhook_code": "SYNC_UPDATES_AVAILABLE",
            "item_id": item_id,
            "initial_update_complete": True,
            "historical_update_complete": True,
            "environment": "sandbox",
        }
        handled = _count("plaid", "TRANSACTIONS:SYNC_UPDATES_AVAILABLE", "handled")

        [delivery] = await _delivered(
            world, "plaid", lambda: world.plaid_app.state.webhook_delivery.send(url, body)
        )

        assert delivery.status == 200
        [event] = await world.events(
            event_type="TRANSACTIONS:SYNC_UPDATES_AVAILABLE", connection_id=connection_id
        )
        assert event.result == "handled"
        assert _count("plaid", "TRANSACTIONS:SYNC_UPDATES_AVAILABLE", "handled") == handled + 1
