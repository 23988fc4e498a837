"""An async client for the Plaid endpoints brokerlink uses, over plain httpx (no SDK).

Every call is `POST <host>/<path>` with a JSON body. The app's `client_id`/`secret` travel in the
`PLAID-CLIENT-ID`/`PLAID-SECRET` headers (Plaid accepts them there or in the body), so request
bodies never hold the app secret. Every call goes through the one request pipeline
(`providers/_http.py`), which logs one `plaid.<resource>.<verb>` event per attempt with latency,
status, request id and attempt number; bodies and tokens are never logged. This module adds
Plaid's request shape and what its answers say (error objects, transient codes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date
from types import TracebackType
from typing import Any, Literal, Self, cast

import httpx
from pydantic import SecretStr

from brokerlink.log import get_logger
from brokerlink.providers._http import (
    Answer,
    Call,
    Pipeline,
    RetryPolicy,
    default_transport,
    parse_retry_after,
)
from brokerlink.providers.limits import Limits, LocalLimits
from brokerlink.providers.observe import Observer
from brokerlink.providers.operations import plaid_operation

from . import wire
from .errors import (
    RETRYABLE_CODES,
    PlaidUnavailable,
    error_body,
    error_from_response,
    malformed,
)

__all__ = ["ENVIRONMENT_HOSTS", "PLAID_VERSION", "PlaidClient", "event_name"]

PLAID_VERSION = "2020-09-14"
ENVIRONMENT_HOSTS: dict[str, str] = {
    "sandbox": "https://sandbox.plaid.com",
    "production": "https://production.plaid.com",
}
# Lowest per-client limit Plaid publishes for an endpoint we call (/accounts/balance/get).
DEFAULT_RATE_LIMIT_PER_MINUTE = 1200
# /investments/transactions/get allows count 1..500.
MAX_TRANSACTIONS_PAGE = 500
_MAX_PAGES = 1000

_log = get_logger("brokerlink.providers.plaid")


def event_name(path: str) -> str:
    """`/investments/holdings/get` -> `plaid.investments_holdings.get`."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) == 1:
        return f"plaid.{parts[0]}"
    return f"plaid.{'_'.join(parts[:-1])}.{parts[-1]}"


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class PlaidClient:
    """Plaid over HTTP. Use as `async with PlaidClient(...) as plaid:` or call `aclose()`.

    `base_url` overrides the environment's host (the local sandbox); `transport` is for tests
    (`httpx.ASGITransport(app=...)`, `httpx.MockTransport(handler)`). `limits` holds the
    client-wide window (in this process by default; `RedisLimits` shares it across processes).
    """

    def __init__(
        self,
        client_id: str,
        secret: str | SecretStr,
        *,
        environment: Literal["sandbox", "production"] = "sandbox",
        base_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limit_per_minute: int = DEFAULT_RATE_LIMIT_PER_MINUTE,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        limits: Limits | None = None,
        observer: Observer | None = None,
    ) -> None:
        if environment not in ENVIRONMENT_HOSTS:
            raise ValueError(f"unknown Plaid environment: {environment!r}")
        self.environment = environment
        self.base_url = (base_url or ENVIRONMENT_HOSTS[environment]).rstrip("/")
        limits = limits or LocalLimits()
        self.limiter = limits.window(f"plaid:{client_id}", rate_limit_per_minute)
        secret_value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        self._headers = {
            "PLAID-CLIENT-ID": client_id,
            "PLAID-SECRET": secret_value,
            "Plaid-Version": PLAID_VERSION,
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": "brokerlink",
        }
        self._pipeline = Pipeline(
            self,
            transport or default_transport(self.base_url),
            retry=retry if retry is not None else RetryPolicy(),
            timeout=timeout,
            sleep=sleep,
            logger=_log,
            provider="plaid",
            observer=observer,
        )

    def __repr__(self) -> str:
        return f"PlaidClient(environment={self.environment!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._pipeline.aclose()

    @property
    def retry(self) -> RetryPolicy:
        return self._pipeline.retry

    # -- requests and answers (the pipeline's Plaid dialect) -----------------------------------

    async def request(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST `body` to `path`; the decoded JSON object, or a `PlaidError`.

        Retried as `providers/operations.py` classifies `path` (an unclassified path raises
        `UnknownOperation` before anything is sent).
        """
        kind = plaid_operation(path).kind
        content = dict(body)
        answer = await self._pipeline.send(
            Call(
                path,
                event_name(path),
                kind,
                lambda: httpx.Request(
                    "POST", self.base_url + path, headers=self._headers, json=content
                ),
                {"client": self.limiter},
            )
        )
        if answer.parse_error is not None:
            raise malformed(path, "$", "body is not JSON") from answer.parse_error
        if not isinstance(answer.payload, dict):
            raise malformed(path, "$", "body is not a JSON object")
        return answer.payload

    def read(self, call: Call, response: httpx.Response) -> Answer:
        if response.status_code < 300:
            try:
                payload = response.json()
            except ValueError as exc:
                return Answer(response, parse_error=exc)
            request_id = payload.get("request_id") if isinstance(payload, dict) else None
            return Answer(response, payload, log={"request_id": request_id})
        found = error_body(response) or {}
        retry_after = parse_retry_after(response.headers)
        return Answer(
            response,
            found or None,
            log={"request_id": found.get("request_id"), "error_code": found.get("error_code")},
            transient=found.get("error_code") in RETRYABLE_CODES,
            retry_after=retry_after,
            holds={"client": retry_after} if response.status_code == 429 and retry_after else {},
        )

    def failure(self, call: Call, answer: Answer) -> Exception:
        return error_from_response(answer.response, call.operation, retry_after=answer.retry_after)

    def unreachable(self, call: Call, exc: Exception) -> Exception:
        return PlaidUnavailable(
            f"{call.operation} failed: {type(exc).__name__}", operation=call.operation
        )

    async def renew(self) -> bool:
        return False  # Plaid's keys are fixed for the client's life

    # -- Link -----------------------------------------------------------------------------------

    async def link_token_create(
        self,
        *,
        client_user_id: str,
        client_name: str = "brokerlink",
        products: Sequence[str] | None = ("investments",),
        country_codes: Sequence[str] = ("US",),
        language: str = "en",
        webhook: str | None = None,
        redirect_uri: str | None = None,
        institution_id: str | None = None,
        access_token: str | None = None,
        hosted_link: Mapping[str, Any] | None = None,
        required_if_supported_products: Sequence[str] = (),
        optional_products: Sequence[str] = (),
    ) -> wire.LinkTokenCreateResponse:
        """A Link token. With `access_token` it opens update mode (then no product list is sent,
        as Plaid requires). `hosted_link` (may be `{}`) asks for a Hosted Link URL."""
        body: dict[str, Any] = {
            "client_name": client_name,
            "language": language,
            "country_codes": list(country_codes),
            "user": {"client_user_id": client_user_id},
        }
        if access_token is None and products:
            body["products"] = list(products)
            if required_if_supported_products:
                body["required_if_supported_products"] = list(required_if_supported_products)
            if optional_products:
                body["optional_products"] = list(optional_products)
        body |= _drop_none(
            {
                "webhook": webhook,
                "redirect_uri": redirect_uri,
                "institution_id": institution_id,
                "access_token": access_token,
                "hosted_link": dict(hosted_link) if hosted_link is not None else None,
            }
        )
        return cast(wire.LinkTokenCreateResponse, await self.request("/link/token/create", body))

    async def link_token_get(self, link_token: str) -> wire.LinkTokenGetResponse:
        payload = await self.request("/link/token/get", {"link_token": link_token})
        return cast(wire.LinkTokenGetResponse, payload)

    async def item_public_token_exchange(
        self, public_token: str
    ) -> wire.PublicTokenExchangeResponse:
        payload = await self.request("/item/public_token/exchange", {"public_token": public_token})
        for key in ("access_token", "item_id"):
            if not isinstance(payload.get(key), str):
                raise malformed(
                    "/item/public_token/exchange", key, "missing", request_id=_rid(payload)
                )
        return cast(wire.PublicTokenExchangeResponse, payload)

    async def sandbox_public_token_create(
        self,
        institution_id: str,
        initial_products: Sequence[str] = ("investments",),
        *,
        webhook: str | None = None,
        override_username: str | None = None,
        override_password: str | None = None,
    ) -> wire.PublicTokenCreateResponse:
        """Sandbox only: an Item without going through Link."""
        body: dict[str, Any] = {
            "institution_id": institution_id,
            "initial_products": list(initial_products),
        }
        options = _drop_none(
            {
                "webhook": webhook,
                "override_username": override_username,
                "override_password": override_password,
            }
        )
        if options:
            body["options"] = options
        payload = await self.request("/sandbox/public_token/create", body)
        return cast(wire.PublicTokenCreateResponse, payload)

    # -- Items and accounts ---------------------------------------------------------------------

    async def item_get(self, access_token: str) -> wire.ItemGetResponse:
        payload = await self.request("/item/get", {"access_token": access_token})
        if not isinstance(payload.get("item"), dict):
            raise malformed("/item/get", "item", "missing", request_id=_rid(payload))
        return cast(wire.ItemGetResponse, payload)

    async def item_remove(
        self, access_token: str, *, reason_code: str | None = None
    ) -> wire.RequestIdResponse:
        """Ends the Item and its monthly Investments subscription."""
        body = _drop_none({"access_token": access_token, "reason_code": reason_code})
        return cast(wire.RequestIdResponse, await self.request("/item/remove", body))

    async def accounts_get(
        self, access_token: str, *, account_ids: Sequence[str] | None = None
    ) -> wire.AccountsGetResponse:
        """Cached accounts and balances (free)."""
        body = _with_account_ids({"access_token": access_token}, account_ids)
        payload = await self.request("/accounts/get", body)
        _require_list(payload, "accounts", "/accounts/get")
        return cast(wire.AccountsGetResponse, payload)

    async def accounts_balance_get(
        self, access_token: str, *, account_ids: Sequence[str] | None = None
    ) -> wire.AccountsGetResponse:
        """Balances fetched from the institution now (billed per call)."""
        body = _with_account_ids({"access_token": access_token}, account_ids)
        payload = await self.request("/accounts/balance/get", body)
        _require_list(payload, "accounts", "/accounts/balance/get")
        return cast(wire.AccountsGetResponse, payload)

    # -- Investments ----------------------------------------------------------------------------

    async def investments_holdings_get(
        self, access_token: str, *, account_ids: Sequence[str] | None = None
    ) -> wire.HoldingsGetResponse:
        body = _with_account_ids({"access_token": access_token}, account_ids)
        payload = await self.request("/investments/holdings/get", body)
        for key in ("accounts", "holdings", "securities"):
            _require_list(payload, key, "/investments/holdings/get")
        return cast(wire.HoldingsGetResponse, payload)

    async def investments_refresh(self, access_token: str) -> wire.RequestIdResponse:
        """On-demand extraction; Plaid bills each successful call."""
        payload = await self.request("/investments/refresh", {"access_token": access_token})
        return cast(wire.RequestIdResponse, payload)

    async def investments_transactions_get(
        self,
        access_token: str,
        start_date: date | str,
        end_date: date | str,
        *,
        account_ids: Sequence[str] | None = None,
        page_size: int = MAX_TRANSACTIONS_PAGE,
        async_update: bool | None = None,
    ) -> wire.InvestmentTransactionsGetResponse:
        """Every transaction in the range: pages over `offset`/`count` until the total is read.

        Accounts come from the first page; securities are merged across pages by `security_id`.
        """
        path = "/investments/transactions/get"
        count = max(1, min(page_size, MAX_TRANSACTIONS_PAGE))
        transactions: list[dict[str, Any]] = []
        securities: dict[str, dict[str, Any]] = {}
        first: dict[str, Any] | None = None
        total = 0
        for _ in range(_MAX_PAGES):
            options: dict[str, Any] = {"count": count, "offset": len(transactions)}
            if account_ids is not None:
                options["account_ids"] = list(account_ids)
            if async_update is not None:
                options["async_update"] = async_update
            body = {
                "access_token": access_token,
                "start_date": str(start_date),
                "end_date": str(end_date),
                "options": options,
            }
            page = await self.request(path, body)
            page_rows = _require_list(page, "investment_transactions", path)
            raw_total = page.get("total_investment_transactions")
            if not isinstance(raw_total, int) or isinstance(raw_total, bool):
                raise malformed(path, "total_investment_transactions", "not an integer")
            total = raw_total
            if first is None:
                first = page
            for security in page.get("securities") or []:
                if isinstance(security, dict) and isinstance(security.get("security_id"), str):
                    securities.setdefault(security["security_id"], security)
            transactions.extend(page_rows)
            # An empty page before the total means the total moved under us: stop, don't spin.
            if len(transactions) >= total or not page_rows:
                break
        assert first is not None
        merged = dict(first)
        merged["investment_transactions"] = transactions
        merged["securities"] = list(securities.values())
        merged["total_investment_transactions"] = total
        return cast(wire.InvestmentTransactionsGetResponse, merged)

    # -- Institutions ---------------------------------------------------------------------------

    async def institutions_search(
        self,
        query: str,
        *,
        products: Sequence[str] | None = ("investments",),
        country_codes: Sequence[str] = ("US",),
    ) -> wire.InstitutionsSearchResponse:
        """At most 10 institutions matching `query`."""
        body: dict[str, Any] = {"query": query, "country_codes": list(country_codes)}
        if products:
            body["products"] = list(products)
        payload = await self.request("/institutions/search", body)
        _require_list(payload, "institutions", "/institutions/search")
        return cast(wire.InstitutionsSearchResponse, payload)

    async def institutions_get_by_id(
        self,
        institution_id: str,
        *,
        country_codes: Sequence[str] = ("US",),
        include_status: bool = False,
    ) -> wire.InstitutionGetByIdResponse:
        body: dict[str, Any] = {
            "institution_id": institution_id,
            "country_codes": list(country_codes),
        }
        if include_status:
            body["options"] = {"include_status": True}
        payload = await self.request("/institutions/get_by_id", body)
        if not isinstance(payload.get("institution"), dict):
            raise malformed("/institutions/get_by_id", "institution", "missing")
        return cast(wire.InstitutionGetByIdResponse, payload)

    # -- Webhooks -------------------------------------------------------------------------------

    async def webhook_verification_key_get(self, key_id: str) -> wire.WebhookVerificationKey:
        """The public JWK that signs webhooks with `kid` `key_id` (Plaid answers
        INVALID_WEBHOOK_VERIFICATION_KEY_ID, a `PlaidRejected`, for a kid it never issued)."""
        payload = await self.request("/webhook_verification_key/get", {"key_id": key_id})
        key = payload.get("key")
        if not isinstance(key, dict):
            raise malformed(
                "/webhook_verification_key/get", "key", "missing", request_id=_rid(payload)
            )
        return cast(wire.WebhookVerificationKey, key)


def _rid(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("request_id")
    return value if isinstance(value, str) else None


def _with_account_ids(body: dict[str, Any], account_ids: Sequence[str] | None) -> dict[str, Any]:
    # Plaid rejects `options: null`, so the key is only sent with content.
    if account_ids:
        body["options"] = {"account_ids": list(account_ids)}
    return body


def _require_list(payload: Mapping[str, Any], key: str, path: str) -> list[Any]:
    value = payload.get(key)
    if not isinstance(value, list):
        raise malformed(path, key, "expected a list", request_id=_rid(payload))
    return value
