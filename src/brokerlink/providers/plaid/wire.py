"""Plaid's JSON shapes (API version 2020-09-14) as `TypedDict`s: only the fields we read.

Field notes come from the official OpenAPI spec. Numbers arrive as JSON numbers (floats); the
normaliser turns them into `Decimal` through `str()`.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "AccountBalances",
    "AccountsGetResponse",
    "Holding",
    "HoldingsGetResponse",
    "Institution",
    "InstitutionGetByIdResponse",
    "InstitutionsSearchResponse",
    "InvestmentAccount",
    "InvestmentTransaction",
    "InvestmentTransactionsGetResponse",
    "Item",
    "ItemGetResponse",
    "LinkTokenCreateResponse",
    "LinkTokenGetResponse",
    "OptionContract",
    "PlaidErrorObject",
    "PublicTokenCreateResponse",
    "PublicTokenExchangeResponse",
    "RequestIdResponse",
    "Security",
    "Webhook",
    "WebhookVerificationKey",
]


class PlaidErrorObject(TypedDict, total=False):
    error_type: str
    error_code: str
    error_code_reason: str | None
    error_message: str
    display_message: str | None
    request_id: str
    status: int | None


class RequestIdResponse(TypedDict):
    request_id: str


class LinkTokenCreateResponse(TypedDict, total=False):
    link_token: str
    expiration: str
    request_id: str
    hosted_link_url: str
    user_id: str


class LinkSessionItemAddResult(TypedDict, total=False):
    public_token: str
    accounts: list[dict[str, Any]]
    institution: dict[str, Any]


class LinkSessionResults(TypedDict, total=False):
    item_add_results: list[LinkSessionItemAddResult]


class LinkSession(TypedDict, total=False):
    link_session_id: str
    started_at: str | None
    finished_at: str | None
    results: LinkSessionResults | None
    exit: dict[str, Any] | None


class LinkTokenGetResponse(TypedDict, total=False):
    link_token: str
    created_at: str | None
    expiration: str | None
    link_sessions: list[LinkSession]
    metadata: dict[str, Any]
    request_id: str


class PublicTokenExchangeResponse(TypedDict):
    access_token: str
    item_id: str
    request_id: str


class PublicTokenCreateResponse(TypedDict):
    public_token: str
    request_id: str


class Item(TypedDict, total=False):
    item_id: str
    institution_id: str | None
    institution_name: str | None
    webhook: str | None
    error: PlaidErrorObject | None
    available_products: list[str]
    billed_products: list[str]
    products: list[str]
    consent_expiration_time: str | None
    update_type: str
    created_at: str


class ItemGetResponse(TypedDict, total=False):
    item: Item
    status: dict[str, Any] | None
    request_id: str


class AccountBalances(TypedDict, total=False):
    available: float | None
    current: float | None
    limit: float | None
    iso_currency_code: str | None
    unofficial_currency_code: str | None
    last_updated_datetime: str | None
    margin_loan_amount: float | None


class InvestmentAccount(TypedDict, total=False):
    account_id: str
    balances: AccountBalances
    mask: str | None
    name: str
    official_name: str | None
    type: str
    subtype: str | None


class AccountsGetResponse(TypedDict, total=False):
    accounts: list[InvestmentAccount]
    item: Item
    request_id: str


class Holding(TypedDict, total=False):
    account_id: str
    security_id: str
    institution_price: float
    institution_price_as_of: str | None
    institution_price_datetime: str | None
    institution_value: float
    cost_basis: float | None  # TOTAL cost of the holding, not per share
    quantity: float
    iso_currency_code: str | None
    unofficial_currency_code: str | None
    vested_quantity: float | None
    vested_value: float | None


class OptionContract(TypedDict, total=False):
    contract_type: str  # "call" | "put"
    expiration_date: str
    strike_price: float
    underlying_security_ticker: str


class FixedIncome(TypedDict, total=False):
    face_value: float | None
    issue_date: str | None
    maturity_date: str | None
    yield_rate: dict[str, Any] | None


class Security(TypedDict, total=False):
    security_id: str
    isin: str | None
    cusip: str | None
    sedol: str | None
    institution_security_id: str | None
    institution_id: str | None
    proxy_security_id: str | None
    name: str | None
    ticker_symbol: str | None
    is_cash_equivalent: bool | None
    type: str | None
    subtype: str | None
    close_price: float | None
    close_price_as_of: str | None
    update_datetime: str | None
    iso_currency_code: str | None
    unofficial_currency_code: str | None
    market_identifier_code: str | None
    option_contract: OptionContract | None
    fixed_income: FixedIncome | None


class HoldingsGetResponse(TypedDict, total=False):
    accounts: list[InvestmentAccount]
    holdings: list[Holding]
    securities: list[Security]
    item: Item
    request_id: str


class InvestmentTransaction(TypedDict, total=False):
    investment_transaction_id: str
    account_id: str
    security_id: str | None
    date: str
    transaction_datetime: str | None
    name: str
    quantity: float
    amount: float
    price: float
    fees: float | None
    type: str
    subtype: str
    iso_currency_code: str | None
    unofficial_currency_code: str | None


class InvestmentTransactionsGetResponse(TypedDict, total=False):
    accounts: list[InvestmentAccount]
    securities: list[Security]
    investment_transactions: list[InvestmentTransaction]
    total_investment_transactions: int
    item: Item
    request_id: str


class Institution(TypedDict, total=False):
    institution_id: str
    name: str
    products: list[str]
    country_codes: list[str]
    oauth: bool
    url: str | None
    status: dict[str, Any] | None


class InstitutionsSearchResponse(TypedDict, total=False):
    institutions: list[Institution]
    request_id: str


class InstitutionGetByIdResponse(TypedDict, total=False):
    institution: Institution
    request_id: str


class WebhookVerificationKey(TypedDict, total=False):
    """The `key` of /webhook_verification_key/get: a public EC JWK, dated."""

    alg: str
    kid: str
    kty: str
    crv: str
    x: str
    y: str
    use: str
    created_at: int
    expired_at: int | None


class Webhook(TypedDict, total=False):
    webhook_type: str
    webhook_code: str
    item_id: str
    error: PlaidErrorObject | None
    environment: str
    consent_expiration_time: str | None
    disconnect_time: str | None
    reason: str | None
