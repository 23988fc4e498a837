"""/api/accounts/{id}/orders: preview, place (one order per Idempotency-Key), list, cancel,
and the trading gate refusing accounts that cannot trade before any provider call."""

import asyncio
import uuid
from decimal import Decimal

import pytest

from tests.fixtures.api import assert_error
from tests.orders.sandbox_faults import lose_next_answers, sandbox_orders

pytestmark = pytest.mark.asyncio

BUY = {"side": "buy", "symbol": "AAPL", "order_type": "limit", "quantity": "1", "limit_price": "1"}


def _key() -> dict[str, str]:
    return {"Idempotency-Key": f"test-{uuid.uuid4().hex}"}


async def _account(api, user, institution: str, name: str | None = None, **connect) -> int:
    await api.connect(user, institution, **connect)
    accounts = (await user.get("/api/accounts")).json()
    return next(a["id"] for a in accounts if name is None or a["name"] == name)


async def _schwab(api):
    user = await api.user()
    account = await _account(
        api, user, "Charles Schwab", "Schwab Individual Brokerage", need_trading=True
    )
    return user, account


async def _unlinked(api):
    """A user and an account id: the body and headers are validated before the account is
    looked up, so validation tests need no linked account."""
    return await api.user(), 1


def _order_calls(api) -> int:
    return sum(n for path, n in api.stack.snaptrade_wire.paths.items() if "/trade" in path)


class TestPreviewOrder:
    async def test_schwab_preview_prices_the_order(self, api):
        user, account = await _schwab(api)
        response = await user.post(f"/api/accounts/{account}/orders/preview", json=BUY)
        assert response.status_code == 200, response.text
        preview = response.json()
        assert preview["provider"] == "snaptrade"
        assert preview["symbol"] == "AAPL"
        assert preview["side"] == "buy"
        assert preview["preview_id"]

    async def test_a_preview_places_nothing(self, api):
        user, account = await _schwab(api)
        before = (await user.get(f"/api/accounts/{account}/orders")).json()
        await user.post(f"/api/accounts/{account}/orders/preview", json=BUY)
        assert (await user.get(f"/api/accounts/{account}/orders")).json() == before

    async def test_chase_is_403_with_the_reason_and_no_provider_call(self, api):
        user = await api.user()
        account = await _account(api, user, "Chase", "Self-Directed Investing")
        before = api.provider_calls
        response = await user.post(f"/api/accounts/{account}/orders/preview", json=BUY)
        error = assert_error(response, 403, "trading_not_allowed")
        assert "Plaid" in error["reason"]
        assert api.provider_calls == before

    async def test_both_quantity_and_notional_is_422(self, api):
        user, account = await _unlinked(api)
        body = {**BUY, "notional": "100"}
        response = await user.post(f"/api/accounts/{account}/orders/preview", json=body)
        assert_error(response, 422, "validation_error")

    async def test_a_limit_order_without_a_price_is_422(self, api):
        user, account = await _unlinked(api)
        body = {k: v for k, v in BUY.items() if k != "limit_price"}
        response = await user.post(f"/api/accounts/{account}/orders/preview", json=body)
        assert_error(response, 422, "validation_error")

    async def test_an_unknown_side_names_the_field(self, api):
        user, account = await _unlinked(api)
        body = {**BUY, "side": "hold"}
        response = await user.post(f"/api/accounts/{account}/orders/preview", json=body)
        assert_error(response, 422, "validation_error", field="side")


