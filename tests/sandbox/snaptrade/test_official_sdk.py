"""The official `snaptrade_client` SDK against the sandbox served by uvicorn on loopback.

The SDK is an independent oracle for signing and wire shapes: it signs with its own code and
deserialises responses with its own generated models.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from brokerlink.sandbox.snaptrade import create_app
from brokerlink.sandbox.snaptrade.signing import expected_signature
from tests.fixtures.uvicorn_thread import serve_in_thread

snaptrade_client = pytest.importorskip("snaptrade_client")

CLIENT_ID = "SDK-CLIENT"
CONSUMER_KEY = "sdk-consumer-key"


@pytest.fixture
def served() -> Iterator[str]:
    """The sandbox under uvicorn in a background thread; yields http://127.0.0.1:PORT."""
    with serve_in_thread(create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY)) as base_url:
        yield base_url


def _sandbox_connect(base: str, user_id: str, secret: str, broker: str) -> dict:
    """The sandbox-only route, signed the same way the SDK signs real ones."""
    path = "/sandbox/connections"
    query = urlencode(
        {
            "userId": user_id,
            "userSecret": secret,
            "clientId": CLIENT_ID,
            "timestamp": str(int(time.time())),
        }
    )
    body = {"broker": broker, "connectionType": "trade"}
    signature = expected_signature(CONSUMER_KEY, path, query, body)
    r = httpx.post(
        f"{base}{path}?{query}",
        content=json.dumps(body),
        headers={"Signature": signature, "Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_sdk_round_trip(served):
    from snaptrade_client import SnapTrade, SnapTradeAuth

    st = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key=CONSUMER_KEY, client_id=CLIENT_ID),
        host=served,
    )
    status = st.api_status.check()
    assert status.body["online"] is True

    registered = st.authentication.register_snap_trade_user(user_id="sdk-user")
    user_id = registered.body["userId"]
    secret = registered.body["userSecret"]
    assert user_id == "sdk-user"

    login = st.authentication.login_snap_trade_user(
        user_id=user_id,
        user_secret=secret,
        broker="SCHWAB",
        connection_type="trade",
        custom_redirect="https://app.test/done",
    )
    assert login.body["redirectURI"].startswith(f"{served}/portal/connect?")

    auth = _sandbox_connect(served, user_id, secret, "SCHWAB")
    auths = st.connections.list_brokerage_authorizations(user_id=user_id, user_secret=secret)
    assert [a["id"] for a in auths.body] == [auth["id"]]

    accounts = st.account_information.list_user_accounts(user_id=user_id, user_secret=secret)
    assert accounts.body
    account_id = accounts.body[0]["id"]

    positions = st.account_information.get_all_account_positions(
        account_id=account_id, user_id=user_id, user_secret=secret
    )
    assert positions.body["results"]

    balances = st.account_information.get_user_account_balance(
        account_id=account_id, user_id=user_id, user_secret=secret
    )
    assert balances.body[0]["currency"]["code"] == "USD"

    holdings = st.account_information.get_user_holdings(
        account_id=account_id, user_id=user_id, user_secret=secret
    )
    assert holdings.body["account"]["id"] == account_id

    symbol = st.reference_data.get_symbols_by_ticker(query="AAPL").body
    order = st.trading.place_force_order(
        account_id=account_id,
        action="BUY",
        universal_symbol_id=symbol["id"],
        order_type="Market",
        time_in_force="Day",
        units=1.0,
        user_id=user_id,
        user_secret=secret,
    )
    assert order.body["status"] == "EXECUTED"

    refreshed = st.connections.refresh_brokerage_authorization(
        authorization_id=auth["id"], user_id=user_id, user_secret=secret
    )
    assert refreshed.body["detail"]


def test_sdk_with_api_prefix_host(served):
    # The SDK signs the path without the host's /api/v1; the sandbox accepts both forms.
    from snaptrade_client import SnapTrade, SnapTradeAuth

    st = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key=CONSUMER_KEY, client_id=CLIENT_ID),
        host=f"{served}/api/v1",
    )
    brokerages = st.reference_data.list_all_brokerages()
    assert {b["slug"] for b in brokerages.body} >= {"SCHWAB", "FIDELITY"}


def test_sdk_wrong_key_is_refused(served):
    from snaptrade_client import SnapTrade, SnapTradeAuth
    from snaptrade_client.exceptions import ApiException

    st = SnapTrade(
        auth=SnapTradeAuth.commercial_api_key(consumer_key="wrong", client_id=CLIENT_ID),
        host=served,
    )
    with pytest.raises(ApiException) as info:
        st.reference_data.list_all_brokerages()
    assert info.value.status == 401
