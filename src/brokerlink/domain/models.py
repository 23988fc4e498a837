"""Neutral domain models. Money and quantities are `Decimal` end to end; no field names a vendor."""

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from .enums import (
    AccountType,
    ConnectionAccess,
    InstrumentKind,
    OptionRight,
    OrderSide,
    OrderStatus,
    OrderType,
    Provider,
    TimeInForce,
)

__all__ = [
    "AccountSummary",
    "Balance",
    "Capabilities",
    "Connection",
    "Holding",
    "Instrument",
    "OptionDetails",
    "Order",
    "OrderPreview",
    "OrderRequest",
    "Position",
    "RefreshResult",
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Capabilities(_Model):
    """What an account can do through the provider it is connected with."""

    trading: bool = False
    realtime: bool = False
    # Why there is no trading, as a stable code (`policies.capabilities.TradingBlock`).
    trading_block: str | None = None


class OptionDetails(_Model):
    underlying: str
    strike: Decimal
    expiry: date
    right: OptionRight
    multiplier: Decimal = Decimal(100)


class Instrument(_Model):
    """A security, identified without reference to any one vendor.

    `symbol` is normalised (see `domain.symbols.normalize_symbol`) and may be None when a provider
    reports a holding without a ticker; the position is then flagged, never dropped.
    `provider_ids` keeps each provider's own id for the instrument (e.g. SnapTrade's symbol uuid).
    """

    symbol: str | None
    kind: InstrumentKind
    raw_kind: str | None = None
    name: str | None = None
    exchange: str | None = None
    currency: str | None = None
    figi: str | None = None
    isin: str | None = None
    cusip: str | None = None
    option: OptionDetails | None = None
    provider_ids: dict[Provider, str] = Field(default_factory=dict)


class Position(_Model):
    """One holding in one account, as one provider reported it.

    `cost_basis` is the position's total cost, not per share. `as_of` is when the provider's
    holdings data was current; `price_as_of` when its price was (they can differ by a session).
    """

    provider: Provider
    account_id: str
    instrument: Instrument
    quantity: Decimal
    currency: str
    price: Decimal | None = None
    market_value: Decimal | None = None
    cost_basis: Decimal | None = None
    as_of: datetime | None = None
    price_as_of: datetime | None = None
    flags: frozenset[str] = frozenset()

    @property
    def ticker(self) -> str | None:
        return self.instrument.symbol


Holding = Position


class Balance(_Model):
    """Cash and buying power of one account in one currency."""

    provider: Provider
    account_id: str
    currency: str
    cash: Decimal | None = None
    buying_power: Decimal | None = None
    as_of: datetime | None = None


class AccountSummary(_Model):
    """An account as a provider lists it. `account_id` is the provider's own id."""

    provider: Provider
    account_id: str
    connection_id: str
    institution_name: str
    name: str | None = None
    number_mask: str | None = None
    type: AccountType = AccountType.BROKERAGE
    raw_type: str | None = None
    currency: str | None = None
    total_value: Decimal | None = None
    status: str | None = None
    is_paper: bool = False
    capabilities: Capabilities = Capabilities()
    holdings_as_of: datetime | None = None


class Connection(_Model):
    """A provider-side link between a user and an institution (a SnapTrade authorization)."""

    provider: Provider
    connection_id: str
    institution_name: str
    institution_slug: str | None = None
    # The provider's own id of the institution, when it said (Plaid's `ins_…`).
    institution_id: str | None = None
    access: ConnectionAccess = ConnectionAccess.READ
    disabled: bool = False
    disabled_at: datetime | None = None
    created_at: datetime | None = None
    realtime: bool = False


class RefreshResult(_Model):
    """The provider accepted a refresh request; data arrives asynchronously."""

    provider: Provider
    connection_id: str
    accepted: bool
    detail: str | None = None


class OrderRequest(_Model):
    """An order as the user asked for it. Either `quantity` or `notional` is set, never both."""

    account_id: str
    side: OrderSide
    symbol: str | None = None
    instrument_id: str | None = None
    order_type: OrderType = OrderType.MARKET
    time_in_force: TimeInForce = TimeInForce.DAY
    quantity: Decimal | None = None
    notional: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    client_order_id: str | None = None


class OrderPreview(_Model):
    """What placing an order would do, and the provider's handle to place exactly that order."""

    provider: Provider
    account_id: str
    preview_id: str
    symbol: str | None
    side: OrderSide
    quantity: Decimal | None
    price: Decimal | None
    currency: str | None
    estimated_commission: Decimal | None = None
    remaining_cash: Decimal | None = None


class Order(_Model):
    provider: Provider
    account_id: str
    order_id: str
    status: OrderStatus
    raw_status: str | None = None
    symbol: str | None = None
    side: OrderSide | None = None
    raw_action: str | None = None
    order_type: OrderType | None = None
    time_in_force: TimeInForce | None = None
    quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    average_fill_price: Decimal | None = None
    placed_at: datetime | None = None
    updated_at: datetime | None = None
    client_order_id: str | None = None
