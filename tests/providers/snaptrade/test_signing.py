"""Our signatures equal the documented algorithm's and the official SDK's, request for request."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import httpx
import pytest

from brokerlink.providers.snaptrade import SnapTradeClient
from brokerlink.providers.snaptrade.signing import build_query, canonical_payload, sign

from .conftest import CLIENT_ID, CONSUMER_KEY, FakeTime, json_response

snaptrade_client = pytest.importorskip("snaptrade_client")


class TestSign:
    # Vectors from ../shared/providers/snaptrade.md §1.3 (computed with the documented algorithm).
    @pytest.mark.parametrize(
        ("key", "path", "query", "body", "expected"),
        [
            (
                "YOUR_CONSUMER_KEY",
                "/api/v1/snapTrade/registerUser",
                "clientId=PASSIVTEST&timestamp=1635790389",
                {"userId": "new_user_123"},
                "6JrD8EpuZQByuU91cPYud+88mbEEUDnZ11+acNIS53U=",
            ),
            (
                "YOUR_CONSUMER_KEY",
                "/snapTrade/registerUser",
                "clientId=PASSIVTEST&timestamp=1635790389",
                {"userId": "new_user_123"},
                "rCFR9ModgVUivrbT9Und9+4OK7PsmWYWzXkpVxuDvvY=",
            ),
            (
                "consumer_key",
                "/accounts",
                "timestamp=1700000000",
                None,
                "3VkE1AkN6sr1yxWbl8JA7v9O9MFXfMFDVgzhC9GhptU=",
            ),
            (
                "YOUR_CONSUMER_KEY",
                "/api/v1/accounts",
                "userId=u1&userSecret=s1&clientId=PASSIVTEST&timestamp=1635790389",
                None,
                "nOTV8OnXtmpwoHTQntbqKfkPRIFTfo543PnYBVkdwFk=",
            ),
        ],
    )
    def test_documented_vectors(self, key, path, query, body, expected):
        assert sign(key, path, query, body) == expected

    def test_empty_body_signs_as_null(self):
        assert sign("k", "/p", "q=1", {}) == sign("k", "/p", "q=1", None)
        assert '"content":null' in canonical_payload("/p", "q=1", {})

    def test_nested_keys_sorted(self):
        text = canonical_payload("/p", "", {"b": {"z": 1, "a": 2}, "a": [{"y": 1, "x": 2}]})
        assert text == '{"content":{"a":[{"x":2,"y":1}],"b":{"a":2,"z":1}},"path":"/p","query":""}'

    def test_matches_sdk_compute(self):
        from snaptrade_client.request_after_hook import compute_request_signature

        body = {"substring": "AAPL", "nested": {"b": 1, "a": "é"}}
        path = "/symbols?clientId=C&timestamp=1715123456"
        assert sign("key", "/symbols", "clientId=C&timestamp=1715123456", body) == (
            compute_request_signature(path=path, consumer_key="key", body=body)
        )

    def test_build_query_keeps_order_and_plain_ids(self):
        query = build_query([("userId", "u-1"), ("userSecret", "ab:c"), ("clientId", "C")])
        assert query == "userId=u-1&userSecret=ab:c&clientId=C"
        assert build_query([("a", "x&y z")]) == "a=x%26y%20z"


class _Stop(Exception):
    pass


def _sdk_request(monkeypatch, call) -> dict:
    """Run one SDK call with the wire cut: capture the URL, headers and body it would send."""
    import snaptrade_client.request_before_url_hook as before_hook
    import snaptrade_client.rest as rest

    captured: dict = {}

    def fake_request(self, method, url, headers=None, fields=None, body=None, **_kw):
        captured.update(method=method, url=url, headers=dict(headers or {}), body=body)
        raise _Stop

    monkeypatch.setattr(rest.RESTClientObject, "request", fake_request)
    monkeypatch.setattr(before_hook.time, "time", lambda: 1_700_000_000.25)
    from snaptrade_client import SnapTrade
    from snaptrade_client.auth import SnapTradeAuth

    sdk = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key=CONSUMER_KEY, client_id=CLIENT_ID),
        host="https://api.snaptrade.com",
    )
    with pytest.raises(_Stop):
        call(sdk)
    return captured


async def _our_request(method_name: str, *args, **kwargs) -> httpx.Request:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return json_response(200, {})

    clock = FakeTime(1_700_000_000.25)
    async with SnapTradeClient(
        CLIENT_ID, CONSUMER_KEY, transport=httpx.MockTransport(handler), clock=clock
    ) as client:
        try:
            await getattr(client, method_name)(*args, **kwargs)
        except Exception:  # noqa: BLE001 - the answer's shape is irrelevant here
            pass
    return seen[0]


ACCOUNT = "917c8734-8470-4a3e-a18f-57c3f2ee6631"
ORDER_ID = "5f7c1a8e-0c7e-4e53-9b7a-8d6a3c2b1f00"

SAME_REQUESTS = [
    pytest.param(
        lambda sdk: sdk.account_information.list_user_accounts(user_id="u1", user_secret="s1"),
        ("list_accounts", ("u1", "s1"), {}),
        id="list_accounts",
    ),
    pytest.param(
        lambda sdk: sdk.authentication.register_snap_trade_user(user_id="u1"),
        ("register_user", ("u1",), {}),
        id="register_user",
    ),
    pytest.param(
        lambda sdk: sdk.account_information.get_all_account_positions(
            user_id="u1", user_secret="s1", account_id=ACCOUNT
        ),
        ("get_positions", ("u1", "s1", ACCOUNT), {}),
        id="positions_all",
    ),
    pytest.param(
        lambda sdk: sdk.account_information.get_user_account_orders(
            user_id="u1", user_secret="s1", account_id=ACCOUNT, state="all", days=30
        ),
        ("list_orders", ("u1", "s1", ACCOUNT), {"state": "all", "days": 30}),
        id="orders",
    ),
    pytest.param(
        lambda sdk: sdk.authentication.login_snap_trade_user(
            user_id="u1",
            user_secret="s1",
            broker="SCHWAB",
            custom_redirect="https://app.example/done",
            connection_type="trade",
        ),
        (
            "login",
            ("u1", "s1"),
            {
                "broker": "SCHWAB",
                "custom_redirect": "https://app.example/done",
                "connection_type": "trade",
            },
        ),
        id="login",
    ),
    pytest.param(
        lambda sdk: sdk.trading.place_force_order(
            user_id="u1",
            user_secret="s1",
            account_id=ACCOUNT,
            action="BUY",
            order_type="Limit",
            time_in_force="Day",
            symbol="AAPL",
            price=187.25,
            units=1.5,
            client_order_id=ORDER_ID,
        ),
        (
            "place_order",
            (
                "u1",
                "s1",
                {
                    "account_id": ACCOUNT,
                    "action": "BUY",
                    "order_type": "Limit",
                    "time_in_force": "Day",
                    "symbol": "AAPL",
                    "price": 187.25,
                    "units": 1.5,
                    "client_order_id": ORDER_ID,
                },
            ),
            {},
        ),
        id="place_order",
    ),
    pytest.param(
        lambda sdk: sdk.trading.cancel_order(
            user_id="u1", user_secret="s1", account_id=ACCOUNT, brokerage_order_id="B-1"
        ),
        ("cancel_order", ("u1", "s1", ACCOUNT, "B-1"), {}),
        id="cancel_order",
    ),
    pytest.param(
        lambda sdk: sdk.connections.refresh_brokerage_authorization(
            user_id="u1", user_secret="s1", authorization_id=ACCOUNT
        ),
        ("refresh_authorization", ("u1", "s1", ACCOUNT), {}),
        id="refresh",
    ),
]


@pytest.mark.asyncio
class TestSameAsSdk:
    @pytest.mark.parametrize(("sdk_call", "ours"), SAME_REQUESTS)
    async def test_same_url_and_signature(self, monkeypatch, sdk_call, ours):
        sdk = _sdk_request(monkeypatch, sdk_call)
        method_name, args, kwargs = ours
        request = await _our_request(method_name, *args, **kwargs)

        assert request.method == sdk["method"]
        assert str(request.url) == sdk["url"]
        assert request.headers["Signature"] == sdk["headers"]["Signature"]
        if sdk["body"] is None:
            assert request.content == b""
        else:
            assert json.loads(request.content) == json.loads(sdk["body"])

    async def test_api_v1_prefix_signs_full_path(self):
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return json_response(200, [])

        clock = FakeTime(1_635_790_389)
        async with SnapTradeClient(
            "PASSIVTEST",
            "YOUR_CONSUMER_KEY",
            base_url="https://api.snaptrade.com/api/v1/",
            transport=httpx.MockTransport(handler),
            clock=clock,
        ) as client:
            await client.list_accounts("u1", "s1")
        url = urlsplit(str(seen[0].url))
        assert url.path == "/api/v1/accounts"
        assert url.query == "userId=u1&userSecret=s1&clientId=PASSIVTEST&timestamp=1635790389"
        assert seen[0].headers["Signature"] == "nOTV8OnXtmpwoHTQntbqKfkPRIFTfo543PnYBVkdwFk="

    async def test_status_is_unsigned(self):
        seen: list[httpx.Request] = []

        def handler(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return json_response(200, {"version": 1, "timestamp": "x", "online": True})

        async with SnapTradeClient(
            CLIENT_ID, CONSUMER_KEY, transport=httpx.MockTransport(handler)
        ) as c:
            assert (await c.api_status())["online"] is True
        assert "Signature" not in seen[0].headers
        assert seen[0].url.query == b""
