"""Endpoints, paths and bodies; logging without secrets; errors never read as empty results."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import httpx
import pytest
import structlog

from brokerlink.errors import InvalidIdentifier
from brokerlink.log import _redact_processor
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.snaptrade import (
    SnapTradeAuthError,
    SnapTradeClient,
    SnapTradeMalformedResponse,
    SnapTradeNotFound,
    SnapTradeRateLimited,
)

from .conftest import ACCOUNT_ID, CLIENT_ID, CONSUMER_KEY, USER_ID, USER_SECRET, json_response


def _recorder(answer):
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request) if callable(answer) else json_response(200, answer)

    return seen, handler


def _query(request: httpx.Request) -> list[tuple[str, str]]:
    return parse_qsl(request.url.query.decode(), keep_blank_values=True)


@pytest.mark.asyncio
class TestEndpoints:
    @pytest.mark.parametrize(
        ("call", "answer", "method", "path", "user", "body"),
        [
            (lambda c: c.list_users(), ["a"], "GET", "/snapTrade/listUsers", False, None),
            (
                lambda c: c.delete_user("u9"),
                {"status": "deleted"},
                "DELETE",
                "/snapTrade/deleteUser",
                False,
                None,
            ),
            (
                lambda c: c.reset_user_secret("u9", "old"),
                {"userId": "u9", "userSecret": "new"},
                "POST",
                "/snapTrade/resetUserSecret",
                False,
                {"userId": "u9", "userSecret": "old"},
            ),
            (
                lambda c: c.list_authorizations(USER_ID, USER_SECRET),
                [],
                "GET",
                "/authorizations",
                True,
                None,
            ),
            (
                lambda c: c.get_authorization(USER_ID, USER_SECRET, "auth-1"),
                {"id": "auth-1"},
                "GET",
                "/authorizations/auth-1",
                True,
                None,
            ),
            (
                lambda c: c.refresh_authorization(USER_ID, USER_SECRET, "auth-1"),
                {"detail": "ok"},
                "POST",
                "/authorizations/auth-1/refresh",
                True,
                None,
            ),
            (
                lambda c: c.delete_authorization(USER_ID, USER_SECRET, "auth-1"),
                {"detail": "ok"},
                "DELETE",
                "/connection/auth-1",
                True,
                None,
            ),
            (
                lambda c: c.get_account(USER_ID, USER_SECRET, ACCOUNT_ID),
                {"id": ACCOUNT_ID},
                "GET",
                f"/accounts/{ACCOUNT_ID}",
                True,
                None,
            ),
            (
                lambda c: c.get_balances(USER_ID, USER_SECRET, ACCOUNT_ID),
                [],
                "GET",
                f"/accounts/{ACCOUNT_ID}/balances",
                True,
                None,
            ),
            (
                lambda c: c.get_positions(USER_ID, USER_SECRET, ACCOUNT_ID),
                {"results": []},
                "GET",
                f"/accounts/{ACCOUNT_ID}/positions/all",
                True,
                None,
            ),
            (
                lambda c: c.list_activities(USER_ID, USER_SECRET, ACCOUNT_ID),
                {"data": []},
                "GET",
                f"/accounts/{ACCOUNT_ID}/activities",
                True,
                None,
            ),
            (
                lambda c: c.get_order(USER_ID, USER_SECRET, ACCOUNT_ID, "B1"),
                {"status": "x"},
                "POST",
                f"/accounts/{ACCOUNT_ID}/orders/details",
                True,
                {"brokerage_order_id": "B1"},
            ),
            (
                lambda c: c.order_impact(USER_ID, USER_SECRET, {"account_id": ACCOUNT_ID}),
                {},
                "POST",
                "/trade/impact",
                True,
                {"account_id": ACCOUNT_ID},
            ),
            (
                lambda c: c.place_checked_order(USER_ID, USER_SECRET, "t-1"),
                {},
                "POST",
                "/trade/t-1",
                True,
                None,
            ),
            (
                lambda c: c.cancel_order(USER_ID, USER_SECRET, ACCOUNT_ID, "B1"),
                {},
                "POST",
                f"/accounts/{ACCOUNT_ID}/trading/cancel",
                True,
                {"brokerage_order_id": "B1"},
            ),
            (lambda c: c.list_brokerages(), [], "GET", "/brokerages", False, None),
            (
                lambda c: c.sandbox_create_connection(USER_ID, USER_SECRET, "SCHWAB", "trade"),
                {"id": "a"},
                "POST",
                "/sandbox/connections",
                True,
                {"userId": USER_ID, "broker": "SCHWAB", "connectionType": "trade"},
            ),
        ],
    )
    async def test_request_shape(self, make_client, call, answer, method, path, user, body):
        seen, handler = _recorder(answer)
        async with make_client(handler) as client:
            await call(client)
        (request,) = seen
        assert request.method == method
        assert request.url.path == path
        names = [k for k, _ in _query(request)]
        assert names[-2:] == ["clientId", "timestamp"]
        assert ("userSecret" in names) is user
        assert request.headers["Signature"]
        if body is None:
            assert request.content == b""
        else:
            assert json.loads(request.content) == body

    async def test_register_user_returns_pair(self, make_client):
        seen, handler = _recorder({"userId": "u1", "userSecret": "s1"})
        async with make_client(handler) as client:
            assert await client.register_user("u1") == ("u1", "s1")

    async def test_login_options(self, make_client):
        seen, handler = _recorder({"redirectURI": "https://portal/x", "sessionId": "sess"})
        async with make_client(handler) as client:
            link = await client.login(
                USER_ID,
                USER_SECRET,
                broker="SCHWAB",
                immediate_redirect=True,
                custom_redirect="https://app/done",
                reconnect="auth-1",
                connection_type="trade-if-available",
            )
        assert link.redirect_uri == "https://portal/x"
        assert link.session_id == "sess"
        assert json.loads(seen[0].content) == {
            "broker": "SCHWAB",
            "immediateRedirect": True,
            "customRedirect": "https://app/done",
            "reconnect": "auth-1",
            "connectionType": "trade-if-available",
        }

    async def test_path_ids_validated(self, make_client):
        seen, handler = _recorder({})
        async with make_client(handler) as client:
            with pytest.raises(InvalidIdentifier, match="valid SnapTrade id") as refused:
                await client.get_account(USER_ID, USER_SECRET, "../snapTrade/deleteUser")
        assert refused.value.status_code == 422  # the caller's fault, never a 500
        assert seen == []


@pytest.mark.asyncio
class TestNeverEmptyOnError:
    async def test_error_raises_instead_of_empty_list(self, make_client):
        def answer(request):
            return json_response(404, {"detail": "nope", "status_code": 404, "code": "1011"})

        seen, handler = _recorder(answer)
        async with make_client(handler) as client:
            with pytest.raises(SnapTradeNotFound):
                await client.list_accounts(USER_ID, USER_SECRET)

    @pytest.mark.parametrize(
        ("content", "ctype"),
        [(b"<html>oops</html>", "text/html"), (b'{"not": "a list"}', "application/json")],
    )
    async def test_wrong_shape_is_malformed(self, make_client, content, ctype):
        def answer(request):
            return httpx.Response(200, content=content, headers={"Content-Type": ctype})

        seen, handler = _recorder(answer)
        async with make_client(handler) as client:
            with pytest.raises(SnapTradeMalformedResponse):
                await client.list_accounts(USER_ID, USER_SECRET)

    async def test_missing_secret_in_register_answer(self, make_client):
        seen, handler = _recorder({"userId": "u1"})
        async with make_client(handler) as client:
            with pytest.raises(SnapTradeMalformedResponse) as info:
                await client.register_user("u1")
        assert info.value.field == "userSecret"


@pytest.mark.asyncio
class TestLogging:
    async def test_event_fields_and_no_secrets(self, make_client):
        def answer(request):
            if request.url.path == "/accounts":
                return json_response(200, [], {"X-Request-ID": "req-42"})
            return json_response(
                401, {"detail": "Invalid userSecret=" + USER_SECRET, "code": "1083"}
            )

        seen, handler = _recorder(answer)
        with structlog.testing.capture_logs(processors=[_redact_processor]) as logs:
            async with make_client(handler) as client:
                await client.list_accounts(USER_ID, USER_SECRET)
                with pytest.raises(SnapTradeAuthError) as info:
                    await client.list_authorizations(USER_ID, USER_SECRET)
        ok, ok_call, failed, failed_call = logs
        assert (ok_call["event"], ok_call["result"]) == ("provider.call", "ok")
        assert (failed_call["result"], failed_call["error_code"]) == ("UserSecretInvalid", "1083")
        assert ok["event"] == "snaptrade.accounts.list"
        assert ok["operation"] == "AccountInformation_listUserAccounts"
        assert ok["status"] == 200
        assert ok["request_id"] == "req-42"
        assert ok["attempt"] == 1
        assert "latency_ms" in ok
        assert failed["event"] == "snaptrade.authorizations.list"
        assert failed["status"] == 401
        assert failed["code"] == "1083"
        text = repr(logs) + str(info.value)
        for secret in (USER_SECRET, CONSUMER_KEY, seen[0].headers["Signature"]):
            assert secret not in text

    async def test_repr_hides_key(self):
        client = SnapTradeClient(CLIENT_ID, CONSUMER_KEY)
        try:
            assert CONSUMER_KEY not in repr(client)
            assert CONSUMER_KEY not in repr(vars(client).get("__repr__", ""))
        finally:
            await client.aclose()


@pytest.mark.asyncio
class TestRateLimiter:
    async def test_client_limit_spreads_calls(self, make_client, fake_time):
        seen, handler = _recorder([])
        async with make_client(handler, rate_limit_per_minute=3) as client:
            for _ in range(7):
                await client.list_accounts(USER_ID, USER_SECRET)
        stamps = [int(r.url.params["timestamp"]) - 1_700_000_000 for r in seen]
        assert stamps == [0, 0, 0, 60, 60, 60, 120]
        assert fake_time.sleeps == [60.0, 60.0]

    async def test_account_limit_is_per_account(self, make_client, fake_time):
        seen, handler = _recorder([])
        async with make_client(
            handler, rate_limit_per_minute=100, account_rate_limit_per_minute=2
        ) as client:
            for account in ("a1", "a1", "a2", "a2", "a1"):
                await client.get_balances(USER_ID, USER_SECRET, account)
        assert fake_time.sleeps == [60.0]
        assert int(seen[-1].url.params["timestamp"]) - 1_700_000_000 == 60

    async def test_zero_turns_limit_off(self, make_client, fake_time):
        seen, handler = _recorder([])
        async with make_client(handler, rate_limit_per_minute=0) as client:
            for _ in range(300):
                await client.list_brokerages()
        assert fake_time.sleeps == []


@pytest.mark.asyncio
class TestServerLimitHeaders:
    async def test_exhausted_window_holds_next_call(self, make_client, fake_time):
        calls = 0

        def answer(request):
            nonlocal calls
            calls += 1
            headers = (
                {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"} if calls == 1 else {}
            )
            return json_response(200, [], headers)

        seen, handler = _recorder(answer)
        async with make_client(handler) as client:
            await client.list_accounts(USER_ID, USER_SECRET)
            await client.list_accounts(USER_ID, USER_SECRET)
        assert fake_time.sleeps == [30.0]

    async def test_account_window_only_holds_that_account(self, make_client, fake_time):
        def answer(request):
            if "a1" in request.url.path:
                return json_response(
                    200,
                    [],
                    {"X-RateLimit-Account-Remaining": "0", "X-RateLimit-Account-Reset": "9"},
                )
            return json_response(200, [])

        seen, handler = _recorder(answer)
        async with make_client(handler, account_rate_limit_per_minute=10) as client:
            await client.get_balances(USER_ID, USER_SECRET, "a1")
            await client.get_balances(USER_ID, USER_SECRET, "a2")
            assert fake_time.sleeps == []
            await client.get_balances(USER_ID, USER_SECRET, "a1")
        assert fake_time.sleeps == [9.0]


class TestFromSettings:
    @pytest.mark.asyncio
    async def test_builds_from_settings(self):
        from brokerlink.config import Settings

        settings = Settings(
            SNAPTRADE_CLIENT_ID="CID",
            SNAPTRADE_CONSUMER_KEY="KEY",
            SNAPTRADE_MAX_RETRIES=5,
            SNAPTRADE_MAX_BACKOFF_SECONDS=7,
        )
        async with SnapTradeClient.from_settings(settings) as client:
            assert client.base_url == "https://api.snaptrade.com"
            assert client.retry.max_retries == 5
            assert client.retry.max_delay == 7

    def test_missing_credentials(self):
        from brokerlink.config import Settings
        from brokerlink.errors import ConfigurationError

        with pytest.raises(ConfigurationError):
            SnapTradeClient.from_settings(Settings())


@pytest.mark.asyncio
class TestAccount429:
    async def test_account_429_holds_only_that_account(self, make_client, fake_time):
        calls = 0

        def answer(request):
            nonlocal calls
            calls += 1
            if calls == 1:
                return json_response(
                    429,
                    {"detail": "throttled", "status_code": 429, "code": "0000"},
                    {"X-RateLimit-Account-Remaining": "0", "X-RateLimit-Account-Reset": "20"},
                )
            return json_response(200, [])

        seen, handler = _recorder(answer)
        async with make_client(
            handler, retry=RetryPolicy(max_retries=0), account_rate_limit_per_minute=10
        ) as client:
            with pytest.raises(SnapTradeRateLimited) as info:
                await client.get_balances(USER_ID, USER_SECRET, "a1")
            assert info.value.retry_after == 20
            await client.get_balances(USER_ID, USER_SECRET, "a2")
            await client.list_accounts(USER_ID, USER_SECRET)
            assert fake_time.sleeps == []
            await client.get_balances(USER_ID, USER_SECRET, "a1")
        assert fake_time.sleeps == [20.0]
