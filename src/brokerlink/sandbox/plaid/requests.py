"""Request bodies of the emulated endpoints, validated the way Plaid answers bad input.

Missing fields become `INVALID_REQUEST / MISSING_FIELDS`, unknown top-level fields
`UNKNOWN_FIELDS`, everything else `INVALID_FIELD`, each naming the offending fields.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from brokerlink.sandbox.plaid.errors import PlaidError

__all__ = [
    "PRODUCTS",
    "AccessTokenRequest",
    "AccountsRequest",
    "FireWebhookRequest",
    "InstitutionGetByIdRequest",
    "InstitutionsSearchRequest",
    "InvestmentsTransactionsRequest",
    "ItemRemoveRequest",
    "ItemWebhookUpdateRequest",
    "LinkTokenCreateRequest",
    "LinkTokenGetRequest",
    "PlaidRequest",
    "PublicTokenExchangeRequest",
    "SandboxPublicTokenCreateRequest",
    "WebhookVerificationKeyGetRequest",
    "parse_request",
]

# The spec's Products enum (balance is implicit and refused in link/token/create).
PRODUCTS = frozenset(
    "assets auth balance balance_plus beacon identity identity_match investments "
    "investments_auth liabilities payment_initiation identity_verification transactions "
    "credit_details income income_verification standing_orders transfer employment "
    "recurring_transactions transactions_refresh signal statements processor_payments "
    "processor_identity profile cra_base_report cra_income_insights cra_partner_insights "
    "cra_network_insights cra_cashflow_insights cra_monitoring cra_lend_score "
    "cra_plaid_credit_score layer pay_by_bank protect_linked_bank protect_transactions".split()
)
COUNTRY_CODES = frozenset("US GB ES NL FR IE CA DE IT PL DK NO SE EE LT LV PT BE AT FI".split())


def _products(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    bad = [p for p in value if p not in PRODUCTS]
    if bad:
        raise ValueError(f"unknown products: {', '.join(bad)}")
    return value


def _countries(value: list[str]) -> list[str]:
    bad = [c for c in value if c not in COUNTRY_CODES]
    if bad:
        raise ValueError(f"unknown country codes: {', '.join(bad)}")
    if not value:
        raise ValueError("at least one country code is required")
    return value


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class PlaidRequest(BaseModel):
    """Every body may carry the credentials; the headers are the other place for them."""

    model_config = ConfigDict(extra="forbid", strict=True)

    client_id: str | None = None
    secret: str | None = None


class AccessTokenRequest(PlaidRequest):
    access_token: str


class AccountIdsOptions(_Open):
    account_ids: list[str] | None = None


class AccountsRequest(AccessTokenRequest):
    options: AccountIdsOptions | None = None


class BalanceOptions(AccountIdsOptions):
    min_last_updated_datetime: str | None = None


class BalanceRequest(AccessTokenRequest):
    options: BalanceOptions | None = None


class ItemRemoveRequest(AccessTokenRequest):
    reason_code: (
        Literal[
            "FRAUD_FIRST_PARTY",
            "FRAUD_FALSE_IDENTITY",
            "FRAUD_ABUSE",
            "FRAUD_OTHER",
            "CONNECTION_IS_NON_FUNCTIONAL",
            "OTHER",
        ]
        | None
    ) = None
    reason_note: str | None = None


class InvestmentsTransactionsOptions(AccountIdsOptions):
    count: int = Field(default=100, ge=1, le=500)
    offset: int = Field(default=0, ge=0)
    async_update: bool = False


class InvestmentsTransactionsRequest(AccessTokenRequest):
    start_date: date
    end_date: date
    options: InvestmentsTransactionsOptions | None = None


class ItemWebhookUpdateRequest(AccessTokenRequest):
    webhook: str | None = None


class PublicTokenExchangeRequest(PlaidRequest):
    public_token: str


class SandboxPublicTokenOptions(_Open):
    webhook: str | None = None
    override_username: str | None = "user_good"
    override_password: str | None = "pass_good"


class SandboxPublicTokenCreateRequest(PlaidRequest):
    institution_id: str
    initial_products: list[str] = Field(min_length=1)
    options: SandboxPublicTokenOptions | None = None
    user_token: str | None = None
    user_id: str | None = None

    _check_products = field_validator("initial_products")(_products)


class LinkUser(_Open):
    client_user_id: str


class LinkUpdate(_Open):
    account_selection_enabled: bool = False


class LinkTokenCreateRequest(PlaidRequest):
    # Link options are many and mostly irrelevant here; unknown ones are accepted and ignored.
    model_config = ConfigDict(extra="allow", strict=True)

    client_name: str = Field(min_length=1)
    language: str = Field(min_length=2)
    country_codes: list[str]
    user: LinkUser | None = None
    user_id: str | None = None
    products: list[str] | None = None
    required_if_supported_products: list[str] | None = None
    optional_products: list[str] | None = None
    additional_consented_products: list[str] | None = None
    webhook: str | None = None
    access_token: str | None = None
    redirect_uri: str | None = None
    android_package_name: str | None = None
    hosted_link: dict[str, Any] | None = None
    update: LinkUpdate | None = None
    institution_id: str | None = None

    _check_products = field_validator(
        "products",
        "required_if_supported_products",
        "optional_products",
        "additional_consented_products",
    )(_products)
    _check_countries = field_validator("country_codes")(_countries)

    @field_validator("redirect_uri")
    @classmethod
    def _no_query(cls, value: str | None) -> str | None:
        if value is not None and ("?" in value or "#" in value):
            raise ValueError("redirect_uri must not contain query parameters or a fragment")
        return value


class LinkTokenGetRequest(PlaidRequest):
    link_token: str


class InstitutionsSearchOptions(_Open):
    oauth: bool | None = None
    include_optional_metadata: bool = False


class InstitutionsSearchRequest(PlaidRequest):
    query: str = Field(min_length=1)
    products: list[str] | None = None
    country_codes: list[str]
    options: InstitutionsSearchOptions | None = None

    _check_products = field_validator("products")(_products)
    _check_countries = field_validator("country_codes")(_countries)


class InstitutionGetByIdOptions(_Open):
    include_optional_metadata: bool = False
    include_status: bool = False


class InstitutionGetByIdRequest(PlaidRequest):
    institution_id: str
    country_codes: list[str]
    options: InstitutionGetByIdOptions | None = None

    _check_countries = field_validator("country_codes")(_countries)


class FireWebhookRequest(AccessTokenRequest):
    webhook_type: str | None = None
    webhook_code: str


M = TypeVar("M", bound=BaseModel)


class WebhookVerificationKeyGetRequest(PlaidRequest):
    key_id: str


def parse_request(model: type[M], body: dict[str, Any]) -> M:
    """Validate `body` against `model`, raising Plaid's INVALID_REQUEST error object."""
    try:
        # JSON mode: strict types, but ISO date strings still parse as dates.
        return model.model_validate_json(json.dumps(body))
    except ValidationError as e:
        missing, unknown, invalid = [], [], []
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                missing.append(where)
            elif err["type"] == "extra_forbidden":
                unknown.append(where)
            else:
                invalid.append(f"{where}: {err['msg']}")
        if missing:
            raise PlaidError(
                "INVALID_REQUEST",
                "MISSING_FIELDS",
                f"the following required fields are missing: {', '.join(missing)}",
            ) from e
        if unknown:
            raise PlaidError(
                "INVALID_REQUEST",
                "UNKNOWN_FIELDS",
                f"the following fields are not recognized by this endpoint: {', '.join(unknown)}",
            ) from e
        raise PlaidError("INVALID_REQUEST", "INVALID_FIELD", "; ".join(invalid)) from e
