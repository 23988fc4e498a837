"""The shapes a client developer relies on: one kind of id per thing, errors in their order.

- an order's and a preview's `account_id` is the id `/api/accounts/{id}` takes; the provider's
  own is `provider_account_id`; `client_order_id` is the `Idempotency-Key` it was placed with
- another user's connection `state` is not found (404), like another user's ids
- a body that is not JSON is 400 `invalid_json` naming `body`, and only for a signed-in caller
"""

import uuid

import pytest

from brokerlink.api.openapi import build_openapi
from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio

BUY = {"side": "buy", "symbol": "AAPL", "order_type": "limit", "quantity": "1", "limit_price": "1"}


async def _schwab_account(api):
    user = await api.user()
    await api.connect(user, "Charles Schwab", need_trading=True)
    accounts = (await user.get("/api/accounts")).json()
    account = next(a for a in accounts if a["capabilities"]["trading"])
    return user, account


class TestOrderIds:
    async def test_a_placed_order_names_the_account_as_the_api_does_and_carries_the_key(self, api):
        user, account = await _schwab_account(api)
        key = f"shape-{uuid.uuid4().hex}"
        placed = await user.post(
            f"/api/accounts/{account['id']}/orders", json=BUY, headers={"Idempotency-Key": key}
        )
        assert placed.status_code == 201, placed.text
        order = placed.json()
        assert order["account_id"] == account["id"]
        assert isinstance(order["provider_account_id"], str)
        assert order["provider_account_id"] != str(account["id"])
        assert order["client_order_id"] == key
        # The order at the sandbox is on the account the provider id names.
        stored = api.stack.snaptrade_app.state.sandbox.orders[order["order_id"]]
        assert stored.account_id == order["provider_account_id"]
        # The id works where the API takes an account id.
        assert (await user.get(f"/api/accounts/{order['account_id']}/positions")).status_code == 200

    async def test_a_replay_and_the_list_answer_the_same_ids(self, api):
        user, account = await _schwab_account(api)
        key = {"Idempotency-Key": f"shape-{uuid.uuid4().hex}"}
        first = await user.post(f"/api/accounts/{account['id']}/orders", json=BUY, headers=key)
        again = await user.post(f"/api/accounts/{account['id']}/orders", json=BUY, headers=key)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["account_id"] == account["id"]
        assert again.json()["client_order_id"] == key["Idempotency-Key"]
        listed = (await user.get(f"/api/accounts/{account['id']}/orders")).json()
        mine = next(o for o in listed if o["order_id"] == first.json()["order_id"])
        assert mine["account_id"] == account["id"]
        assert mine["client_order_id"] == key["Idempotency-Key"]

    async def test_a_preview_names_the_account_as_the_api_does(self, api):
        user, account = await _schwab_account(api)
        preview = await user.post(f"/api/accounts/{account['id']}/orders/preview", json=BUY)
        assert preview.status_code == 200, preview.text
        assert preview.json()["account_id"] == account["id"]
        assert preview.json()["provider_account_id"]

    async def test_the_openapi_description_says_which_id_is_which(self, api):
        schemas = build_openapi(api.app)["components"]["schemas"]
        order = schemas["OrderOut"]["properties"]
        assert order["account_id"]["type"] == "integer"
        assert "/api/accounts/{id}" in order["account_id"]["description"]
        assert "Idempotency-Key" in order["client_order_id"]["description"]
        assert schemas["PreviewOut"]["properties"]["account_id"]["type"] == "integer"


class TestLinkStateOfAnotherUser:
    async def test_is_not_found_and_connects_nothing(self, api):
        owner, other = await api.user(), await api.user()
        started = await owner.post("/api/connections", json={"institution": "Chase"})
        assert started.status_code == 201, started.text
        state = started.json()["state"]
        answer = await other.post("/api/connections/complete", json={"state": state})
        error = assert_error(answer, 404, "not_found")
        assert "another user" not in error["message"]
        assert (await other.get("/api/connections")).json() == []
        exchange = await other.post(
            "/api/plaid/exchange-public-token",
            json={"state": state, "public_token": await api.plaid_public_token()},
        )
        assert_error(exchange, 404, "not_found")

    async def test_a_forged_state_is_still_a_validation_error(self, api):
        user = await api.user()
        answer = await user.post("/api/connections/complete", json={"state": "e30.e30"})
        assert_error(answer, 422, "validation_error", field="state")

    async def test_the_openapi_description_lists_the_404(self, api):
        paths = build_openapi(api.app)["paths"]
        assert "404" in paths["/api/connections/complete"]["post"]["responses"]


class TestMalformedJson:
    BODY = b'{"institution": "Chase",'

    async def test_signed_out_is_401_whatever_the_body(self, api):
        anonymous = api.client()
        answer = await anonymous.post(
            "/api/connections", content=self.BODY, headers={"content-type": "application/json"}
        )
        assert_error(answer, 401, "not_authenticated")

    async def test_signed_in_is_400_naming_the_body(self, api):
        user = await api.user()
        answer = await user.post(
            "/api/connections", content=self.BODY, headers={"content-type": "application/json"}
        )
        error = assert_error(answer, 400, "invalid_json", field="body")
        assert "not valid JSON" in error["message"]
        assert error["field"] != "1"

    async def test_a_public_route_needs_no_sign_in_to_say_so(self, api):
        anonymous = api.client()
        answer = await anonymous.post(
            "/api/auth/login", content=b"{", headers={"content-type": "application/json"}
        )
        assert_error(answer, 400, "invalid_json", field="body")
