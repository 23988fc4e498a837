"""The portfolio app's SnapTrade and Plaid routes, kept with their names and shapes."""

import pytest

from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


async def _exchange(api, user, institution: str = "Chase") -> dict:
    token = await user.post("/api/plaid/create-link-token", json={"institution": institution})
    assert token.status_code == 200, token.text
    public = await api.plaid_public_token()
    response = await user.post(
        "/api/plaid/exchange-public-token",
        json={"public_token": public, "state": token.json()["state"]},
    )
    assert response.status_code == 200, response.text
    await api.state.syncs.drain()
    return dict(response.json())


class TestSnapTradeRegisterUser:
    async def test_returns_the_user_id_and_never_the_secret(self, api):
        user = await api.user()
        response = await user.post("/api/snaptrade/register-user")
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"userId"}
        assert body["userId"]
        assert "secret" not in response.text.lower()

    async def test_registering_twice_is_the_same_user(self, api):
        user = await api.user()
        first = (await user.post("/api/snaptrade/register-user")).json()
        second = await user.post("/api/snaptrade/register-user")
        assert second.status_code == 200, second.text
        assert second.json() == first


class TestSnapTradeCreateConnectionUrl:
    async def test_an_institution_opens_its_brokerage_in_the_portal(self, api):
        user = await api.user()
        response = await user.post(
            "/api/snaptrade/create-connection-url",
            json={"institution": "Charles Schwab", "connectionType": "trade"},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["redirectURI"].startswith("http://snaptrade.sandbox/portal/")
        assert "broker=SCHWAB" in body["redirectURI"]
        assert body["state"]

    async def test_a_broker_slug_opens_that_brokerage(self, api):
        user = await api.user()
        response = await user.post(
            "/api/snaptrade/create-connection-url", json={"broker": "FIDELITY"}
        )
        assert response.status_code == 200, response.text
        assert "broker=FIDELITY" in response.json()["redirectURI"]

    async def test_an_institution_routed_to_plaid_names_the_field(self, api):
        user = await api.user()
        response = await user.post(
            "/api/snaptrade/create-connection-url", json={"institution": "Chase"}
        )
        error = assert_error(response, 422, "validation_error", field="institution")
        assert "plaid" in error["message"]

    async def test_an_unknown_connection_type_names_the_field(self, api):
        user = await api.user()
        response = await user.post(
            "/api/snaptrade/create-connection-url", json={"connectionType": "admin"}
        )
        assert_error(response, 422, "validation_error", field="connectionType")


class TestSnapTradeRefreshHoldings:
    async def test_refreshes_the_snaptrade_connections(self, api):
        user = await api.user()
        schwab = await api.connect(user, "Charles Schwab", need_trading=True)
        await api.connect(user, "Chase")
        response = await user.post("/api/snaptrade/refresh-holdings")
        assert response.status_code == 200, response.text
        (item,) = response.json()
        assert item["connection_id"] == schwab["id"]
        assert item["provider"] == "snaptrade"
        assert item["result"] == "refreshed"

    async def test_an_unknown_connection_is_404(self, api):
        user = await api.user()
        response = await user.post(
            "/api/snaptrade/refresh-holdings", json={"connection_id": 999999}
        )
        assert_error(response, 404, "not_found")

    async def test_a_plaid_connection_is_not_a_snaptrade_one(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        response = await user.post(
            "/api/snaptrade/refresh-holdings", json={"connection_id": chase["id"]}
        )
        assert_error(response, 404, "not_found")


class TestPlaidCreateLinkToken:
    async def test_returns_the_link_token_the_hosted_link_url_and_state(self, api):
        user = await api.user()
        response = await user.post("/api/plaid/create-link-token", json={"institution": "Chase"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["link_token"].startswith("link-sandbox-")
        assert body["hosted_link_url"].startswith("http://plaid.sandbox/hosted-link/")
        assert body["state"]

    async def test_without_an_institution(self, api):
        user = await api.user()
        response = await user.post("/api/plaid/create-link-token", json={})
        assert response.status_code == 200, response.text
        assert response.json()["link_token"]


class TestPlaidExchangePublicToken:
    async def test_stores_the_connection_and_syncs_it(self, api):
        user = await api.user()
        done = await _exchange(api, user)
        assert done["provider"] == "plaid"
        assert done["institution"] == "Chase"
        accounts = (await user.get("/api/accounts")).json()
        assert accounts
        assert {a["status"] for a in accounts} == {"fresh"}
        positions = (await user.get("/api/positions")).json()
        assert any(p["ticker"] == "AAPL" for p in positions)

    async def test_a_bad_public_token_is_a_provider_error_with_its_reason(self, api):
        user = await api.user()
        token = (await user.post("/api/plaid/create-link-token", json={})).json()
        response = await user.post(
            "/api/plaid/exchange-public-token",
            json={"public_token": "public-sandbox-nope", "state": token["state"]},
        )
        assert 400 <= response.status_code < 500, response.text
        error = assert_error(response, response.status_code)
        assert error.get("provider") == "plaid"
        assert (await user.get("/api/connections")).json() == []

    async def test_a_tampered_state_names_the_field(self, api):
        user = await api.user()
        response = await user.post(
            "/api/plaid/exchange-public-token",
            json={"public_token": await api.plaid_public_token(), "state": "forged.state"},
        )
        assert_error(response, 422, "validation_error", field="state")

    async def test_a_missing_public_token_names_the_field(self, api):
        user = await api.user()
        response = await user.post("/api/plaid/exchange-public-token", json={"state": "x"})
        assert_error(response, 422, "validation_error", field="public_token")


class TestPlaidRefreshHoldings:
    async def test_the_second_refresh_is_refused_with_the_reason(self, api):
        user = await api.user()
        chase = await api.connect(user, "Chase")
        first = await user.post("/api/plaid/refresh-holdings")
        assert first.status_code == 200, first.text
        assert [(i["connection_id"], i["result"]) for i in first.json()] == [
            (chase["id"], "refreshed")
        ]
        second = await user.post("/api/plaid/refresh-holdings")
        (item,) = second.json()
        assert item["result"] == "refused"
        assert "24 h" in item["reason"]
        assert item["next_allowed_at"]

    async def test_override_refreshes_inside_the_window(self, api):
        user = await api.user()
        await api.connect(user, "Chase")
        await user.post("/api/plaid/refresh-holdings")
        response = await user.post("/api/plaid/refresh-holdings", json={"override": True})
        (item,) = response.json()
        assert item["result"] == "refreshed"

    async def test_a_provider_failure_is_an_error_not_a_silent_success(self, api):
        user = await api.user()
        await api.connect(user, "Chase")
        api.faults("plaid", error_rate=1.0, error_status=500)
        response = await user.post("/api/plaid/refresh-holdings")
        error = assert_error(response, 502, "provider_unavailable")
        assert error["provider"] == "plaid"

    async def test_no_plaid_connections_is_an_empty_list(self, api):
        user = await api.user()
        response = await user.post("/api/plaid/refresh-holdings")
        assert response.status_code == 200
        assert response.json() == []
