"""/api/accounts and /api/positions: served from the store with their freshness, never live."""

import pytest

from tests.fixtures.api import assert_error

pytestmark = pytest.mark.asyncio


async def _accounts(user) -> dict[str, dict]:
    response = await user.get("/api/accounts")
    assert response.status_code == 200, response.text
    return {a["name"]: a for a in response.json()}


class TestListAccounts:
    async def test_each_account_has_its_provider_capabilities_balances_and_freshness(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        await api.connect(user, "Chase")
        accounts = await _accounts(user)
        for account in accounts.values():
            assert account["provider"] in ("snaptrade", "plaid")
            assert set(account["capabilities"]) == {"trading", "realtime", "trading_reason"}
            assert set(account["balances"]) == {"cash", "holdings_value", "total"}
            assert account["status"] == "fresh"
            assert account["stale"] is False
            assert account["last_synced_at"] is not None
            assert account["last_error"] is None
        individual = accounts["Schwab Individual Brokerage"]
        assert individual["provider"] == "snaptrade"
        assert individual["balances"]["cash"]["USD"]
        brokerage = accounts["Self-Directed Investing"]
        assert brokerage["provider"] == "plaid"
        assert brokerage["positions"] > 0

    async def test_schwab_can_trade(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        individual = (await _accounts(user))["Schwab Individual Brokerage"]
        assert individual["capabilities"]["trading"] is True
        assert individual["capabilities"]["trading_reason"] is None

    async def test_chase_cannot_trade_and_says_why(self, api):
        user = await api.user()
        await api.connect(user, "Chase")
        for account in (await _accounts(user)).values():
            assert account["capabilities"]["trading"] is False
            assert "Plaid" in account["capabilities"]["trading_reason"]

    async def test_fidelity_cannot_trade_and_says_why(self, api):
        user = await api.user()
        await api.connect(user, "Fidelity")
        accounts = await _accounts(user)
        assert accounts
        for account in accounts.values():
            assert account["provider"] == "snaptrade"
            assert account["capabilities"]["trading"] is False
            # Why, not that: the institution is read-only here (not "no trading capability").
            reason = account["capabilities"]["trading_reason"]
            assert "Fidelity Investments is read-only here" in reason, reason

    async def test_reading_makes_no_provider_call(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        await api.connect(user, "Chase")
        some = next(iter((await _accounts(user)).values()))
        before = (api.stack.snaptrade_wire.total, api.stack.plaid_wire.total)
        for path in (
            "/api/accounts",
            f"/api/accounts/{some['id']}",
            f"/api/accounts/{some['id']}/positions",
            "/api/positions",
            "/api/connections",
            "/api/portfolio",
            "/api/portfolios",
            "/api/manual-positions",
            "/api/institutions",
            "/api/sync",
        ):
            assert (await user.get(path)).status_code == 200, path
        assert (api.stack.snaptrade_wire.total, api.stack.plaid_wire.total) == before

    async def test_reads_are_served_while_the_providers_are_down(self, api):
        user = await api.user()
        await api.connect(user, "Chase")
        api.faults("plaid", error_rate=1.0, error_status=503)
        response = await user.get("/api/accounts")
        assert response.status_code == 200
        assert {a["status"] for a in response.json()} == {"fresh"}

    async def test_a_failed_sync_leaves_the_account_stale_with_its_error_and_positions(self, api):
        user = await api.user()
        await api.connect(user, "Chase")
        before = (await _accounts(user))["Self-Directed Investing"]
        held = (await user.get(f"/api/accounts/{before['id']}/positions")).json()
        assert held
        api.faults("plaid", error_rate=1.0, error_status=500)
        assert (await user.post("/api/sync")).status_code == 202
        await api.state.syncs.drain()
        after = (await _accounts(user))["Self-Directed Investing"]
        assert after["status"] == "stale"
        assert after["stale"] is True
        assert after["last_error"]
        assert after["last_error_at"] is not None
        assert after["last_synced_at"] == before["last_synced_at"]
        assert after["positions"] == before["positions"]
        assert after["balances"] == before["balances"]
        kept = (await user.get(f"/api/accounts/{before['id']}/positions")).json()
        assert [(p["ticker"], p["quantity"]) for p in kept] == [
            (p["ticker"], p["quantity"]) for p in held
        ]

    async def test_a_new_user_has_none(self, api):
        user = await api.user()
        assert (await _accounts(user)) == {}


class TestGetAccount:
    async def test_one_account(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        listed = (await _accounts(user))["Schwab Individual Brokerage"]
        response = await user.get(f"/api/accounts/{listed['id']}")
        assert response.status_code == 200
        assert response.json() == listed

    async def test_an_unknown_account_is_404(self, api):
        user = await api.user()
        assert_error(await user.get("/api/accounts/999999"), 404, "not_found")

    async def test_a_non_numeric_id_names_the_field(self, api):
        user = await api.user()
        assert_error(
            await user.get("/api/accounts/abc"), 422, "validation_error", field="account_id"
        )


class TestAccountPositions:
    async def test_positions_carry_their_provider_and_as_of(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        individual = (await _accounts(user))["Schwab Individual Brokerage"]
        response = await user.get(f"/api/accounts/{individual['id']}/positions")
        assert response.status_code == 200
        positions = {p["ticker"]: p for p in response.json()}
        assert positions["AAPL"]["quantity"] == "50.00000000"
        assert len(positions) == individual["positions"]
        for position in positions.values():
            assert position["account_id"] == individual["id"]
            assert position["provider"] == "snaptrade"
            assert position["status"] == "active"
            assert "as_of" in position

    async def test_an_unknown_account_is_404(self, api):
        user = await api.user()
        assert_error(await user.get("/api/accounts/999999/positions"), 404, "not_found")


class TestAllPositions:
    async def test_every_position_per_account_and_provider(self, api):
        user = await api.user()
        await api.connect(user, "Charles Schwab", need_trading=True)
        await api.connect(user, "Chase")
        positions = (await user.get("/api/positions")).json()
        apple = sorted((p["provider"], p["quantity"]) for p in positions if p["ticker"] == "AAPL")
        assert apple == [("plaid", "100.00000000"), ("snaptrade", "50.00000000")]

    async def test_a_new_user_has_none(self, api):
        user = await api.user()
        response = await user.get("/api/positions")
        assert response.status_code == 200
        assert response.json() == []
