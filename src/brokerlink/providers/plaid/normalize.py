"""Plaid payloads into domain models, with Plaid's known traps handled here and only here.

- Holdings reference securities by `security_id`; a holding whose security is missing is a
  malformed payload, not a position to guess at.
- `cost_basis` is the holding's TOTAL cost (Plaid: "the total amount spent to acquire all assets
  currently in the holding"), which is what `Position.cost_basis` holds: no multiplication.
- `institution_value` is the value of record (`market_value`); `institution_price` with
  `institution_price_datetime` (else `institution_price_as_of`) is the price.
- A null `ticker_symbol` falls back to the CUSIP, then the ISIN; with neither the symbol is None
  and the name identifies it. Either way the position is flagged `symbol_fallback`, never dropped.
- Cash: a security whose `type` is `cash`, or whose ticker is `CUR:<ISO>`, or a cash-equivalent
  with no type and a currency-code ticker, becomes a cash position `CUR:<ISO>` (kind CASH).
  `is_cash_equivalent` alone does not make cash: Plaid sets it on crypto (Dogecoin) too.
  A money-market fund typed `cash` with its own ticker keeps that ticker, kind CASH, flagged
  `cash_equivalent`.
- Cash counted once: the account balance already includes the cash Plaid lists as holdings, so
  a cash position is added from the balance only when the holdings hold no cash at all in that
  account and currency (flagged `cash_from_balance`). Depository accounts have no holdings, so
  their cash always comes from the balance (`available`, else `current`).
- The same (account, security) listed twice is kept twice and flagged `duplicate_holding`:
  summing could double a position, dropping could lose one; the caller decides.
- Types keep their meaning: derivative options -> OPTION with `OptionDetails`, fixed income ->
  BOND, cryptocurrency -> CRYPTO; loan, other, null and unknown types -> OTHER with `raw_kind`.
  Plaid reports option quantity in underlying units (contracts x 100): divided by the contract
  multiplier, so that an option's quantity is in contracts from every provider and
  quantity x price (per share) x multiplier = value (flagged `quantity_in_underlying_units`).
- Holdings carry no as-of time of their own: a holding is as of its price's date
  (`institution_price_datetime`, else `institution_price_as_of`) unless the caller knows better.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from brokerlink.domain.enums import AccountType, InstrumentKind, OptionRight, Provider
from brokerlink.domain.models import (
    AccountSummary,
    Balance,
    Capabilities,
    Instrument,
    OptionDetails,
    Position,
)
from brokerlink.domain.symbols import cash_ticker, normalize_symbol

from . import wire
from .errors import malformed

__all__ = [
    "FLAG_CASH_EQUIVALENT",
    "FLAG_CASH_FROM_BALANCE",
    "FLAG_DUPLICATE",
    "FLAG_INSTITUTION_SYMBOL",
    "FLAG_OPTION_UNITS",
    "FLAG_SYMBOL_FALLBACK",
    "account_type",
    "cash_by_account",
    "from_plaid_account",
    "from_plaid_balance",
    "from_plaid_holdings",
    "instrument_kind",
    "item_updated_at",
    "to_decimal",
]

FLAG_SYMBOL_FALLBACK = "symbol_fallback"
FLAG_CASH_FROM_BALANCE = "cash_from_balance"
FLAG_CASH_EQUIVALENT = "cash_equivalent"
FLAG_INSTITUTION_SYMBOL = "institution_symbol"
FLAG_OPTION_UNITS = "quantity_in_underlying_units"
FLAG_DUPLICATE = "duplicate_holding"

_HOLDINGS_OP = "/investments/holdings/get"
_ISO = re.compile(r"[A-Z]{3}")

_RETIREMENT_SUBTYPES = frozenset(
    {
        "401a",
        "401k",
        "403b",
        "457b",
        "ira",
        "roth",
        "roth 401k",
        "sep ira",
        "simple ira",
        "sarsep",
        "keogh",
        "pension",
        "retirement",
        "profit sharing plan",
        "thrift savings plan",
        "sipp",
        "rrsp",
        "rrif",
        "rlif",
        "lif",
        "lira",
        "lrif",
        "lrsp",
        "prif",
        "ppp",
        "qshr",
    }
)

_KIND_BY_TYPE: dict[str, InstrumentKind] = {
    "equity": InstrumentKind.EQUITY,
    "etf": InstrumentKind.ETF,
    "mutual fund": InstrumentKind.MUTUAL_FUND,
    "fixed income": InstrumentKind.BOND,
    "cryptocurrency": InstrumentKind.CRYPTO,
    "cash": InstrumentKind.CASH,
}


def to_decimal(value: Any, field: str, *, operation: str = _HOLDINGS_OP) -> Decimal | None:
    """A JSON number as `Decimal` through `str()` (so 0.1 stays 0.1); None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise malformed(operation, field, f"expected a number, got {type(value).__name__}")
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise malformed(operation, field, "not a number") from exc
    if not number.is_finite():
        raise malformed(operation, field, "not a finite number")
    return number


