"""Plaid error objects -> typed errors, and the retry decision, as tables."""

import httpx
import pytest

from brokerlink.domain.errors import (
    AuthFailed,
    LogicalError,
    MalformedResponse,
    NotFound,
    ProviderRejected,
    ProviderUnavailable,
    RateLimited,
    ReconnectRequired,
    TechnicalError,
)
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.operations import Kind
from brokerlink.providers.plaid import errors as e

from .conftest import ACCESS_TOKEN, plaid_error

OP = "/investments/holdings/get"


@pytest.mark.parametrize(
    ("code", "error_type", "status", "cls", "family"),
    [
        ("ITEM_LOGIN_REQUIRED", "ITEM_ERROR", 400, e.LoginRequired, ReconnectRequired),
        ("PRODUCT_NOT_READY", "ITEM_ERROR", 400, e.ProductNotReady, TechnicalError),
        ("ACCOUNTS_LIMIT", "RATE_LIMIT_EXCEEDED", 429, e.PlaidRateLimited, RateLimited),
        ("INSTITUTION_DOWN", "INSTITUTION_ERROR", 400, e.InstitutionDown, ProviderUnavailable),
        (
            "INSTITUTION_NOT_RESPONDING",
            "INSTITUTION_ERROR",
            400,
            e.InstitutionDown,
            ProviderUnavailable,
        ),
        ("INTERNAL_SERVER_ERROR", "API_ERROR", 500, e.PlaidUnavailable, ProviderUnavailable),
        ("INVALID_ACCESS_TOKEN", "INVALID_INPUT", 400, e.InvalidAccessToken, AuthFailed),
        ("INVALID_API_KEYS", "INVALID_INPUT", 400, e.PlaidAuthFailed, AuthFailed),
        ("PRODUCTS_NOT_SUPPORTED", "ITEM_ERROR", 400, e.ProductsNotSupported, ProviderRejected),
        ("PRODUCT_NOT_SUPPORTED", "ITEM_ERROR", 400, e.ProductsNotSupported, ProviderRejected),
        ("ITEM_NOT_FOUND", "ITEM_ERROR", 400, e.ItemNotFound, NotFound),
        ("INVALID_BODY", "INVALID_REQUEST", 400, e.PlaidRejected, ProviderRejected),
        ("INVALID_FIELD", "INVALID_INPUT", 400, e.PlaidRejected, ProviderRejected),
        ("SOMETHING_NEW", "API_ERROR", 503, e.PlaidUnavailable, ProviderUnavailable),
        ("SOMETHING_NEW", "SOME_NEW_TYPE", 400, e.PlaidRejected, ProviderRejected),
    ],
)
def test_error_mapping(code, error_type, status, cls, family):
    err = e.error_from_response(plaid_error(code, error_type, status), OP)
    assert type(err) is cls
    assert isinstance(err, family)
    assert isinstance(err, e.PlaidError)
    assert err.code == code == err.error_code
    assert err.error_type == error_type
    assert err.request_id == "HNTDNrA8F1shFEW"
    assert err.status == status
    assert OP in str(err)
    assert code in str(err)


def test_retryable_families():
    assert e.error_from_response(plaid_error("PRODUCT_NOT_READY"), OP).retryable
    assert not e.error_from_response(plaid_error("ITEM_LOGIN_REQUIRED"), OP).retryable
    assert isinstance(e.error_from_response(plaid_error("INVALID_API_KEYS"), OP), LogicalError)


def test_non_json_errors_by_status():
    assert type(e.error_from_response(httpx.Response(502, text="<html>"), OP)) is (
        e.PlaidUnavailable
    )
    bad = e.error_from_response(httpx.Response(400, text="nope"), OP)
    assert isinstance(bad, MalformedResponse)
    unknown_shape = e.error_from_response(httpx.Response(400, json={"oops": 1}), OP)
    assert isinstance(unknown_shape, MalformedResponse)


def test_rate_limited_carries_retry_after():
    err = e.error_from_response(
        plaid_error("ACCOUNTS_LIMIT", "RATE_LIMIT_EXCEEDED", 429), OP, retry_after=7.0
    )
    assert isinstance(err, RateLimited)
    assert err.retry_after == 7.0


def test_message_never_carries_a_token():
    response = plaid_error(
        "INVALID_ACCESS_TOKEN", "INVALID_INPUT", message=f"token {ACCESS_TOKEN} is not valid"
    )
    err = e.error_from_response(response, OP)
    assert ACCESS_TOKEN not in str(err)
    assert ACCESS_TOKEN not in (err.plaid_message or "")
    assert "[REDACTED]" in str(err)


def test_display_message_kept():
    response = httpx.Response(
        400,
        json={
            "error_type": "INSTITUTION_ERROR",
            "error_code": "INSTITUTION_DOWN",
            "error_message": "this institution is not currently responding",
            "display_message": "This financial institution is not currently responding.",
            "request_id": "r1",
        },
    )
    err = e.error_from_response(response, OP)
    assert err.display_message == "This financial institution is not currently responding."


POLICY = RetryPolicy(max_retries=3, jitter=0.0)
IDEM, BILLED, SINGLE = Kind.IDEMPOTENT, Kind.BILLED, Kind.SINGLE_USE


@pytest.mark.parametrize(
    ("outcome", "attempt", "kind", "expected"),
    [
        (plaid_error("PRODUCT_NOT_READY"), 1, IDEM, True),
        (plaid_error("PRODUCT_NOT_READY"), 4, IDEM, False),  # bounded
        (plaid_error("PRODUCT_NOT_READY"), 1, BILLED, False),  # a billed call is never repeated
        (plaid_error("INSTITUTION_DOWN", "INSTITUTION_ERROR"), 1, IDEM, True),
        (plaid_error("INSTITUTION_NOT_RESPONDING", "INSTITUTION_ERROR"), 1, IDEM, True),
        (plaid_error("INSTITUTION_NOT_RESPONDING", "INSTITUTION_ERROR", 502), 1, BILLED, False),
        (plaid_error("ACCOUNTS_LIMIT", "RATE_LIMIT_EXCEEDED", 429), 1, IDEM, True),
        (plaid_error("INTERNAL_SERVER_ERROR", "API_ERROR", 500), 2, IDEM, True),
        (plaid_error("INTERNAL_SERVER_ERROR", "API_ERROR", 500), 1, SINGLE, False),
        (httpx.Response(503, text="down"), 1, IDEM, True),
        (plaid_error("INVALID_ACCESS_TOKEN", "INVALID_INPUT"), 1, IDEM, False),
        (plaid_error("ITEM_LOGIN_REQUIRED"), 1, IDEM, False),
        (plaid_error("PRODUCTS_NOT_SUPPORTED"), 1, IDEM, False),
        (plaid_error("INVALID_API_KEYS", "INVALID_INPUT"), 1, IDEM, False),
        (httpx.Response(400, text="not json"), 1, IDEM, False),
        (httpx.ConnectError("refused"), 1, IDEM, True),
        (httpx.ReadTimeout("slow"), 1, IDEM, True),
        (httpx.ConnectError("refused"), 1, BILLED, True),
        (httpx.ReadTimeout("slow"), 1, BILLED, False),  # a billed call may have happened
        (ValueError("bug"), 1, IDEM, False),
    ],
)
def test_should_retry(outcome, attempt, kind, expected):
    transient = isinstance(outcome, httpx.Response) and e.is_transient(outcome)
    assert POLICY.should_retry(outcome, attempt, kind, transient_answer=transient) is expected
