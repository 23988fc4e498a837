"""One call per classified operation, against a sandbox served over a real socket.

`SNAPTRADE` and `PLAID` map every operation in `providers/operations.py` to a scenario: what
the test sets up first (with no faults), the call itself, and the ids that fill the operation's
path template, so a test can read the sandbox's own count for exactly that operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from brokerlink.providers.plaid import PlaidClient
from brokerlink.providers.snaptrade import SnapTradeClient

AAPL_LIMIT = {
    "action": "BUY",
    "symbol": "AAPL",
    "order_type": "Limit",
    "time_in_force": "GTC",
    "price": 1.0,
    "units": 1.0,
}


@dataclass
class SnapTradeWorld:
    """A fresh user with a trading connection, its account, an open order and a checked trade."""

    client: SnapTradeClient
    user_id: str = ""
    secret: str = ""
    ids: dict[str, str] = field(default_factory=dict)

    async def build(self) -> None:
        c = self.client
        self.user_id, self.secret = await c.register_user(f"retry-{uuid.uuid4().hex[:12]}")
        auth = await c.sandbox_create_connection(self.user_id, self.secret, "SCHWAB", "trade")
        accounts = await c.list_accounts(self.user_id, self.secret)
        account_id = next(a["id"] for a in accounts if a["brokerage_authorization"] == auth["id"])
        order = await c.place_order(
            self.user_id, self.secret, {"account_id": account_id, **AAPL_LIMIT}
        )
        impact = await c.order_impact(
            self.user_id, self.secret, {"account_id": account_id, **AAPL_LIMIT}
        )
        self.ids = {
            "authorization_id": auth["id"],
            "account_id": account_id,
            "order_id": order["brokerage_order_id"],
            "trade_id": impact["trade"]["id"],
        }


SnapTradeCall = Callable[[SnapTradeClient, SnapTradeWorld], Awaitable[Any]]


def _u(w: SnapTradeWorld) -> tuple[str, str]:
    return w.user_id, w.secret


SNAPTRADE: dict[str, SnapTradeCall] = {
    "ApiStatus_check": lambda c, w: c.api_status(),
    "ReferenceData_listAllBrokerages": lambda c, w: c.list_brokerages(),
    "Authentication_registerSnapTradeUser": lambda c, w: c.register_user(uuid.uuid4().hex),
    "Authentication_listSnapTradeUsers": lambda c, w: c.list_users(),
    "Authentication_deleteSnapTradeUser": lambda c, w: c.delete_user(w.user_id),
    "Authentication_resetSnapTradeUserSecret": lambda c, w: c.reset_user_secret(*_u(w)),
    "Authentication_loginSnapTradeUser": lambda c, w: c.login(*_u(w), broker="SCHWAB"),
    "Connections_listBrokerageAuthorizations": lambda c, w: c.list_authorizations(*_u(w)),
    "Connections_detailBrokerageAuthorization": lambda c, w: c.get_authorization(
        *_u(w), w.ids["authorization_id"]
    ),
    "Connections_refreshBrokerageAuthorization": lambda c, w: c.refresh_authorization(
        *_u(w), w.ids["authorization_id"]
    ),
    "Connections_deleteConnection": lambda c, w: c.delete_authorization(
        *_u(w), w.ids["authorization_id"]
    ),
    "Sandbox_createConnection": lambda c, w: c.sandbox_create_connection(*_u(w), "ALPACA"),
    "AccountInformation_listUserAccounts": lambda c, w: c.list_accounts(*_u(w)),
    "AccountInformation_getUserAccountDetails": lambda c, w: c.get_account(
        *_u(w), w.ids["account_id"]
    ),
    "ReferenceData_symbolSearchUserAccount": lambda c, w: c.search_account_symbols(
        *_u(w), w.ids["account_id"], "AAP"
    ),
    "AccountInformation_getUserAccountBalance": lambda c, w: c.get_balances(
        *_u(w), w.ids["account_id"]
    ),
    "AccountInformation_getAllAccountPositions": lambda c, w: c.get_positions(
        *_u(w), w.ids["account_id"]
    ),
    "AccountInformation_getUserAccountOrders": lambda c, w: c.list_orders(
        *_u(w), w.ids["account_id"]
    ),
    "AccountInformation_getUserAccountOrderDetail": lambda c, w: c.get_order(
        *_u(w), w.ids["account_id"], w.ids["order_id"]
    ),
    "AccountInformation_getAccountActivities": lambda c, w: c.list_activities(
        *_u(w), w.ids["account_id"]
    ),
    "Trading_getOrderImpact": lambda c, w: c.order_impact(
        *_u(w), {"account_id": w.ids["account_id"], **AAPL_LIMIT}
    ),
    "Trading_placeOrder": lambda c, w: c.place_checked_order(*_u(w), w.ids["trade_id"]),
    "Trading_placeForceOrder": lambda c, w: c.place_order(
        *_u(w), {"account_id": w.ids["account_id"], **AAPL_LIMIT}
    ),
    "Trading_cancelOrder": lambda c, w: c.cancel_order(
        *_u(w), w.ids["account_id"], w.ids["order_id"]
    ),
}


@dataclass
class PlaidWorld:
    """A linked investments Item (First Platypus Bank), a spare public token and a Link token."""

    client: PlaidClient
    access_token: str = ""
    public_token: str = ""
    link_token: str = ""
    webhook_key_id: str = ""

    async def build(self) -> None:
        c = self.client
        created = await c.sandbox_public_token_create("ins_109508", ["investments"])
        exchanged = await c.item_public_token_exchange(created["public_token"])
        self.access_token = exchanged["access_token"]
        self.public_token = (await c.sandbox_public_token_create("ins_109508"))["public_token"]
        self.link_token = (await c.link_token_create(client_user_id="retry-user"))["link_token"]
        async with httpx.AsyncClient(base_url=c.base_url) as admin:
            status = await admin.get("/sandbox-admin/status")
            self.webhook_key_id = status.raise_for_status().json()["webhook_key_id"]


PlaidCall = Callable[[PlaidClient, PlaidWorld], Awaitable[Any]]

PLAID: dict[str, PlaidCall] = {
    "/link/token/create": lambda c, w: c.link_token_create(client_user_id="retry-user"),
    "/link/token/get": lambda c, w: c.link_token_get(w.link_token),
    "/item/public_token/exchange": lambda c, w: c.item_public_token_exchange(w.public_token),
    "/sandbox/public_token/create": lambda c, w: c.sandbox_public_token_create("ins_109508"),
    "/sandbox/item/reset_login": lambda c, w: c.request(
        "/sandbox/item/reset_login", {"access_token": w.access_token}
    ),
    "/item/get": lambda c, w: c.item_get(w.access_token),
    "/item/remove": lambda c, w: c.item_remove(w.access_token),
    "/accounts/get": lambda c, w: c.accounts_get(w.access_token),
    "/accounts/balance/get": lambda c, w: c.accounts_balance_get(w.access_token),
    "/investments/holdings/get": lambda c, w: c.investments_holdings_get(w.access_token),
    "/investments/refresh": lambda c, w: c.investments_refresh(w.access_token),
    "/investments/transactions/get": lambda c, w: c.investments_transactions_get(
        w.access_token, "2024-01-01", "2024-12-31"
    ),
    "/institutions/search": lambda c, w: c.institutions_search("Platypus"),
    "/institutions/get_by_id": lambda c, w: c.institutions_get_by_id("ins_109508"),
    "/webhook_verification_key/get": lambda c, w: c.webhook_verification_key_get(w.webhook_key_id),
}
