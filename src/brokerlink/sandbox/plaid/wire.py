"""Render sandbox state as Plaid's JSON shapes (spec 2020-09-14); nothing here mutates state."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from brokerlink.sandbox.plaid.seed import InstitutionSeed, SecuritySeed, stable_id
from brokerlink.sandbox.plaid.state import (
    Account,
    Item,
    LinkSession,
    LinkToken,
    PlaidSandboxState,
    days_before,
    timestamp,
)

__all__ = [
    "account_json",
    "institution_json",
    "investment_transactions",
    "item_json",
    "item_status_json",
    "link_session_json",
    "link_token_get_json",
    "security_json",
]


def item_json(state: PlaidSandboxState, item: Item) -> dict[str, Any]:
    inst = item.institution
    available = [p for p in inst.products if p not in item.products]
    return {
        "item_id": item.item_id,
        "institution_id": inst.institution_id,
        "institution_name": inst.name,
        "webhook": item.webhook,
        "auth_method": None,
        "error": None if item.error is None else item.error.webhook_body(),
        "available_products": sorted({*available, "balance"} - set(item.products)),
        "billed_products": sorted(item.products),
        "products": sorted(item.products),
        "consented_products": sorted(item.products),
        "consent_expiration_time": None,
        "update_type": "background",
        "created_at": timestamp(item.created_at),
    }


def item_status_json(state: PlaidSandboxState, item: Item) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if "investments" in item.products:
        status["investments"] = {
            "last_successful_update": timestamp(item.last_investments_update),
            "last_failed_update": None,
        }
    if "transactions" in item.products:
        status["transactions"] = {
            "last_successful_update": timestamp(state.transactions_updated_at(item)),
            "last_failed_update": None,
        }
    if item.last_webhook is not None:
        status["last_webhook"] = {
            "sent_at": timestamp(item.last_webhook[0]),
            "code_sent": item.last_webhook[1],
        }
    return status


def account_json(
    state: PlaidSandboxState, item: Item, account: Account, *, investment: bool = False
) -> dict[str, Any]:
    t = account.template
    if t.type == "investment":
        value = state.account_value(item, account)
        cash = sum(
            h.quantity * price
            for h, sec, price in state.holdings(item, account)
            if sec.is_cash_equivalent
        )
        current: float | None = value
        available: float | None = round(cash, 2)
    else:
        current, available = t.current, t.available
    balances: dict[str, Any] = {
        "available": available,
        "current": current,
        "limit": t.limit,
        "iso_currency_code": "USD",
        "unofficial_currency_code": None,
        "last_updated_datetime": None,
    }
    if investment:
        balances["margin_loan_amount"] = None
    return {
        "account_id": account.account_id,
        "balances": balances,
        "mask": t.mask,
        "name": t.name,
        "official_name": t.official_name,
        "type": t.type,
        "subtype": t.subtype,
        "persistent_account_id": stable_id("persistent", item.institution.institution_id, t.key),
        "holder_category": "personal",
    }


def security_json(state: PlaidSandboxState, item: Item, sec: SecuritySeed) -> dict[str, Any]:
    return {
        "security_id": sec.security_id,
        "isin": sec.isin,
        "cusip": sec.cusip,
        "sedol": None,
        "institution_security_id": sec.institution_security_id,
        "institution_id": sec.institution_id,
        "proxy_security_id": None,
        "name": sec.name,
        "ticker_symbol": sec.ticker,
        "is_cash_equivalent": sec.is_cash_equivalent,
        "type": sec.type,
        "subtype": sec.subtype,
        "close_price": state.price(item, sec),
        "close_price_as_of": state.today().isoformat(),
        "update_datetime": None,
        "iso_currency_code": "USD",
        "unofficial_currency_code": None,
        "market_identifier_code": sec.mic,
        "sector": sec.sector,
        "industry": sec.industry,
        "cfi_code": sec.cfi_code,
        # Not in spec 1.697.4, but plaid-python 46 requires it (extra fields are allowed).
        "figi": None,
        "option_contract": sec.option_contract,
        "fixed_income": sec.fixed_income,
    }


def holdings_json(
    state: PlaidSandboxState, item: Item, accounts: list[Account]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(holdings, securities) of `accounts`; each security appears once."""
    holdings: list[dict[str, Any]] = []
    securities: dict[str, dict[str, Any]] = {}
    as_of = state.today().isoformat()
    for account in accounts:
        for h, sec, price in state.holdings(item, account):
            value = round(h.quantity * price, 2)
            holdings.append(
                {
                    "account_id": account.account_id,
                    "security_id": sec.security_id,
                    "institution_price": price,
                    "institution_price_as_of": as_of,
                    "institution_price_datetime": None,
                    "institution_value": value,
                    "cost_basis": h.cost_basis,
                    "quantity": h.quantity,
                    "iso_currency_code": "USD",
                    "unofficial_currency_code": None,
                    "vested_quantity": h.vested_quantity,
                    "vested_value": (
                        None if h.vested_quantity is None else round(h.vested_quantity * price, 2)
                    ),
                }
            )
            securities.setdefault(sec.security_id, security_json(state, item, sec))
    return holdings, list(securities.values())


