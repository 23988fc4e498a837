"""JSON shapes of the SnapTrade API (components/schemas in api.yaml), built from sandbox state."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokerlink.sandbox.snaptrade import seed
from brokerlink.sandbox.snaptrade.seed import OptionContract, SymbolInfo, sandbox_uuid
from brokerlink.sandbox.snaptrade.state import (
    Account,
    Activity,
    Authorization,
    Brokerage,
    Holding,
    Order,
    SandboxState,
)

__all__ = [
    "account",
    "activity",
    "authorization",
    "balances",
    "brokerage",
    "error_body",
    "holdings_synced",
    "isotime",
    "order",
    "order_v2",
    "positions",
    "universal_symbol",
]

JSON = dict[str, Any]


def isotime(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat()


def isodate(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


def dec(value: Decimal | None) -> str | None:
    """Decimal as a plain string (the spec's `format: decimal`)."""
    if value is None:
        return None
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def num(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def error_body(status: int, code: str, detail: str) -> JSON:
    return {"detail": detail, "status_code": status, "code": code}


def currency(code: str) -> JSON:
    return {"id": sandbox_uuid("currency", code), "code": code, "name": seed.CURRENCIES[code]}


def exchange(mic: str) -> JSON:
    code, name, tz, suffix = seed.EXCHANGES[mic]
    return {
        "id": sandbox_uuid("exchange", mic),
        "code": code,
        "mic_code": mic,
        "name": name,
        "timezone": tz,
        "start_time": "09:30:00",
        "close_time": "16:00:00",
        "suffix": suffix,
    }


def security_type(code: str) -> JSON:
    return {
        "id": sandbox_uuid("security-type", code),
        "code": code,
        "description": seed.SECURITY_TYPES[code],
        "is_supported": True,
    }


def universal_symbol(s: SymbolInfo) -> JSON:
    return {
        "id": s.id,
        "symbol": s.symbol,
        "raw_symbol": s.raw_symbol,
        "description": s.description,
        "currency": currency(s.currency),
        "exchange": exchange(s.mic),
        "type": security_type(s.type_code),
        "figi_code": s.figi,
        "figi_instrument": {"figi_code": s.figi, "figi_share_class": None} if s.figi else None,
        "currencies": [currency(s.currency)],
    }


def brokerage(b: Brokerage) -> JSON:
    slug = b.slug.lower()
    return {
        "id": b.id,
        "slug": b.slug,
        "name": b.name,
        "display_name": b.display_name,
        "description": f"{b.name} (SnapTrade sandbox)",
        "aws_s3_logo_url": f"https://sandbox.invalid/logos/{slug}.svg",
        "aws_s3_square_logo_url": f"https://sandbox.invalid/logos/{slug}-square.svg",
        "url": b.url,
        "enabled": b.enabled,
        "maintenance_mode": b.maintenance_mode,
        "is_degraded": b.is_degraded,
        "allows_trading": b.allows_trading,
        "allows_fractional_units": b.slug in ("ROBINHOOD", "ALPACA", "SCHWAB", "FIDELITY"),
        "has_reporting": True,
        "is_real_time_connection": b.is_real_time_connection,
        "brokerage_type": {
            "id": sandbox_uuid("brokerage-type", "traditional"),
            "name": "Traditional Brokerage",
        },
        "exchanges": [],
        "open_url": None,
    }


def authorization(state: SandboxState, a: Authorization) -> JSON:
    b = state.brokerages[a.slug]
    return {
        "id": a.id,
        "created_date": isotime(a.created_at),
        "updated_date": isotime(a.updated_at),
        "brokerage": brokerage(b),
        "name": a.name,
        "type": a.type,
        "disabled": a.disabled,
        "disabled_date": isotime(a.disabled_at),
        "meta": {},
        "is_eligible_for_payout": True,
        "data_freshness_mode": "realtime" if b.is_real_time_connection else "delayed",
    }


def holdings_synced(state: SandboxState, a: Account) -> float:
    """When the account's holdings last changed: linked, refreshed, or a fill. Positions,
    balances and orders never change without `sync_status.holdings` moving."""
    refreshed = state.authorizations[a.authorization_id].last_refresh
    return max(refreshed or a.created_at, a.created_at, a.holdings_changed_at or a.created_at)


def account(state: SandboxState, a: Account) -> JSON:
    b = state.brokerages[a.slug]
    synced = holdings_synced(state, a)
    acts = state.activities.get(a.id, [])
    first = min((x.trade_date for x in acts), default=None)
    return {
        "id": a.id,
        "brokerage_authorization": a.authorization_id,
        "name": a.name,
        "number": a.number,
        "institution_account_id": a.institution_account_id,
        "institution_name": b.display_name,
        "created_date": isotime(a.created_at),
        "funding_date": None,
        "opening_date": None,
        "sync_status": {
            "transactions": {
                "initial_sync_completed": True,
                "last_successful_sync": isodate(synced),
                "first_transaction_date": isodate(first),
            },
            "holdings": {
                "initial_sync_completed": True,
                "last_successful_sync": isotime(synced),
                "holdings_unavailable": False,
            },
        },
        "balance": {"total": {"amount": float(a.total_value()), "currency": a.base_currency}},
        "status": "open",
        "raw_type": a.raw_type,
        "account_category": "INVESTMENT",
        "meta": {"type": a.raw_type, "status": "ACTIVE", "institution_name": b.display_name},
        "portfolio_group": None,
        "cash_restrictions": [],
        "is_paper": a.is_paper,
    }


def balances(a: Account) -> list[JSON]:
    return [
        {
            "currency": currency(code),
            "cash": float(amount),
            "buying_power": float(a.buying_power(code)),
        }
        for code, amount in sorted(a.cash.items(), key=lambda kv: kv[0] != a.base_currency)
    ]


def _instrument(s: SymbolInfo) -> JSON:
    return {
        "kind": s.kind,
        "id": s.id,
        "symbol": s.symbol,
        "raw_symbol": s.raw_symbol,
        "description": s.description,
        "currency": s.currency,
        "exchange": s.mic,
        "figi_instrument": {"figi_code": s.figi, "figi_share_class": None} if s.figi else None,
    }


def _option_instrument(o: OptionContract) -> JSON:
    underlying = seed.SYMBOLS[o.underlying]
    return {
        "kind": "option",
        "id": o.id,
        "symbol": o.ticker,
        "option_type": o.option_type,
        "strike_price": dec(o.strike),
        "expiration_date": o.expiration.isoformat(),
        "multiplier": dec(o.multiplier),
        "description": (
            f"{o.underlying} {o.expiration:%m/%d/%Y} {dec(o.strike)} {o.option_type.title()}"
        ),
        "underlying": _instrument(underlying),
    }


def _position(h: Holding) -> JSON:
    if h.option is not None:
        instrument = _option_instrument(h.option)
    else:
        assert h.symbol is not None
        instrument = _instrument(h.symbol)
    return {
        "instrument": instrument,
        "units": dec(h.units),
        "price": dec(h.price),
        "cost_basis": dec(h.cost_basis),
        "currency": h.currency,
        "cash_equivalent": h.cash_equivalent,
        "tax_lots": [],
    }


def positions(state: SandboxState, a: Account) -> JSON:
    as_of = holdings_synced(state, a)
    return {
        "results": [_position(h) for h in a.holdings],
        "data_freshness": {"as_of": isotime(as_of)},
    }


def order(o: Order) -> JSON:
    return {
        "brokerage_order_id": o.brokerage_order_id,
        "brokerage_group_order_id": None,
        "order_role": None,
        "status": o.status,
        "universal_symbol": universal_symbol(o.symbol),
        "option_symbol": None,
        "quote_universal_symbol": None,
        "quote_currency": currency(o.symbol.currency),
        "action": o.action,
        "total_quantity": dec(o.units),
        "open_quantity": dec(o.units - o.filled_units - o.canceled_units),
        "canceled_quantity": dec(o.canceled_units),
        "filled_quantity": dec(o.filled_units),
        "execution_price": dec(o.execution_price),
        "limit_price": dec(o.limit_price),
        "stop_price": dec(o.stop_price),
        "trailing_stop": None,
        "order_type": o.order_type,
        "time_in_force": o.time_in_force,
        "time_placed": isotime(o.placed_at),
        "time_updated": isotime(o.updated_at),
        "time_executed": isotime(o.executed_at),
        "expiry_date": None,
        "symbol": o.symbol.id,
        "child_brokerage_order_ids": None,
    }


_V2_STATUS = {"ACCEPTED": "PENDING", "PARTIAL": "PARTIALLY_EXECUTED"}


def order_v2(o: Order) -> JSON:
    leg_status = _V2_STATUS.get(o.status, o.status)
    return {
        "brokerage_order_id": o.brokerage_order_id,
        "brokerage_group_order_id": None,
        "order_role": None,
        "status": o.status,
        "order_type": o.order_type,
        "time_in_force": o.time_in_force,
        "time_placed": isotime(o.placed_at),
        "time_executed": isotime(o.executed_at),
        "price_currency": o.symbol.currency,
        "price_effect": "DEBIT" if o.action == "BUY" else "CREDIT",
        "execution_price": dec(o.execution_price),
        "limit_price": dec(o.limit_price),
        "stop_price": dec(o.stop_price),
        "trailing_stop": None,
        "legs": [
            {
                "leg_id": f"{o.brokerage_order_id}-1",
                "instrument": {
                    "symbol": o.symbol.symbol,
                    "description": o.symbol.description,
                    "asset_type": o.symbol.kind.upper(),
                    "exchange_mic_code": o.symbol.mic,
                    "figi_code": o.symbol.figi,
                },
                "action": o.action,
                "execution_price": dec(o.execution_price),
                "total_quantity": dec(o.units),
                "canceled_quantity": dec(o.canceled_units),
                "filled_quantity": dec(o.filled_units),
                "status": leg_status,
            }
        ],
    }


def _symbol(s: SymbolInfo) -> JSON:
    body = universal_symbol(s)
    del body["currencies"]
    return body


def activity(state: SandboxState, a: Activity) -> JSON:
    account_ = state.accounts[a.account_id]
    return {
        "id": a.id,
        "symbol": _symbol(a.symbol) if a.symbol else None,
        "currency_universal_symbol": None,
        "option_symbol": None,
        "price": float(a.price),
        "units": float(a.units),
        "amount": float(a.amount),
        "currency": currency(a.currency),
        "type": a.type,
        "option_type": "",
        "description": a.description,
        "trade_date": isotime(a.trade_date),
        "settlement_date": isotime(a.trade_date + 2 * 86400),
        "fee": float(a.fee),
        "fx_rate": None,
        "institution": state.brokerages[account_.slug].display_name,
        "external_reference_id": a.external_reference_id,
    }
