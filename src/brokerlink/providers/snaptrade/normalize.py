"""SnapTrade payloads to domain models (`from_snaptrade_…`), and orders back (`to_snaptrade_…`).

Numbers become `Decimal` from their text (floats through `repr`, never binary). A field the
domain needs that is missing or unreadable raises `SnapTradeMalformedResponse` naming its JSON
path; a field SnapTrade documents as nullable becomes None (or a flag), never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from brokerlink.domain.enums import (
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
from brokerlink.domain.models import (
    AccountSummary,
    Balance,
    Capabilities,
    Connection,
    Instrument,
    OptionDetails,
    Order,
    OrderPreview,
    OrderRequest,
    Position,
)
from brokerlink.domain.symbols import cash_ticker, normalize_symbol
from brokerlink.errors import ValidationError
from brokerlink.providers.snaptrade.errors import SnapTradeMalformedResponse

__all__ = [
    "INSTRUMENT_KIND_BY_POSITION_KIND",
    "INSTRUMENT_KIND_BY_TYPE_CODE",
    "cash_positions",
    "from_snaptrade_account",
    "from_snaptrade_authorization",
    "from_snaptrade_balances",
    "from_snaptrade_impact",
    "from_snaptrade_instrument",
    "from_snaptrade_order",
    "from_snaptrade_positions",
    "instrument_kind",
    "parse_decimal",
    "to_snaptrade_impact_form",
    "to_snaptrade_trade_form",
]

P = Provider.SNAPTRADE

# `kind` of the positions/all Instrument oneOf. Bonds arrive as "other" there.
INSTRUMENT_KIND_BY_POSITION_KIND: dict[str, InstrumentKind] = {
    "stock": InstrumentKind.EQUITY,
    "adr": InstrumentKind.EQUITY,
    "etf": InstrumentKind.ETF,
    "mutualfund": InstrumentKind.MUTUAL_FUND,
    "crypto": InstrumentKind.CRYPTO,
    "option": InstrumentKind.OPTION,
    "future": InstrumentKind.FUTURE,
}
# `UniversalSymbol.type.code` (SecurityType): cs, et, oef, bnd, ... Unlisted codes are OTHER.
INSTRUMENT_KIND_BY_TYPE_CODE: dict[str, InstrumentKind] = {
    "cs": InstrumentKind.EQUITY,
    "ps": InstrumentKind.EQUITY,
    "ad": InstrumentKind.EQUITY,
    "et": InstrumentKind.ETF,
    "oef": InstrumentKind.MUTUAL_FUND,
    "mf": InstrumentKind.MUTUAL_FUND,
    "bnd": InstrumentKind.BOND,
    "crypto": InstrumentKind.CRYPTO,
}

_ORDER_STATUS: dict[str, OrderStatus] = {
    "PENDING": OrderStatus.PENDING,
    "QUEUED": OrderStatus.PENDING,
    "PENDING_RISK_REVIEW": OrderStatus.PENDING,
    "CONTINGENT_ORDER": OrderStatus.PENDING,
    "REPLACE_PENDING": OrderStatus.PENDING,
    "SUSPENDED": OrderStatus.PENDING,
    "ACCEPTED": OrderStatus.ACCEPTED,
    "TRIGGERED": OrderStatus.ACCEPTED,
    "ACTIVATED": OrderStatus.ACCEPTED,
    "PARTIAL": OrderStatus.PARTIALLY_FILLED,
    "EXECUTED": OrderStatus.FILLED,
    "CANCEL_PENDING": OrderStatus.CANCEL_PENDING,
    "CANCELED": OrderStatus.CANCELED,
    "PARTIAL_CANCELED": OrderStatus.CANCELED,
    "FAILED": OrderStatus.REJECTED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "REPLACED": OrderStatus.REPLACED,
}
_ORDER_TYPE = {
    "market": OrderType.MARKET,
    "limit": OrderType.LIMIT,
    "stop": OrderType.STOP,
    "stoplimit": OrderType.STOP_LIMIT,
    "stop_limit": OrderType.STOP_LIMIT,
}
_TO_ORDER_TYPE = {
    OrderType.MARKET: "Market",
    OrderType.LIMIT: "Limit",
    OrderType.STOP: "Stop",
    OrderType.STOP_LIMIT: "StopLimit",
}
_TO_TIF = {
    TimeInForce.DAY: "Day",
    TimeInForce.GTC: "GTC",
    TimeInForce.FOK: "FOK",
    TimeInForce.IOC: "IOC",
}
_RETIREMENT_WORDS = (
    "ira",
    "401k",
    "403b",
    "roth",
    "rrsp",
    "rrif",
    "tfsa",
    "lira",
    "sipp",
    "retire",
)


def _bad(operation: str, field: str, why: str) -> SnapTradeMalformedResponse:
    return SnapTradeMalformedResponse(f"{field}: {why}", operation=operation, field=field)


def parse_decimal(value: Any, field: str, operation: str = "normalize") -> Decimal | None:
    """A Decimal from SnapTrade's decimal strings or JSON numbers; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise _bad(operation, field, "expected a number, got a boolean")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad(operation, field, "not a finite number")
        # repr gives the shortest text that round-trips: 0.1 -> "0.1", not 0.1000000000000000055…
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise _bad(operation, field, "not a decimal number") from None
        if not number.is_finite():
            raise _bad(operation, field, "not a finite number")
        return number
    raise _bad(operation, field, f"expected a number, got {type(value).__name__}")