def investment_transactions(
    state: PlaidSandboxState, item: Item, accounts: list[Account], start: date, end: date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(transactions newest first with a stable order, securities they reference)."""
    today = state.today()
    rows: list[tuple[date, str, dict[str, Any]]] = []
    securities: dict[str, dict[str, Any]] = {}
    for account in accounts:
        for n, t in enumerate(account.template.transactions):
            day = days_before(today, t.days_ago)
            if not start <= day <= end:
                continue
            sec = state.securities[t.security] if t.security else None
            fees = t.fees
            amount = t.amount
            if amount is None:
                amount = round(t.quantity * t.price + (fees or 0.0), 2)
            txn_id = stable_id("txn", item.item_id, account.account_id, str(n))
            rows.append(
                (
                    day,
                    txn_id,
                    {
                        "investment_transaction_id": txn_id,
                        "account_id": account.account_id,
                        "security_id": sec.security_id if sec else None,
                        "date": day.isoformat(),
                        "transaction_datetime": None,
                        "name": t.name or t.subtype,
                        "quantity": t.quantity,
                        "amount": amount,
                        "price": t.price,
                        "fees": fees,
                        "type": t.type,
                        "subtype": t.subtype,
                        "iso_currency_code": "USD",
                        "unofficial_currency_code": None,
                        "cancel_transaction_id": None,
                    },
                )
            )
            if sec is not None:
                securities.setdefault(sec.security_id, security_json(state, item, sec))
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    return [r[2] for r in rows], list(securities.values())


def institution_json(
    inst: InstitutionSeed, *, optional_metadata: bool = False, status: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "institution_id": inst.institution_id,
        "name": inst.name,
        "products": list(inst.products),
        "country_codes": list(inst.country_codes),
        "routing_numbers": list(inst.routing_numbers),
        "dtc_numbers": [],
        "oauth": inst.oauth,
        # Required by plaid-python 46's Institution model though absent from spec 1.697.4.
        "connection_availability": "SUPPORTED",
    }
    if optional_metadata:
        out.update(url=inst.url, primary_color=inst.primary_color, logo=None)
    if status:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        healthy = {
            "status": "HEALTHY",
            "last_status_change": now,
            "breakdown": {"success": 0.99, "error_plaid": 0.005, "error_institution": 0.005},
        }
        out["status"] = {"item_logins": healthy, "investments_updates": healthy}
    return out


def link_session_json(session: LinkSession, item: Item | None) -> dict[str, Any]:
    item_add: list[dict[str, Any]] = []
    institution = None
    accounts: list[dict[str, Any]] = []
    if item is not None:
        institution = {
            "name": item.institution.name,
            "institution_id": item.institution.institution_id,
        }
        accounts = [
            {
                "id": a.account_id,
                "name": a.template.name,
                "mask": a.template.mask,
                "type": a.template.type,
                "subtype": a.template.subtype,
                "verification_status": None,
                "class_type": None,
            }
            for a in item.accounts
        ]
        if session.public_token is not None:
            item_add.append(
                {
                    "public_token": session.public_token,
                    "accounts": accounts,
                    "institution": institution,
                }
            )
    out: dict[str, Any] = {
        "link_session_id": session.link_session_id,
        "started_at": timestamp(session.started_at),
        "finished_at": timestamp(session.finished_at),
        "events": session.events,
    }
    if session.exit is not None:
        out["exit"] = session.exit
    elif session.finished_at is not None:
        out["results"] = {
            "item_add_results": item_add,
            "cra_item_add_results": [],
            "cra_update_results": [],
            "bank_income_results": [],
            "payroll_income_results": [],
            "document_income_results": None,
        }
        out["on_success"] = {
            "public_token": session.public_token or "",
            "metadata": {
                "institution": institution,
                "accounts": accounts,
                "link_session_id": session.link_session_id,
            },
        }
    return out


def link_token_get_json(state: PlaidSandboxState, token: LinkToken) -> dict[str, Any]:
    out: dict[str, Any] = {
        "link_token": token.link_token,
        "created_at": timestamp(token.created_at),
        "expiration": timestamp(token.expires_at),
        "link_sessions": [
            link_session_json(s, state.items.get(s.item_id) if s.item_id else None)
            for s in token.sessions
        ],
        "metadata": {
            "initial_products": token.products,
            "webhook": token.webhook,
            "country_codes": token.country_codes,
            "language": token.language,
            "redirect_uri": token.redirect_uri,
            "client_name": token.client_name,
        },
    }
    if token.user_id is not None:
        out["user_id"] = token.user_id
    return out