def _required_decimal(value: Any, field: str, operation: str = _HOLDINGS_OP) -> Decimal:
    number = to_decimal(value, field, operation=operation)
    if number is None:
        raise malformed(operation, field, "missing")
    return number


def _str(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _required_str(mapping: Mapping[str, Any], key: str, path: str, operation: str) -> str:
    value = _str(mapping.get(key))
    if value is None:
        raise malformed(operation, f"{path}.{key}", "missing")
    return value


def _parse_date(value: Any, field: str, operation: str = _HOLDINGS_OP) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(operation, field, "expected a date string")
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise malformed(operation, field, "not an ISO date") from exc


def _parse_datetime(value: Any, field: str, operation: str = _HOLDINGS_OP) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise malformed(operation, field, "expected a date-time string")
    text = value.replace("Z", "+00:00")
    # Plaid sometimes sends nanoseconds ("…20:24:05.330312653Z"); Python takes six digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise malformed(operation, field, "not an ISO date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _midnight(day: date | None) -> datetime | None:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) if day else None


# -- accounts -----------------------------------------------------------------------------------


def account_type(plaid_type: str | None, subtype: str | None) -> AccountType:
    """depository -> BANK; investment/brokerage -> BROKERAGE, or RETIREMENT for 401k/IRA-like
    subtypes; credit, loan and anything else -> OTHER."""
    kind = (plaid_type or "").lower()
    sub = (subtype or "").lower()
    if kind == "depository":
        return AccountType.BANK
    if kind in ("investment", "brokerage"):
        return AccountType.RETIREMENT if sub in _RETIREMENT_SUBTYPES else AccountType.BROKERAGE
    return AccountType.OTHER


def _account_currency(balances: Mapping[str, Any]) -> str | None:
    return _str(balances.get("iso_currency_code")) or _str(balances.get("unofficial_currency_code"))


def item_updated_at(status: Mapping[str, Any] | None, plaid_type: str | None) -> datetime | None:
    """When Plaid last read an account of this type from the institution, from `/item/get`'s
    `status`: the investments update for investment accounts, the transactions update (accounts
    and balances) for the rest. Each "updates each time Plaid successfully connects with the
    institution", so an Item without that product is dated by the other. None when Plaid does
    not say."""
    if not isinstance(status, Mapping):
        return None
    order = ("investments", "transactions")
    if plaid_type not in ("investment", "brokerage"):
        order = ("transactions", "investments")
    for product in order:
        entry = status.get(product)
        if not isinstance(entry, Mapping):
            continue
        updated = _parse_datetime(
            entry.get("last_successful_update"),
            f"status.{product}.last_successful_update",
            "/item/get",
        )
        if updated is not None:
            return updated
    return None


def from_plaid_account(
    account: wire.InvestmentAccount | Mapping[str, Any],
    *,
    connection_id: str,
    institution_name: str,
    index: int = 0,
    operation: str = "/accounts/get",
    item_status: Mapping[str, Any] | None = None,
) -> AccountSummary:
    """One account; `item_status` (`/item/get`'s `status`) dates its data."""
    path = f"accounts[{index}]"
    account_id = _required_str(account, "account_id", path, operation)
    balances = account.get("balances") or {}
    if not isinstance(balances, Mapping):
        raise malformed(operation, f"{path}.balances", "expected an object")
    plaid_type = _str(account.get("type"))
    subtype = _str(account.get("subtype"))
    return AccountSummary(
        provider=Provider.PLAID,
        account_id=account_id,
        connection_id=connection_id,
        institution_name=institution_name,
        name=_str(account.get("name")) or _str(account.get("official_name")),
        number_mask=_str(account.get("mask")),
        type=account_type(plaid_type, subtype),
        raw_type="/".join(p for p in (plaid_type, subtype) if p) or None,
        currency=_account_currency(balances),
        total_value=to_decimal(
            balances.get("current"), f"{path}.balances.current", operation=operation
        ),
        capabilities=Capabilities(trading=False, realtime=False),
        holdings_as_of=item_updated_at(item_status, plaid_type),
    )


def _balance_cash(
    account: Mapping[str, Any], path: str, operation: str
) -> tuple[Decimal | None, str | None]:
    """The cash an account's balance reports, and its currency.

    Depository: `available`, else `current`. Investment: `available` only (its `current` is the
    whole account's value, holdings included). Credit cards and loans: minus `current`, the
    balance owed (their `available` is unused credit), so every total nets the debt out.
    """
    balances = account.get("balances") or {}
    if not isinstance(balances, Mapping):
        raise malformed(operation, f"{path}.balances", "expected an object")
    plaid_type = account.get("type") or ""
    currency = _account_currency(balances)
    if plaid_type in ("credit", "loan"):
        owed = to_decimal(balances.get("current"), f"{path}.balances.current", operation=operation)
        return (None if owed is None else -owed), currency
    if plaid_type not in ("depository", "investment", "brokerage"):
        return None, currency
    available = to_decimal(
        balances.get("available"), f"{path}.balances.available", operation=operation
    )
    if plaid_type == "depository" and available is None:
        available = to_decimal(
            balances.get("current"), f"{path}.balances.current", operation=operation
        )
    return available, currency


def from_plaid_balance(
    account: wire.InvestmentAccount | Mapping[str, Any],
    *,
    holdings_cash: Mapping[str, Decimal] | None = None,
    index: int = 0,
    operation: str = "/accounts/get",
    as_of: datetime | None = None,
) -> list[Balance]:
    """Balances of one account, one per currency.

    `holdings_cash` is the cash (per currency) already read from the account's holdings; when
    given for a currency it is the cash figure, so the balance never adds it a second time.
    """
    path = f"accounts[{index}]"
    account_id = _required_str(account, "account_id", path, operation)
    balance_cash, currency = _balance_cash(account, path, operation)
    balances = account.get("balances") or {}
    updated = _parse_datetime(
        balances.get("last_updated_datetime"), f"{path}.balances.last_updated_datetime", operation
    )
    by_currency: dict[str, Decimal | None] = dict(holdings_cash or {})
    if currency is not None and currency not in by_currency:
        by_currency[currency] = balance_cash
    buying_power = (
        to_decimal(balances.get("available"), f"{path}.balances.available", operation=operation)
        if (account.get("type") or "") in ("investment", "brokerage")
        else None
    )
    return [
        Balance(
            provider=Provider.PLAID,
            account_id=account_id,
            currency=ccy,
            cash=cash,
            buying_power=buying_power if ccy == currency else None,
            as_of=updated or as_of,
        )
        for ccy, cash in sorted(by_currency.items())
    ]


# -- securities and holdings --------------------------------------------------------------------


def _cash_currency(security: Mapping[str, Any], holding_ccy: str | None) -> str | None:
    """The ISO currency when this security is cash (`CUR:USD`, `USD`, or typed cash), else None."""
    ticker = (_str(security.get("ticker_symbol")) or "").upper()
    sec_type = _str(security.get("type"))
    if ticker.startswith("CUR:") and _ISO.fullmatch(ticker[4:]):
        return ticker[4:]
    if sec_type == "cash" or (sec_type is None and security.get("is_cash_equivalent") is True):
        if _ISO.fullmatch(ticker):
            return ticker
        if not ticker:
            currency = holding_ccy or _str(security.get("iso_currency_code")) or ""
            return currency.upper() if _ISO.fullmatch(currency.upper()) else None
    return None


def instrument_kind(security: Mapping[str, Any]) -> tuple[InstrumentKind, str | None]:
    """Kind and raw kind (`type/subtype`) of a Plaid security."""
    sec_type = _str(security.get("type"))
    subtype = _str(security.get("subtype"))
    raw = "/".join(p for p in (sec_type, subtype) if p) or None
    if sec_type == "derivative":
        if subtype == "option" or security.get("option_contract"):
            return InstrumentKind.OPTION, raw
        if subtype in ("future", "futures"):
            return InstrumentKind.FUTURE, raw
        return InstrumentKind.OTHER, raw
    return _KIND_BY_TYPE.get(sec_type or "", InstrumentKind.OTHER), raw


def _option_details(contract: Any, path: str) -> OptionDetails:
    if not isinstance(contract, Mapping):
        raise malformed(_HOLDINGS_OP, path, "expected an object")
    right_raw = (_str(contract.get("contract_type")) or "").lower()
    if right_raw not in ("call", "put"):
        raise malformed(_HOLDINGS_OP, f"{path}.contract_type", "expected call or put")
    expiry = _parse_date(contract.get("expiration_date"), f"{path}.expiration_date")
    if expiry is None:
        raise malformed(_HOLDINGS_OP, f"{path}.expiration_date", "missing")
    underlying = _str(contract.get("underlying_security_ticker"))
    if underlying is None:
        raise malformed(_HOLDINGS_OP, f"{path}.underlying_security_ticker", "missing")
    return OptionDetails(
        underlying=normalize_symbol(underlying),
        strike=_required_decimal(contract.get("strike_price"), f"{path}.strike_price"),
        expiry=expiry,
        right=OptionRight.CALL if right_raw == "call" else OptionRight.PUT,
    )


def _instrument(
    security: Mapping[str, Any], sec_path: str, holding_ccy: str | None
) -> tuple[Instrument, set[str]]:
    flags: set[str] = set()
    security_id = _required_str(security, "security_id", sec_path, _HOLDINGS_OP)
    name = _str(security.get("name"))
    currency = (
        _str(security.get("iso_currency_code"))
        or _str(security.get("unofficial_currency_code"))
        or holding_ccy
    )
    common: dict[str, Any] = {
        "name": name,
        "isin": _str(security.get("isin")),
        "cusip": _str(security.get("cusip")),
        "exchange": _str(security.get("market_identifier_code")),
        "provider_ids": {Provider.PLAID: security_id},
    }
    cash_ccy = _cash_currency(security, holding_ccy)
    if cash_ccy is not None:
        return (
            Instrument(
                symbol=cash_ticker(cash_ccy),
                kind=InstrumentKind.CASH,
                raw_kind=instrument_kind(security)[1],
                currency=cash_ccy,
                **common,
            ),
            flags,
        )
    kind, raw_kind = instrument_kind(security)
    if kind is InstrumentKind.CASH:
        flags.add(FLAG_CASH_EQUIVALENT)
    option = None
    if kind is InstrumentKind.OPTION and security.get("option_contract") is not None:
        option = _option_details(security.get("option_contract"), f"{sec_path}.option_contract")
        flags.add(FLAG_OPTION_UNITS)
    ticker = _str(security.get("ticker_symbol"))
    if ticker is not None:
        symbol: str | None = normalize_symbol(ticker)
        if ticker == _str(security.get("institution_security_id")):
            # An institution's internal id standing in for a ticker (e.g. a 401k fund).
            flags.add(FLAG_INSTITUTION_SYMBOL)
    else:
        symbol = common["cusip"] or common["isin"]
        flags.add(FLAG_SYMBOL_FALLBACK)
    return (
        Instrument(
            symbol=symbol,
            kind=kind,
            raw_kind=raw_kind,
            currency=currency,
            option=option,
            **common,
        ),
        flags,
    )


def _index_securities(securities: Iterable[Any]) -> dict[str, tuple[int, Mapping[str, Any]]]:
    index: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for i, security in enumerate(securities):
        if not isinstance(security, Mapping):
            raise malformed(_HOLDINGS_OP, f"securities[{i}]", "expected an object")
        security_id = _required_str(security, "security_id", f"securities[{i}]", _HOLDINGS_OP)
        index[security_id] = (i, security)
    return index


def from_plaid_holdings(
    payload: wire.HoldingsGetResponse | Mapping[str, Any],
    *,
    account_id: str | None = None,
    as_of: datetime | None = None,
) -> list[Position]:
    """Positions from a `/investments/holdings/get` response, optionally for one account.

    Cash from account balances is added only where the holdings have none (see module notes).
    """
    securities = _index_securities(payload.get("securities") or [])
    positions: list[Position] = []
    cash_seen: set[tuple[str, str]] = set()
    # Plaid can list one (account, security) twice; both are kept, flagged, never summed.
    seen_pairs: dict[tuple[Any, Any], int] = {}
    for holding in payload.get("holdings") or []:
        if isinstance(holding, Mapping):
            pair = (holding.get("account_id"), holding.get("security_id"))
            seen_pairs[pair] = seen_pairs.get(pair, 0) + 1
    for i, holding in enumerate(payload.get("holdings") or []):
        path = f"holdings[{i}]"
        if not isinstance(holding, Mapping):
            raise malformed(_HOLDINGS_OP, path, "expected an object")
        holding_account = _required_str(holding, "account_id", path, _HOLDINGS_OP)
        if account_id is not None and holding_account != account_id:
            continue
        security_id = _required_str(holding, "security_id", path, _HOLDINGS_OP)
        if security_id not in securities:
            raise malformed(_HOLDINGS_OP, f"{path}.security_id", "no such security in securities")
        sec_index, security = securities[security_id]
        holding_ccy = _str(holding.get("iso_currency_code")) or _str(
            holding.get("unofficial_currency_code")
        )
        instrument, flags = _instrument(security, f"securities[{sec_index}]", holding_ccy)
        currency = holding_ccy or instrument.currency
        if currency is None:
            raise malformed(_HOLDINGS_OP, f"{path}.iso_currency_code", "no currency on holding")
        price_as_of = _parse_datetime(
            holding.get("institution_price_datetime"), f"{path}.institution_price_datetime"
        ) or _midnight(
            _parse_date(holding.get("institution_price_as_of"), f"{path}.institution_price_as_of")
        )
        if instrument.kind is InstrumentKind.CASH:
            cash_seen.add((holding_account, currency))
        if seen_pairs.get((holding_account, security_id), 0) > 1:
            flags.add(FLAG_DUPLICATE)
        quantity = _required_decimal(holding.get("quantity"), f"{path}.quantity")
        if FLAG_OPTION_UNITS in flags and instrument.option is not None:
            quantity = quantity / instrument.option.multiplier
        positions.append(
            Position(
                provider=Provider.PLAID,
                account_id=holding_account,
                instrument=instrument,
                quantity=quantity,
                currency=currency,
                price=to_decimal(holding.get("institution_price"), f"{path}.institution_price"),
                market_value=to_decimal(
                    holding.get("institution_value"), f"{path}.institution_value"
                ),
                # Plaid's cost_basis is already the holding's total: never times quantity.
                cost_basis=to_decimal(holding.get("cost_basis"), f"{path}.cost_basis"),
                as_of=as_of or price_as_of,
                price_as_of=price_as_of,
                flags=frozenset(flags),
            )
        )
    positions.extend(
        _cash_from_balances(
            payload.get("accounts") or [], cash_seen, account_id=account_id, as_of=as_of
        )
    )
    return positions


def _cash_from_balances(
    accounts: Sequence[Any],
    cash_seen: set[tuple[str, str]],
    *,
    account_id: str | None,
    as_of: datetime | None,
) -> list[Position]:
    positions: list[Position] = []
    for i, account in enumerate(accounts):
        path = f"accounts[{i}]"
        if not isinstance(account, Mapping):
            raise malformed(_HOLDINGS_OP, path, "expected an object")
        acct = _required_str(account, "account_id", path, _HOLDINGS_OP)
        if account_id is not None and acct != account_id:
            continue
        cash, currency = _balance_cash(account, path, _HOLDINGS_OP)
        balances = account.get("balances") or {}
        updated = _parse_datetime(
            balances.get("last_updated_datetime"), f"{path}.balances.last_updated_datetime"
        )
        # A zero balance adds no position: "no cash" needs no line of its own.
        if not cash or currency is None or (acct, currency) in cash_seen:
            continue
        if not _ISO.fullmatch(currency):
            continue
        positions.append(
            Position(
                provider=Provider.PLAID,
                account_id=acct,
                instrument=Instrument(
                    symbol=cash_ticker(currency),
                    kind=InstrumentKind.CASH,
                    currency=currency,
                    name=f"{currency} cash",
                ),
                quantity=cash,
                currency=currency,
                price=Decimal(1),
                market_value=cash,
                as_of=as_of or updated,
                flags=frozenset({FLAG_CASH_FROM_BALANCE}),
            )
        )
    return positions


def cash_by_account(positions: Iterable[Position]) -> dict[str, dict[str, Decimal]]:
    """Cash per account and currency from normalised positions (kind CASH, all sources)."""
    out: dict[str, dict[str, Decimal]] = {}
    for position in positions:
        if position.instrument.kind is not InstrumentKind.CASH:
            continue
        value = position.market_value if position.market_value is not None else position.quantity
        per_ccy = out.setdefault(position.account_id, {})
        per_ccy[position.currency] = per_ccy.get(position.currency, Decimal(0)) + value
    return out