def _required_decimal(value: Any, field: str, operation: str) -> Decimal:
    number = parse_decimal(value, field, operation)
    if number is None:
        raise _bad(operation, field, "missing")
    return number


def _str(raw: Mapping[str, Any], key: str, path: str, operation: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise _bad(operation, f"{path}{key}", "missing or not a string")
    return value


def _opt_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) and value else None


def _mapping(value: Any, field: str, operation: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad(operation, field, "expected an object")
    return value


def _list(value: Any, field: str, operation: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(operation, field, "expected an array")
    return value


def parse_datetime(value: Any, field: str, operation: str = "normalize") -> datetime | None:
    """SnapTrade writes `2024-08-20 21:56:19.123935+00:00`; naive times are taken as UTC."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _bad(operation, field, "expected a date-time string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _bad(operation, field, "not an ISO 8601 date-time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_date(value: Any, field: str, operation: str) -> date:
    if not isinstance(value, str):
        raise _bad(operation, field, "expected a date string")
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        raise _bad(operation, field, "not an ISO 8601 date") from None


def _currency_code(value: Any) -> str | None:
    """Currencies come as "USD" or as `{"id", "code", "name"}` depending on the schema."""
    if isinstance(value, Mapping):
        value = value.get("code")
    if isinstance(value, str) and len(value.strip()) == 3:
        return value.strip().upper()
    return None


def instrument_kind(
    *, position_kind: str | None = None, type_code: str | None = None
) -> InstrumentKind:
    """The domain kind for a positions/all `kind` or a security type code; unknown is OTHER."""
    if type_code is not None:
        kind = INSTRUMENT_KIND_BY_TYPE_CODE.get(type_code.strip().lower())
        if kind is not None:
            return kind
    if position_kind is not None:
        kind = INSTRUMENT_KIND_BY_POSITION_KIND.get(position_kind.strip().lower())
        if kind is not None:
            return kind
    return InstrumentKind.OTHER


def from_snaptrade_instrument(
    raw: Any, field: str = "instrument", operation: str = "normalize"
) -> Instrument:
    """An `Instrument` from one member of SnapTrade's positions/all `Instrument` oneOf."""
    data = _mapping(raw, field, operation)
    raw_kind = data.get("kind")
    if not isinstance(raw_kind, str) or not raw_kind:
        raise _bad(operation, f"{field}.kind", "missing or not a string")
    kind = instrument_kind(position_kind=raw_kind)
    ids = {P: data["id"]} if isinstance(data.get("id"), str) else {}
    figi_raw = data.get("figi_instrument")
    figi = _opt_str(figi_raw, "figi_code") if isinstance(figi_raw, Mapping) else None
    option: OptionDetails | None = None
    if kind is InstrumentKind.OPTION:
        underlying = _mapping(data.get("underlying"), f"{field}.underlying", operation)
        under_symbol = _str(underlying, "symbol", f"{field}.underlying.", operation)
        right = str(data.get("option_type", "")).upper()
        if right not in ("CALL", "PUT"):
            raise _bad(operation, f"{field}.option_type", "expected CALL or PUT")
        option = OptionDetails(
            underlying=normalize_symbol(under_symbol),
            strike=_required_decimal(data.get("strike_price"), f"{field}.strike_price", operation),
            expiry=_parse_date(data.get("expiration_date"), f"{field}.expiration_date", operation),
            right=OptionRight.CALL if right == "CALL" else OptionRight.PUT,
            multiplier=parse_decimal(data.get("multiplier"), f"{field}.multiplier", operation)
            or Decimal(100),
        )
    symbol = _opt_str(data, "symbol")
    return Instrument(
        symbol=normalize_symbol(symbol) if symbol else None,
        kind=kind,
        raw_kind=raw_kind,
        name=_opt_str(data, "description"),
        exchange=_opt_str(data, "exchange"),
        currency=_currency_code(data.get("currency")),
        figi=figi,
        option=option,
        provider_ids=ids,
    )


def from_snaptrade_positions(
    account_id: str,
    payload: Any,
    *,
    default_currency: str | None = None,
    operation: str = "AccountInformation_getAllAccountPositions",
) -> list[Position]:
    """Positions from `GET /accounts/{id}/positions/all` (`{results, data_freshness}`)."""
    body = _mapping(payload, "$", operation)
    results = _list(body.get("results"), "results", operation)
    freshness = body.get("data_freshness")
    as_of = (
        parse_datetime(freshness.get("as_of"), "data_freshness.as_of", operation)
        if isinstance(freshness, Mapping)
        else None
    )
    positions: list[Position] = []
    for i, item in enumerate(results):
        path = f"results[{i}]"
        row = _mapping(item, path, operation)
        instrument = from_snaptrade_instrument(
            row.get("instrument"), f"{path}.instrument", operation
        )
        flags: set[str] = set()
        if instrument.symbol is None:
            flags.add("missing_symbol")
        if instrument.kind is InstrumentKind.OTHER:
            flags.add("unknown_instrument_kind")
        units = parse_decimal(row.get("units"), f"{path}.units", operation)
        if units is None:
            flags.add("missing_quantity")
        price = parse_decimal(row.get("price"), f"{path}.price", operation)
        unit_cost = parse_decimal(row.get("cost_basis"), f"{path}.cost_basis", operation)
        currency = _currency_code(row.get("currency")) or instrument.currency or default_currency
        if currency is None:
            raise _bad(operation, f"{path}.currency", "missing, and the instrument has none")
        if row.get("cash_equivalent") is True:
            flags.add("cash_equivalent")
        # Prices and cost basis are per share (per underlying share for options).
        multiplier = instrument.option.multiplier if instrument.option else Decimal(1)
        quantity = units if units is not None else Decimal(0)
        positions.append(
            Position(
                provider=P,
                account_id=account_id,
                instrument=instrument,
                quantity=quantity,
                currency=currency,
                price=price,
                market_value=(
                    None if price is None or units is None else price * units * multiplier
                ),
                cost_basis=(
                    None if unit_cost is None or units is None else unit_cost * units * multiplier
                ),
                as_of=as_of,
                flags=frozenset(flags),
            )
        )
    return positions


def from_snaptrade_balances(
    account_id: str,
    payload: Any,
    *,
    as_of: datetime | None = None,
    operation: str = "AccountInformation_getUserAccountBalance",
) -> list[Balance]:
    """Balances from `GET /accounts/{id}/balances`, one per currency."""
    rows = _list(payload, "$", operation)
    balances: list[Balance] = []
    for i, item in enumerate(rows):
        row = _mapping(item, f"[{i}]", operation)
        code = _currency_code(row.get("currency"))
        if code is None:
            raise _bad(operation, f"[{i}].currency.code", "missing or not an ISO currency code")
        balances.append(
            Balance(
                provider=P,
                account_id=account_id,
                currency=code,
                cash=parse_decimal(row.get("cash"), f"[{i}].cash", operation),
                buying_power=parse_decimal(
                    row.get("buying_power"), f"[{i}].buying_power", operation
                ),
                as_of=as_of,
            )
        )
    return balances


def cash_positions(balances: Iterable[Balance]) -> list[Position]:
    """One `CUR:<ISO>` position per currency holding cash (amounts in one currency are summed)."""
    totals: dict[str, Decimal] = {}
    first: dict[str, Balance] = {}
    for b in balances:
        if b.cash is None:
            continue
        totals[b.currency] = totals.get(b.currency, Decimal(0)) + b.cash
        first.setdefault(b.currency, b)
    return [
        Position(
            provider=P,
            account_id=first[code].account_id,
            instrument=Instrument(
                symbol=cash_ticker(code), kind=InstrumentKind.CASH, raw_kind="cash", currency=code
            ),
            quantity=amount,
            currency=code,
            price=Decimal(1),
            market_value=amount,
            cost_basis=amount,
            as_of=first[code].as_of,
        )
        for code, amount in sorted(totals.items())
    ]


def _account_type(raw_type: str | None, category: str | None) -> AccountType:
    if category == "DEPOSIT":
        return AccountType.BANK
    text = (raw_type or "").lower().replace(" ", "").replace("(", "").replace(")", "")
    if any(word in text for word in _RETIREMENT_WORDS):
        return AccountType.RETIREMENT
    return AccountType.BROKERAGE


def from_snaptrade_account(
    raw: Any,
    *,
    capabilities: Capabilities | None = None,
    operation: str = "AccountInformation_listUserAccounts",
    field: str = "$",
) -> AccountSummary:
    data = _mapping(raw, field, operation)
    prefix = "" if field == "$" else f"{field}."
    number = _opt_str(data, "number")
    total = data.get("balance")
    amount: Decimal | None = None
    currency: str | None = None
    if isinstance(total, Mapping) and isinstance(total.get("total"), Mapping):
        amount = parse_decimal(
            total["total"].get("amount"), f"{prefix}balance.total.amount", operation
        )
        currency = _currency_code(total["total"].get("currency"))
    sync = data.get("sync_status")
    holdings_sync = sync.get("holdings") if isinstance(sync, Mapping) else None
    holdings_as_of = (
        parse_datetime(
            holdings_sync.get("last_successful_sync"),
            f"{prefix}sync_status.holdings.last_successful_sync",
            operation,
        )
        if isinstance(holdings_sync, Mapping)
        else None
    )
    raw_type = _opt_str(data, "raw_type")
    return AccountSummary(
        provider=P,
        account_id=_str(data, "id", prefix, operation),
        connection_id=_str(data, "brokerage_authorization", prefix, operation),
        institution_name=_str(data, "institution_name", prefix, operation),
        name=_opt_str(data, "name"),
        number_mask=number[-4:] if number else None,
        type=_account_type(raw_type, _opt_str(data, "account_category")),
        raw_type=raw_type,
        currency=currency,
        total_value=amount,
        status=_opt_str(data, "status"),
        is_paper=data.get("is_paper") is True,
        capabilities=capabilities or Capabilities(),
        holdings_as_of=holdings_as_of,
    )


def from_snaptrade_authorization(
    raw: Any, *, operation: str = "Connections_listBrokerageAuthorizations", field: str = "$"
) -> Connection:
    data = _mapping(raw, field, operation)
    prefix = "" if field == "$" else f"{field}."
    brokerage = data.get("brokerage")
    brokerage = brokerage if isinstance(brokerage, Mapping) else {}
    name = (
        _opt_str(brokerage, "display_name") or _opt_str(brokerage, "name") or _opt_str(data, "name")
    )
    if name is None:
        raise _bad(operation, f"{prefix}brokerage.display_name", "missing")
    return Connection(
        provider=P,
        connection_id=_str(data, "id", prefix, operation),
        institution_name=name,
        institution_slug=_opt_str(brokerage, "slug"),
        access=ConnectionAccess.TRADE if data.get("type") == "trade" else ConnectionAccess.READ,
        disabled=data.get("disabled") is True,
        disabled_at=parse_datetime(data.get("disabled_date"), f"{prefix}disabled_date", operation),
        created_at=parse_datetime(data.get("created_date"), f"{prefix}created_date", operation),
        realtime=data.get("data_freshness_mode") == "realtime",
    )


def _side(action: Any) -> OrderSide | None:
    if not isinstance(action, str):
        return None
    upper = action.upper()
    if upper.startswith("BUY"):
        return OrderSide.BUY
    if upper.startswith("SELL"):
        return OrderSide.SELL
    return None


def _order_type(value: Any) -> OrderType | None:
    return _ORDER_TYPE.get(value.lower()) if isinstance(value, str) else None


def _tif(value: Any) -> TimeInForce | None:
    if not isinstance(value, str):
        return None
    try:
        return TimeInForce(value.lower())
    except ValueError:
        return None


def from_snaptrade_order(
    account_id: str,
    raw: Any,
    *,
    operation: str = "AccountInformation_getUserAccountOrders",
    field: str = "$",
    client_order_id: str | None = None,
) -> Order:
    """An `Order` from an `AccountOrderRecord`; unknown statuses are UNKNOWN, raw kept."""
    data = _mapping(raw, field, operation)
    prefix = "" if field == "$" else f"{field}."
    raw_status = _opt_str(data, "status")
    symbol: str | None = None
    universal = data.get("universal_symbol")
    option = data.get("option_symbol")
    if isinstance(universal, Mapping) and _opt_str(universal, "symbol"):
        symbol = normalize_symbol(str(universal["symbol"]))
    elif isinstance(option, Mapping) and _opt_str(option, "ticker"):
        symbol = normalize_symbol(str(option["ticker"]))

    def num(key: str) -> Decimal | None:
        return parse_decimal(data.get(key), f"{prefix}{key}", operation)

    return Order(
        provider=P,
        account_id=account_id,
        order_id=_str(data, "brokerage_order_id", prefix, operation),
        status=_ORDER_STATUS.get((raw_status or "").upper(), OrderStatus.UNKNOWN),
        raw_status=raw_status,
        symbol=symbol,
        side=_side(data.get("action")),
        raw_action=_opt_str(data, "action"),
        order_type=_order_type(data.get("order_type")),
        time_in_force=_tif(data.get("time_in_force")),
        quantity=num("total_quantity"),
        filled_quantity=num("filled_quantity"),
        limit_price=num("limit_price"),
        stop_price=num("stop_price"),
        average_fill_price=num("execution_price"),
        placed_at=parse_datetime(data.get("time_placed"), f"{prefix}time_placed", operation),
        updated_at=parse_datetime(data.get("time_updated"), f"{prefix}time_updated", operation),
        client_order_id=client_order_id,
    )


def from_snaptrade_impact(
    account_id: str, raw: Any, *, operation: str = "Trading_getOrderImpact"
) -> OrderPreview:
    """An `OrderPreview` from `POST /trade/impact`; `preview_id` is SnapTrade's trade id."""
    data = _mapping(raw, "$", operation)
    trade = _mapping(data.get("trade"), "trade", operation)
    side = _side(trade.get("action"))
    if side is None:
        raise _bad(operation, "trade.action", "expected BUY or SELL")
    symbol_raw = trade.get("symbol")
    symbol_info = symbol_raw if isinstance(symbol_raw, Mapping) else {}
    symbol = _opt_str(symbol_info, "symbol")
    impacts = data.get("trade_impacts")
    first = impacts[0] if isinstance(impacts, list) and impacts else None
    impact = first if isinstance(first, Mapping) else {}
    currency = _currency_code(symbol_info.get("currency")) or _currency_code(impact.get("currency"))
    return OrderPreview(
        provider=P,
        account_id=account_id,
        preview_id=_str(trade, "id", "trade.", operation),
        symbol=normalize_symbol(symbol) if symbol else None,
        side=side,
        quantity=parse_decimal(trade.get("units"), "trade.units", operation),
        price=parse_decimal(trade.get("price"), "trade.price", operation),
        currency=currency,
        estimated_commission=parse_decimal(
            impact.get("estimated_commission"), "trade_impacts[0].estimated_commission", operation
        ),
        remaining_cash=parse_decimal(
            impact.get("remaining_cash"), "trade_impacts[0].remaining_cash", operation
        ),
    )


def _number(value: Decimal | None) -> float | None:
    # The spec types price/units as JSON numbers; the Decimal's text keeps what float can.
    return None if value is None else float(value)


def to_snaptrade_impact_form(request: OrderRequest) -> dict[str, Any]:
    """The body of `POST /trade/impact`. SnapTrade needs the universal symbol id here."""
    if not request.instrument_id:
        raise ValidationError(
            "SnapTrade checks an order by its universal symbol id", field="instrument_id"
        )
    form: dict[str, Any] = {
        "account_id": request.account_id,
        "action": request.side.value.upper(),
        "universal_symbol_id": request.instrument_id,
        "order_type": _TO_ORDER_TYPE[request.order_type],
        "time_in_force": _TO_TIF[request.time_in_force],
        "price": _number(request.limit_price),
        "stop": _number(request.stop_price),
        "units": _number(request.quantity),
    }
    if request.notional is not None:
        form["notional_value"] = str(request.notional)
    return _drop_none(form)


def to_snaptrade_trade_form(request: OrderRequest) -> dict[str, Any]:
    """The body of `POST /trade/place` (by universal symbol id, or else by ticker)."""
    if not request.instrument_id and not request.symbol:
        raise ValidationError("an order needs a symbol or an instrument id", field="symbol")
    if request.quantity is not None and request.notional is not None:
        raise ValidationError("set quantity or notional, not both", field="notional")
    form: dict[str, Any] = {
        "account_id": request.account_id,
        "action": request.side.value.upper(),
        "order_type": _TO_ORDER_TYPE[request.order_type],
        "time_in_force": _TO_TIF[request.time_in_force],
        "price": _number(request.limit_price),
        "stop": _number(request.stop_price),
        "units": _number(request.quantity),
    }
    if request.instrument_id:
        form["universal_symbol_id"] = request.instrument_id
    else:
        form["symbol"] = request.symbol
    if request.notional is not None:
        form["notional_value"] = str(request.notional)
    if request.client_order_id:
        form["client_order_id"] = request.client_order_id
    return _drop_none(form)


def _drop_none(form: dict[str, Any]) -> dict[str, Any]:
    # Unset fields are left out, as the official SDK does, so both sign the same content.
    return {k: v for k, v in form.items() if v is not None}