class TestPlaceOrder:
    async def test_schwab_places_the_order(self, api):
        user, account = await _schwab(api)
        response = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        assert response.status_code == 201, response.text
        order = response.json()
        assert order["provider"] == "snaptrade"
        assert order["order_id"]
        assert order["symbol"] == "AAPL"
        assert Decimal(order["quantity"]) == 1

    async def test_the_same_key_twice_is_one_order(self, api):
        user, account = await _schwab(api)
        key = _key()
        first = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        calls = _order_calls(api)
        second = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        assert first.status_code == 201, first.text
        assert second.status_code == 201, second.text
        assert "Idempotent-Replayed" not in first.headers
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.json()["order_id"] == first.json()["order_id"]
        assert _order_calls(api) == calls
        orders = (await user.get(f"/api/accounts/{account}/orders")).json()
        assert [o["order_id"] for o in orders].count(first.json()["order_id"]) == 1

    async def test_two_keys_are_two_orders(self, api):
        user, account = await _schwab(api)
        first = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        second = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        assert first.json()["order_id"] != second.json()["order_id"]

    async def test_a_missing_idempotency_key_is_422_naming_it(self, api):
        user, account = await _unlinked(api)
        before = _order_calls(api)
        response = await user.post(f"/api/accounts/{account}/orders", json=BUY)
        assert_error(response, 422, "validation_error", field="Idempotency-Key")
        assert _order_calls(api) == before

    async def test_a_short_idempotency_key_is_422_naming_it(self, api):
        user, account = await _unlinked(api)
        response = await user.post(
            f"/api/accounts/{account}/orders", json=BUY, headers={"Idempotency-Key": "abc"}
        )
        assert_error(response, 422, "validation_error", field="Idempotency-Key")

    async def test_chase_is_403_trading_not_allowed_with_the_reason(self, api):
        user = await api.user()
        account = await _account(api, user, "Chase", "Self-Directed Investing")
        before = api.stack.snaptrade_wire.total
        response = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        error = assert_error(response, 403, "trading_not_allowed")
        assert error["reason"] == (
            "it is linked through Plaid, which reads accounts but cannot place orders"
        )
        assert api.stack.snaptrade_wire.total == before

    async def test_fidelity_is_403_and_makes_no_snaptrade_order_call(self, api):
        user = await api.user()
        account = await _account(api, user, "Fidelity", "Fidelity Individual")
        before = api.stack.snaptrade_wire.total
        response = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        error = assert_error(response, 403, "trading_not_allowed")
        assert "Fidelity Investments is read-only here" in error["reason"]
        assert api.stack.snaptrade_wire.total == before
        assert _order_calls(api) == 0

    async def test_a_provider_failure_is_an_error_not_an_order(self, api):
        user, account = await _schwab(api)
        api.faults("snaptrade", error_rate=1.0, error_status=500, path_pattern="trade")
        response = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        error = assert_error(response, 502, "provider_unavailable")
        assert error["provider"] == "snaptrade"


class TestIdempotencyKeys:
    @pytest.mark.parametrize(
        "change",
        [
            {"side": "sell"},
            {"symbol": "MSFT"},
            {"quantity": "2"},
            {"order_type": "market", "limit_price": None},
            {"limit_price": "1.01"},
            {"time_in_force": "gtc"},
        ],
        ids=["side", "symbol", "quantity", "type", "limit", "tif"],
    )
    async def test_reused_for_another_order_is_422_and_places_nothing(self, api, change):
        user, account = await _schwab(api)
        key = _key()
        first = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        assert first.status_code == 201, first.text
        before, calls = sandbox_orders(api.stack), _order_calls(api)
        other = {k: v for k, v in {**BUY, **change}.items() if v is not None}
        response = await user.post(f"/api/accounts/{account}/orders", json=other, headers=key)
        error = assert_error(response, 422, "idempotency_key_reused")
        assert error["idempotency_key"] == key["Idempotency-Key"]
        assert key["Idempotency-Key"] in error["message"]
        assert sandbox_orders(api.stack) == before
        assert _order_calls(api) == calls

    async def test_reused_on_another_account_is_422_and_places_nothing(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        accounts = [
            a["id"]
            for a in (await user.get("/api/accounts")).json()
            if a["capabilities"]["trading"]
        ]
        assert len(accounts) >= 2
        key = _key()
        first = await user.post(f"/api/accounts/{accounts[0]}/orders", json=BUY, headers=key)
        assert first.status_code == 201, first.text
        before = sandbox_orders(api.stack)
        response = await user.post(f"/api/accounts/{accounts[1]}/orders", json=BUY, headers=key)
        assert_error(response, 422, "idempotency_key_reused")
        assert sandbox_orders(api.stack) == before

    async def test_the_same_order_in_another_json_spelling_is_a_replay(self, api):
        user, account = await _schwab(api)
        key = _key()
        first = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        before = sandbox_orders(api.stack)
        respelled = {**BUY, "symbol": "aapl", "quantity": 1.0, "limit_price": "1.000"}
        second = await user.post(f"/api/accounts/{account}/orders", json=respelled, headers=key)
        assert second.status_code == 201, second.text
        assert second.headers["Idempotent-Replayed"] == "true"
        assert second.json()["order_id"] == first.json()["order_id"]
        assert sandbox_orders(api.stack) == before

    async def test_concurrent_requests_with_one_key_place_one_order(self, api):
        user, account = await _schwab(api)
        key = _key()
        before = sandbox_orders(api.stack)
        responses = await asyncio.gather(
            *(user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key) for _ in range(4))
        )
        placed = [r for r in responses if r.status_code == 201]
        others = [r for r in responses if r.status_code != 201]
        assert [r.headers.get("Idempotent-Replayed") for r in placed].count(None) == 1
        assert len({r.json()["order_id"] for r in placed}) == 1
        for response in others:
            assert_error(response, 409, "order_in_flight")
            assert int(response.headers["Retry-After"]) >= 1
        assert sandbox_orders(api.stack) == before + 1

    async def test_a_refusal_is_422_with_the_reason_and_replays_the_same(self, api):
        user, account = await _schwab(api)
        api.faults("snaptrade", fail_next=[400], path_pattern="^/trade/(?!impact$)")
        key = _key()
        before = sandbox_orders(api.stack)
        first = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        error = assert_error(first, 422, "order_rejected")
        assert error["reason"]
        assert "Idempotent-Replayed" not in first.headers
        calls = _order_calls(api)
        again = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        assert assert_error(again, 422, "order_rejected") == error
        assert again.headers["Idempotent-Replayed"] == "true"
        assert _order_calls(api) == calls
        assert sandbox_orders(api.stack) == before

    async def test_placed_but_answer_lost_is_in_doubt_then_reconciled(self, api):
        user, account = await _schwab(api)
        key = _key()
        before = sandbox_orders(api.stack)
        lose_next_answers(api.stack, status=502)
        first = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        error = assert_error(first, 409, "order_in_doubt")
        assert "same Idempotency-Key" in error["resolution"]
        assert error["idempotency_key"] == key["Idempotency-Key"]
        assert int(first.headers["Retry-After"]) >= 1
        assert sandbox_orders(api.stack) == before + 1

        replay = await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=key)
        assert replay.status_code == 201, replay.text
        assert replay.headers["Idempotent-Replayed"] == "true"
        order_id = replay.json()["order_id"]
        assert order_id in api.stack.snaptrade_app.state.sandbox.orders
        assert sandbox_orders(api.stack) == before + 1
        listed = (await user.get(f"/api/accounts/{account}/orders")).json()
        assert [o["order_id"] for o in listed].count(order_id) == 1

    async def test_the_openapi_description_documents_each_outcome(self, api):
        schema = (await (await api.user()).get("/openapi.json")).json()
        place = schema["paths"]["/api/accounts/{account_id}/orders"]["post"]["responses"]
        assert "Idempotent-Replayed" in place["201"]["headers"]
        for code in ("order_in_flight", "order_in_doubt", "order_not_placed"):
            assert code in place["409"]["description"]
        assert "Retry-After" in place["409"]["headers"]
        for code in ("idempotency_key_reused", "order_rejected"):
            assert code in place["422"]["description"]


