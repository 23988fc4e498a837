"""Public tokens, Items, reset_login and webhooks."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

pytestmark = [pytest.mark.asyncio, pytest.mark.usefixtures("check_webhooks")]


class TestSandboxPublicTokenCreate:
    async def test_creates_an_exchangeable_token(self, api):
        body = await api.ok(
            "/sandbox/public_token/create",
            {"institution_id": "ins_109508", "initial_products": ["investments", "transactions"]},
        )
        assert body["public_token"].startswith("public-sandbox-")

    @pytest.mark.parametrize(
        ("body", "code"),
        [
            ({"institution_id": "ins_109508"}, "MISSING_FIELDS"),
            ({"institution_id": "ins_109508", "initial_products": []}, "INVALID_FIELD"),
            ({"institution_id": "ins_109508", "initial_products": ["nope"]}, "INVALID_FIELD"),
            ({"institution_id": 109508, "initial_products": ["auth"]}, "INVALID_FIELD"),
            ({"institution_id": "ins_1", "initial_products": ["auth"], "x": 1}, "UNKNOWN_FIELDS"),
        ],
    )
    async def test_request_validation(self, api, body, code):
        err = await api.error("/sandbox/public_token/create", body)
        assert (err["error_type"], err["error_code"]) == ("INVALID_REQUEST", code)

    async def test_unknown_institution(self, api):
        err = await api.error(
            "/sandbox/public_token/create",
            {"institution_id": "ins_0", "initial_products": ["auth"]},
        )
        assert err["error_code"] == "INVALID_INSTITUTION"

    async def test_fidelity_has_no_investments(self, api):
        err = await api.error(
            "/sandbox/public_token/create",
            {"institution_id": "ins_12", "initial_products": ["investments"]},
        )
        assert (err["error_type"], err["error_code"]) == ("ITEM_ERROR", "PRODUCTS_NOT_SUPPORTED")

    async def test_wrong_override_credentials(self, api):
        err = await api.error(
            "/sandbox/public_token/create",
            {
                "institution_id": "ins_56",
                "initial_products": ["auth"],
                "options": {"override_username": "user_good", "override_password": "wrong"},
            },
        )
        assert err["error_code"] == "INVALID_CREDENTIALS"
        assert err["display_message"]


class TestExchange:
    async def test_public_token_is_single_use(self, api):
        public = await api.ok(
            "/sandbox/public_token/create",
            {"institution_id": "ins_56", "initial_products": ["investments"]},
        )
        first = await api.ok(
            "/item/public_token/exchange", public_token := {"public_token": public["public_token"]}
        )
        assert first["access_token"].startswith("access-sandbox-")
        assert len(first["item_id"]) == 37
        err = await api.error("/item/public_token/exchange", public_token)
        assert err["error_code"] == "INVALID_PUBLIC_TOKEN"

    async def test_public_token_expires_after_30_minutes(self, api, clock):
        public = await api.ok(
            "/sandbox/public_token/create",
            {"institution_id": "ins_56", "initial_products": ["auth"]},
        )
        clock.advance(31 * 60)
        err = await api.error(
            "/item/public_token/exchange", {"public_token": public["public_token"]}
        )
        assert err["error_code"] == "INVALID_PUBLIC_TOKEN"


class TestItem:
    async def test_get(self, api):
        item = await api.link_item("ins_109508", ["investments"], webhook="https://app.test/hook")
        body = await api.ok("/item/get", {"access_token": item["access_token"]})
        assert body["item"]["item_id"] == item["item_id"]
        assert body["item"]["institution_id"] == "ins_109508"
        assert body["item"]["webhook"] == "https://app.test/hook"
        assert body["item"]["billed_products"] == ["investments"]
        assert body["item"]["error"] is None
        assert body["status"]["investments"]["last_successful_update"]

    async def test_transactions_update_every_six_hours(self, api, clock):
        item = await api.link_item("ins_109508", ["transactions"])
        access = {"access_token": item["access_token"]}

        async def updated() -> datetime:
            body = await api.ok("/item/get", access)
            stamp = body["status"]["transactions"]["last_successful_update"]
            return datetime.fromisoformat(stamp.replace("Z", "+00:00"))

        linked = await updated()
        clock.advance(5 * 3600)
        assert await updated() == linked
        clock.advance(2 * 3600)
        assert await updated() == linked + timedelta(hours=6)
        clock.advance(40 * 86400)  # the login expires after 30 days: no update after that
        assert await updated() == linked + timedelta(days=30)

    async def test_remove_revokes_the_token(self, api):
        item = await api.link_item()
        access = {"access_token": item["access_token"]}
        await api.ok("/item/remove", {**access, "reason_code": "OTHER"})
        for path in ("/item/get", "/accounts/get", "/investments/holdings/get", "/item/remove"):
            err = await api.error(path, access)
            assert err["error_code"] == "INVALID_ACCESS_TOKEN"

    async def test_remove_rejects_bad_reason(self, api):
        item = await api.link_item()
        err = await api.error(
            "/item/remove", {"access_token": item["access_token"], "reason_code": "BORED"}
        )
        assert err["error_code"] == "INVALID_FIELD"

    async def test_reset_login(self, api):
        item = await api.link_item()
        access = {"access_token": item["access_token"]}
        await api.ok("/sandbox/item/reset_login", access)
        body = await api.ok("/item/get", access)
        assert body["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
        for path in (
            "/accounts/get",
            "/accounts/balance/get",
            "/investments/holdings/get",
            "/investments/refresh",
        ):
            err = await api.error(path, access)
            assert (err["error_type"], err["error_code"]) == ("ITEM_ERROR", "ITEM_LOGIN_REQUIRED")
        err = await api.error(
            "/investments/transactions/get",
            {**access, "start_date": "2026-01-01", "end_date": "2026-11-01"},
        )
        assert err["error_code"] == "ITEM_LOGIN_REQUIRED"

    async def test_reset_login_bad_token(self, api):
        err = await api.error("/sandbox/item/reset_login", {"access_token": "access-sandbox-x"})
        assert err["error_code"] == "INVALID_ACCESS_TOKEN"


class TestFireWebhook:
    async def test_holdings_default_update_is_queued(self, api, state):
        item = await api.link_item(webhook="https://app.test/hook")
        body = await api.ok(
            "/sandbox/item/fire_webhook",
            {
                "access_token": item["access_token"],
                "webhook_type": "HOLDINGS",
                "webhook_code": "DEFAULT_UPDATE",
            },
        )
        assert body["webhook_fired"] is True
        url, payload = state.webhooks[-1]
        assert url == "https://app.test/hook"
        assert payload["webhook_type"] == "HOLDINGS"
        assert payload["item_id"] == item["item_id"]
        assert payload["environment"] == "sandbox"
        status = await api.ok("/item/get", {"access_token": item["access_token"]})
        assert status["status"]["last_webhook"]["code_sent"] == "DEFAULT_UPDATE"

    @pytest.mark.parametrize(
        ("webhook_type", "code"),
        [
            ("HOLDINGS", "DEFAULT_UPDATE"),
            ("INVESTMENTS_TRANSACTIONS", "DEFAULT_UPDATE"),
            ("INVESTMENTS_TRANSACTIONS", "HISTORICAL_UPDATE"),
            ("ITEM", "ERROR"),
            ("ITEM", "LOGIN_REPAIRED"),
            ("ITEM", "NEW_ACCOUNTS_AVAILABLE"),
            ("ITEM", "PENDING_DISCONNECT"),
            ("ITEM", "PENDING_EXPIRATION"),
            ("ITEM", "USER_PERMISSION_REVOKED"),
        ],
    )
    async def test_every_supported_webhook_matches_the_spec(self, api, state, webhook_type, code):
        item = await api.link_item(webhook="https://app.test/hook")
        await api.ok(
            "/sandbox/item/fire_webhook",
            {
                "access_token": item["access_token"],
                "webhook_type": webhook_type,
                "webhook_code": code,
            },
        )
        assert state.webhooks[-1][1]["webhook_code"] == code

    async def test_item_error_webhook_carries_the_error(self, api, state):
        item = await api.link_item(webhook="https://app.test/hook")
        await api.ok(
            "/sandbox/item/fire_webhook",
            {"access_token": item["access_token"], "webhook_type": "ITEM", "webhook_code": "ERROR"},
        )
        assert state.webhooks[-1][1]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"

    async def test_needs_a_webhook_url(self, api):
        item = await api.link_item()
        err = await api.error(
            "/sandbox/item/fire_webhook",
            {"access_token": item["access_token"], "webhook_code": "DEFAULT_UPDATE"},
        )
        assert err["error_code"] == "SANDBOX_WEBHOOK_INVALID"

    async def test_needs_the_product(self, api):
        item = await api.link_item("ins_56", ["auth"], webhook="https://app.test/hook")
        err = await api.error(
            "/sandbox/item/fire_webhook",
            {
                "access_token": item["access_token"],
                "webhook_type": "HOLDINGS",
                "webhook_code": "DEFAULT_UPDATE",
            },
        )
        assert err["error_code"] == "SANDBOX_PRODUCT_NOT_ENABLED"

    async def test_unknown_code(self, api):
        item = await api.link_item(webhook="https://app.test/hook")
        err = await api.error(
            "/sandbox/item/fire_webhook",
            {
                "access_token": item["access_token"],
                "webhook_type": "HOLDINGS",
                "webhook_code": "NOPE",
            },
        )
        assert err["error_code"] == "INVALID_FIELD"


class TestWebhookUpdate:
    async def test_changes_the_url_and_acknowledges(self, api, state):
        item = await api.link_item(webhook="https://app.test/old")
        body = await api.ok(
            "/item/webhook/update",
            {"access_token": item["access_token"], "webhook": "https://app.test/new"},
        )
        assert body["item"]["webhook"] == "https://app.test/new"
        url, payload = state.webhooks[-1]
        assert url == "https://app.test/new"
        assert payload["webhook_code"] == "WEBHOOK_UPDATE_ACKNOWLEDGED"
        assert payload["new_webhook_url"] == "https://app.test/new"

    async def test_bad_token(self, api):
        err = await api.error(
            "/item/webhook/update", {"access_token": "access-sandbox-x", "webhook": "https://a.b"}
        )
        assert err["error_code"] == "INVALID_ACCESS_TOKEN"


async def test_items_need_login_again_after_30_days(api, clock):
    item = await api.link_item()
    access = {"access_token": item["access_token"]}
    clock.advance(29 * 86400)
    await api.ok("/accounts/get", access)
    clock.advance(1 * 86400)
    err = await api.error("/accounts/get", access)
    assert err["error_code"] == "ITEM_LOGIN_REQUIRED"
    body = await api.ok("/item/get", access)
    assert body["item"]["error"]["error_code"] == "ITEM_LOGIN_REQUIRED"
