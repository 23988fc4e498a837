"""The SnapTrade payloads this adapter reads and writes (components/schemas in the spec).

Only the fields we use are declared; `total=False` because SnapTrade omits or nulls fields
freely. The normaliser checks what it needs and raises a typed error naming the field.
"""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = [
    "Account",
    "AccountOrderRecord",
    "AccountPosition",
    "AllAccountPositionsResponse",
    "ApiStatus",
    "Balance",
    "Brokerage",
    "BrokerageAuthorization",
    "CancelOrderResponse",
    "ConnectionType",
    "Currency",
    "DeleteUserResponse",
    "ErrorBody",
    "LoginRedirectURI",
    "ManualTradeAndImpact",
    "ManualTradeForm",
    "PositionInstrument",
    "RefreshResponse",
    "TradeImpactForm",
    "UniversalSymbol",
    "UserIDandSecret",
]

ConnectionType = Literal["read", "trade", "trade-if-available"]


class ErrorBody(TypedDict, total=False):
    detail: str
    status_code: int
    code: str | int


class ApiStatus(TypedDict, total=False):
    version: int
    timestamp: str
    online: bool


class UserIDandSecret(TypedDict, total=False):
    userId: str
    userSecret: str


class DeleteUserResponse(TypedDict, total=False):
    status: str
    detail: str
    userId: str


class LoginRedirectURI(TypedDict, total=False):
    redirectURI: str
    sessionId: str


class Currency(TypedDict, total=False):
    id: str
    code: str
    name: str


class Brokerage(TypedDict, total=False):
    id: str
    slug: str
    name: str
    display_name: str
    enabled: bool
    maintenance_mode: bool
    is_degraded: bool
    allows_trading: bool | None
    is_real_time_connection: bool


class BrokerageAuthorization(TypedDict, total=False):
    id: str
    created_date: str
    updated_date: str
    brokerage: Brokerage
    name: str
    type: str
    disabled: bool
    disabled_date: str | None
    data_freshness_mode: str


class RefreshResponse(TypedDict, total=False):
    detail: str


class _Amount(TypedDict, total=False):
    amount: float | None
    currency: str | None


class _AccountBalance(TypedDict, total=False):
    total: _Amount | None


class Account(TypedDict, total=False):
    id: str
    brokerage_authorization: str
    name: str | None
    number: str
    institution_name: str
    balance: _AccountBalance
    status: str | None
    raw_type: str | None
    account_category: str | None
    is_paper: bool
    sync_status: dict[str, dict[str, object]]


class Balance(TypedDict, total=False):
    currency: Currency | None
    cash: float | None
    buying_power: float | None


class _FigiInstrument(TypedDict, total=False):
    figi_code: str | None
    figi_share_class: str | None


class PositionInstrument(TypedDict, total=False):
    """One member of the `Instrument` oneOf, discriminated by `kind`."""

    kind: str
    id: str
    symbol: str
    raw_symbol: str
    root_symbol: str
    description: str | None
    currency: str | None
    exchange: str | None
    figi_instrument: _FigiInstrument | None
    option_type: str
    strike_price: str
    expiration_date: str
    multiplier: str
    underlying: PositionInstrument


class AccountPosition(TypedDict, total=False):
    instrument: PositionInstrument
    units: str | None
    price: str | None
    cost_basis: str | None
    currency: str | None
    cash_equivalent: bool


class _DataFreshness(TypedDict, total=False):
    as_of: str


class AllAccountPositionsResponse(TypedDict, total=False):
    results: list[AccountPosition]
    data_freshness: _DataFreshness


class _SecurityType(TypedDict, total=False):
    id: str
    code: str
    description: str


class UniversalSymbol(TypedDict, total=False):
    id: str
    symbol: str
    raw_symbol: str
    description: str | None
    currency: Currency
    type: _SecurityType
    figi_code: str | None


class AccountOrderRecord(TypedDict, total=False):
    brokerage_order_id: str
    status: str
    universal_symbol: UniversalSymbol | None
    action: str
    total_quantity: str | None
    filled_quantity: str | None
    execution_price: str | None
    limit_price: str | None
    stop_price: str | None
    order_type: str | None
    time_in_force: str | None
    time_placed: str | None
    time_updated: str | None


class CancelOrderResponse(TypedDict, total=False):
    brokerage_order_id: str
    raw_response: object


class TradeImpactForm(TypedDict, total=False):
    account_id: str
    action: str
    universal_symbol_id: str
    order_type: str
    time_in_force: str
    price: float | None
    stop: float | None
    units: float | None
    notional_value: str | None


class ManualTradeForm(TradeImpactForm, total=False):
    symbol: str | None
    client_order_id: str | None


class _TradeSymbol(TypedDict, total=False):
    universal_symbol_id: str
    symbol: str
    currency: Currency


class _Trade(TypedDict, total=False):
    id: str
    account: str
    order_type: str
    time_in_force: str
    symbol: _TradeSymbol
    action: str
    units: float | None
    price: float | None


class _TradeImpact(TypedDict, total=False):
    account: str
    currency: str
    remaining_cash: float | None
    estimated_commission: float | None
    forex_fees: float | None


class ManualTradeAndImpact(TypedDict, total=False):
    trade: _Trade
    trade_impacts: list[_TradeImpact]
    combined_remaining_balance: dict[str, object]
