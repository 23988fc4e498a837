"""Every provider operation brokerlink calls, and what a second attempt of it would cost.

Both clients look an operation up here before sending it and pass its `Kind` to the one retry
decision (`RetryPolicy.should_retry`):

- `IDEMPOTENT`: reads, and writes whose repetition is harmless (another Link token, another
  portal link). Retried on 408/425/429/5xx, timeouts and network errors.
- `BILLED`: the provider charges each call it processes. Never sent twice once it may have
  reached the provider: a lost answer would be paid again.
- `SINGLE_USE`: consumes or changes something (a public token, a user secret, an order, a
  deletion). A second attempt after a lost answer fails or acts twice.

Only an error that proves the request never left (connect error, connect or pool timeout) is
retried for every kind. An operation not in the table raises `UnknownOperation`: a new call
must be classified before it can be sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from brokerlink.domain.enums import Provider

__all__ = [
    "PLAID_OPERATIONS",
    "SNAPTRADE_OPERATIONS",
    "Kind",
    "Operation",
    "UnknownOperation",
    "plaid_operation",
    "snaptrade_operation",
]


class Kind(StrEnum):
    IDEMPOTENT = "idempotent"
    BILLED = "billed"
    SINGLE_USE = "single-use"


class UnknownOperation(LookupError):
    """A client was asked to send an operation the table does not classify (a bug)."""


@dataclass(frozen=True)
class Operation:
    provider: Provider
    name: str  # SnapTrade's operationId; Plaid's path
    method: str
    path: str  # template; `{…}` are ids
    kind: Kind


def _table(provider: Provider, rows: list[tuple[str, str, str, Kind]]) -> Mapping[str, Operation]:
    table: dict[str, Operation] = {}
    for name, method, path, kind in rows:
        if name in table:
            raise ValueError(f"{provider.value} operation {name} listed twice")
        table[name] = Operation(provider, name, method, path, kind)
    return MappingProxyType(table)


_I, _B, _S = Kind.IDEMPOTENT, Kind.BILLED, Kind.SINGLE_USE

SNAPTRADE_OPERATIONS: Mapping[str, Operation] = _table(
    Provider.SNAPTRADE,
    [
        ("ApiStatus_check", "GET", "/", _I),
        ("ReferenceData_listAllBrokerages", "GET", "/brokerages", _I),
        ("Authentication_registerSnapTradeUser", "POST", "/snapTrade/registerUser", _S),
        ("Authentication_listSnapTradeUsers", "GET", "/snapTrade/listUsers", _I),
        ("Authentication_deleteSnapTradeUser", "DELETE", "/snapTrade/deleteUser", _S),
        ("Authentication_resetSnapTradeUserSecret", "POST", "/snapTrade/resetUserSecret", _S),
        ("Authentication_loginSnapTradeUser", "POST", "/snapTrade/login", _I),
        ("Connections_listBrokerageAuthorizations", "GET", "/authorizations", _I),
        (
            "Connections_detailBrokerageAuthorization",
            "GET",
            "/authorizations/{authorization_id}",
            _I,
        ),
        (
            "Connections_refreshBrokerageAuthorization",
            "POST",
            "/authorizations/{authorization_id}/refresh",
            _B,
        ),
        ("Connections_deleteConnection", "DELETE", "/connection/{authorization_id}", _S),
        ("Sandbox_createConnection", "POST", "/sandbox/connections", _S),
        ("AccountInformation_listUserAccounts", "GET", "/accounts", _I),
        ("AccountInformation_getUserAccountDetails", "GET", "/accounts/{account_id}", _I),
        ("ReferenceData_symbolSearchUserAccount", "POST", "/accounts/{account_id}/symbols", _I),
        (
            "AccountInformation_getUserAccountBalance",
            "GET",
            "/accounts/{account_id}/balances",
            _I,
        ),
        (
            "AccountInformation_getAllAccountPositions",
            "GET",
            "/accounts/{account_id}/positions/all",
            _I,
        ),
        ("AccountInformation_getUserAccountOrders", "GET", "/accounts/{account_id}/orders", _I),
        (
            "AccountInformation_getUserAccountOrderDetail",
            "POST",
            "/accounts/{account_id}/orders/details",
            _I,
        ),
        (
            "AccountInformation_getAccountActivities",
            "GET",
            "/accounts/{account_id}/activities",
            _I,
        ),
        ("Trading_getOrderImpact", "POST", "/trade/impact", _I),
        ("Trading_placeOrder", "POST", "/trade/{trade_id}", _S),
        ("Trading_placeForceOrder", "POST", "/trade/place", _S),
        ("Trading_cancelOrder", "POST", "/accounts/{account_id}/trading/cancel", _S),
    ],
)

PLAID_OPERATIONS: Mapping[str, Operation] = _table(
    Provider.PLAID,
    [
        (path, "POST", path, kind)
        for path, kind in (
            ("/link/token/create", _I),
            ("/link/token/get", _I),
            ("/item/public_token/exchange", _S),
            ("/sandbox/public_token/create", _S),
            ("/sandbox/item/reset_login", _S),
            ("/item/get", _I),
            ("/item/remove", _S),
            ("/accounts/get", _I),
            ("/accounts/balance/get", _B),
            ("/investments/holdings/get", _I),
            ("/investments/refresh", _B),
            ("/investments/transactions/get", _I),
            ("/institutions/search", _I),
            ("/institutions/get_by_id", _I),
            ("/webhook_verification_key/get", _I),
        )
    ],
)


def snaptrade_operation(name: str) -> Operation:
    try:
        return SNAPTRADE_OPERATIONS[name]
    except KeyError:
        raise UnknownOperation(f"SnapTrade operation {name!r} is not classified") from None


def plaid_operation(path: str) -> Operation:
    try:
        return PLAID_OPERATIONS[path]
    except KeyError:
        raise UnknownOperation(f"Plaid operation {path!r} is not classified") from None