class TestListOrders:
    async def test_lists_the_placed_order(self, api):
        user, account = await _schwab(api)
        placed = (
            await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        ).json()
        response = await user.get(f"/api/accounts/{account}/orders")
        assert response.status_code == 200
        assert placed["order_id"] in [o["order_id"] for o in response.json()]

    async def test_a_read_only_provider_has_no_orders(self, api):
        user = await api.user()
        account = await _account(api, user, "Chase", "Self-Directed Investing")
        response = await user.get(f"/api/accounts/{account}/orders")
        assert response.status_code == 200
        assert response.json() == []

    async def test_a_provider_failure_is_an_error_not_an_empty_list(self, api):
        user, account = await _schwab(api)
        api.faults("snaptrade", error_rate=1.0, error_status=500, path_pattern="orders")
        response = await user.get(f"/api/accounts/{account}/orders")
        error = assert_error(response, 502, "provider_unavailable")
        assert error["provider"] == "snaptrade"
        assert error["message"]


class TestCancelOrder:
    async def test_cancels_an_open_order(self, api):
        user, account = await _schwab(api)
        placed = (
            await user.post(f"/api/accounts/{account}/orders", json=BUY, headers=_key())
        ).json()
        response = await user.delete(f"/api/accounts/{account}/orders/{placed['order_id']}")
        assert response.status_code == 200, response.text
        cancelled = response.json()
        assert cancelled["order_id"] == placed["order_id"]
        assert cancelled["status"] in ("cancelled", "canceled", "pending_cancel")

    async def test_an_unknown_order_is_an_error(self, api):
        user, account = await _schwab(api)
        response = await user.delete(f"/api/accounts/{account}/orders/no-such-order")
        assert 400 <= response.status_code < 500, response.text
        assert_error(response, response.status_code)

    async def test_chase_is_403(self, api):
        user = await api.user()
        account = await _account(api, user, "Chase", "Self-Directed Investing")
        before = api.stack.snaptrade_wire.total
        response = await user.delete(f"/api/accounts/{account}/orders/some-order")
        assert_error(response, 403, "trading_not_allowed")
        assert api.stack.snaptrade_wire.total == before
