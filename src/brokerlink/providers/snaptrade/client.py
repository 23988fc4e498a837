"""An async SnapTrade API client over httpx: signing, request shapes and typed errors.

Every call goes through the one request pipeline (`providers/_http.py`: limiter, retry table,
timeout, call log); this module adds SnapTrade's signing and what its answers say. One transport
(httpx's pooled `AsyncHTTPTransport` unless one is injected) per `SnapTradeClient`; use it as an
async context manager. Methods return the vendor payloads (`wire.py`); `normalize.py` turns them
into domain models.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self, cast
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from brokerlink.config import Settings
from brokerlink.errors import ConfigurationError, InvalidIdentifier
from brokerlink.log import get_logger
from brokerlink.providers._http import (
    Answer,
    Call,
    Pipeline,
    RetryPolicy,
    default_transport,
    parse_retry_after,
)
from brokerlink.providers.limits import Limiter, Limits, LocalLimits
from brokerlink.providers.observe import Observer
from brokerlink.providers.operations import snaptrade_operation
from brokerlink.providers.snaptrade import wire
from brokerlink.providers.snaptrade.errors import (
    SnapTradeError,
    SnapTradeMalformedResponse,
    error_from_exception,
    error_from_response,
)
from brokerlink.providers.snaptrade.signing import build_query, sign

__all__ = ["DEFAULT_BASE_URL", "PortalLink", "SnapTradeClient"]

DEFAULT_BASE_URL = "https://api.snaptrade.com"

_log = get_logger("brokerlink.providers.snaptrade")
# "Request was throttled. Expected available in 7 seconds." (docs/ratelimiting.md)
_THROTTLE_DETAIL = re.compile(r"available in (\d+(?:\.\d+)?) second", re.IGNORECASE)

Query = Sequence[tuple[str, str]]

# What httpx.AsyncClient would add, minus `Connection: keep-alive` (HTTP/1.1's default).
_DEFAULT_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "User-Agent": "brokerlink",
}


class PortalLink(NamedTuple):
    """Where to send the user to connect a brokerage, and the portal session's id."""

    redirect_uri: str
    session_id: str | None


# 401 codes that mean the app's own credentials were refused (signature, unknown clientId).
_APP_CREDENTIAL_CODES = frozenset({"1076", "1078"})


class _AppCredentials(Protocol):
    @property
    def client_id(self) -> str: ...

    @property
    def consumer_key(self) -> SecretStr: ...


class CredentialsSource(Protocol):
    """Current app credentials (e.g. `brokerlink.secrets.AppCredentialsProvider`)."""

    async def current(self) -> _AppCredentials: ...

    def invalidate(self) -> None: ...


class SnapTradeClient:
    """Signed calls to the SnapTrade API.

    `base_url` may carry the legacy `/api/v1` prefix; the signed path is always the full path
    requested. Each operation is retried as `providers/operations.py` classifies it (`retry`
    sets the attempts and backoff): idempotent ones on 429, 5xx and network errors; billed and
    single-use ones (placing an order, a refresh) only when the request provably never left.
    Client-side windows keep under SnapTrade's per-clientId limit, and optionally its
    per-account one: `limits` holds them (in this process by default; `RedisLimits` shares them
    with every process using this clientId), `rate_limiter` replaces the per-clientId window.
    """

    def __init__(
        self,
        client_id: str,
        consumer_key: str | SecretStr,
        *,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limit_per_minute: int = 250,
        account_rate_limit_per_minute: int = 0,
        rate_limit_window_seconds: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rate_limiter: Limiter | None = None,
        limits: Limits | None = None,
        credentials: CredentialsSource | None = None,
        observer: Observer | None = None,
    ) -> None:
        if not client_id:
            raise ValueError("client_id is required")
        key = (
            consumer_key.get_secret_value() if isinstance(consumer_key, SecretStr) else consumer_key
        )
        if not key:
            raise ValueError("consumer_key is required")
        self.client_id = client_id
        self._consumer_key = key
        parts = urlsplit(base_url.rstrip("/"))
        self.base_url = base_url.rstrip("/")
        self._origin = httpx.URL(f"{parts.scheme}://{parts.netloc}")
        # Percent-encoded as httpx would send it: this prefix is both signed and sent verbatim.
        self._prefix = httpx.URL(self.base_url).raw_path.split(b"?")[0].decode().rstrip("/")
        self._clock = clock
        self._limits = limits or LocalLimits(clock=clock, sleep=sleep)
        # Named by the clientId the limit belongs to, so every holder of these limits shares it.
        self._limiter = rate_limiter or self._limits.window(
            f"snaptrade:{client_id}", rate_limit_per_minute, rate_limit_window_seconds
        )
        self._account_limit = account_rate_limit_per_minute
        self._pipeline = Pipeline(
            self,
            transport or default_transport(self.base_url),
            retry=retry or RetryPolicy(),
            timeout=timeout,
            sleep=sleep,
            logger=_log,
            provider="snaptrade",
            observer=observer,
        )
        # Where rotated app credentials come from (the secret store); None: fixed for life.
        self._credentials = credentials

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        limits: Limits | None = None,
        observer: Observer | None = None,
    ) -> SnapTradeClient:
        """A client configured from `Settings` (call at an edge: lifespan, CLI, worker).

        `base_url` overrides the settings' URL, e.g. with the embedded sandbox's address;
        `limits` holds its rate-limit windows (shared ones when a queue URL is set).
        """
        url = base_url or settings.snaptrade_url
        key = settings.snaptrade_consumer_key
        if not settings.snaptrade_client_id or key is None or url is None:
            raise ConfigurationError(
                "SnapTrade needs SNAPTRADE_CLIENT_ID, SNAPTRADE_CONSUMER_KEY and a base URL"
            )
        return cls(
            settings.snaptrade_client_id,
            key,
            base_url=url,
            timeout=settings.snaptrade_timeout_seconds,
            retry=RetryPolicy(
                max_retries=settings.snaptrade_max_retries,
                max_delay=settings.snaptrade_max_backoff_seconds,
            ),
            rate_limit_per_minute=settings.snaptrade_rate_limit_per_minute,
            rate_limit_window_seconds=settings.snaptrade_rate_limit_window_seconds,
            account_rate_limit_per_minute=settings.snaptrade_account_rate_limit_per_minute,
            transport=transport,
            limits=limits,
            observer=observer,
        )

    def __repr__(self) -> str:
        return f"SnapTradeClient(client_id={self.client_id!r}, base_url={self.base_url!r})"

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

    # -- requests and answers (the pipeline's SnapTrade dialect) ---------------------------

    def _account_limiter(self, account_id: str) -> Limiter | None:
        if self._account_limit <= 0:
            return None
        return self._limits.window(
            f"snaptrade:{self.client_id}:account:{account_id}", self._account_limit
        )

    def build_request(
        self, method: str, path: str, query: Query = (), body: Any = None, *, signed: bool = True
    ) -> httpx.Request:
        """The exact request sent: auth params appended after the operation's, then signed."""
        full_path = self._prefix + path
        params = list(query)
        headers: dict[str, str] = {}
        if signed:
            params += [("clientId", self.client_id), ("timestamp", str(int(self._clock())))]
        raw_query = build_query(params)
        if signed:
            headers["Signature"] = sign(self._consumer_key, full_path, raw_query, body)
        content: bytes | None = None
        if body is not None:
            content = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        # The path (base prefix + ids checked by `_seg`) and the query (`build_query`) are
        # percent-encoded ASCII by construction: httpx sends them as they are, as signed.
        target = full_path + "?" + raw_query if raw_query else full_path
        url = self._origin.copy_with(raw_path=target.encode())
        headers.update(_DEFAULT_HEADERS)
        return httpx.Request(method, url, headers=headers, content=content)

    def read(self, call: Call, response: httpx.Response) -> Answer:
        payload, parse_error = _parse_json(response)
        status = response.status_code
        log: dict[str, object] = {"request_id": response.headers.get("x-request-id")}
        answer = Answer(response, payload, parse_error, log)
        holds: dict[str, float] = {}
        # When the server says a window is used up, hold ours closed until its reset.
        for role, remaining, reset in (
            ("client", "x-ratelimit-remaining", "x-ratelimit-reset"),
            ("account", "x-ratelimit-account-remaining", "x-ratelimit-account-reset"),
        ):
            value = response.headers.get(reset)
            if response.headers.get(remaining, "").strip() != "0" or value is None:
                continue
            seconds = parse_retry_after({reset: value}, now=self._clock(), reset_headers=(reset,))
            if seconds:
                holds[role] = seconds
        if not 200 <= status < 300:
            code = _code_of(payload)
            log["code"] = code
            answer.retry_after = self._retry_after(response, payload)
            if status == 429 and answer.retry_after is not None:
                # Hold the window that was exhausted: one account's, or the whole client's.
                account = response.headers.get("x-ratelimit-account-remaining") == "0"
                role = "account" if account else "client"
                holds[role] = max(holds.get(role, 0.0), answer.retry_after)
            answer.renew = (
                status == 401
                and self._credentials is not None
                and "signature" in response.request.headers
                and code in _APP_CREDENTIAL_CODES
            )
        answer.holds = holds
        return answer

    def failure(self, call: Call, answer: Answer) -> Exception:
        return error_from_response(
            call.operation,
            answer.response.status_code,
            answer.payload,
            request_id=answer.response.headers.get("x-request-id"),
            retry_after=answer.retry_after,
        )

    def unreachable(self, call: Call, exc: Exception) -> Exception:
        return error_from_exception(call.operation, exc)

    async def renew(self) -> bool:
        # The app's key may have been rotated: re-read it (a 401 placed nothing).
        assert self._credentials is not None
        self._credentials.invalidate()
        return await self._adopt_credentials()

    def _retry_after(self, response: httpx.Response, body: Any) -> float | None:
        headers = response.headers
        reset: tuple[str, ...] = ()
        if response.status_code == 429:
            if headers.get("x-ratelimit-account-remaining") == "0":
                reset = ("x-ratelimit-account-reset", "x-ratelimit-reset")
            else:
                reset = ("x-ratelimit-reset", "x-ratelimit-account-reset")
        seconds = parse_retry_after(headers, now=self._clock(), reset_headers=reset)
        if seconds is None and response.status_code == 429 and isinstance(body, dict):
            match = _THROTTLE_DETAIL.search(str(body.get("detail", "")))
            if match:
                seconds = float(match.group(1))
        return seconds

    async def consumer_key(self) -> str:
        """The app's current consumer key (followed through rotations): what SnapTrade signs
        webhooks with. Never logged."""
        if self._credentials is not None:
            await self._adopt_credentials()
        return self._consumer_key

    async def _adopt_credentials(self) -> bool:
        """Take the source's current credentials; True when they changed."""
        assert self._credentials is not None
        current = await self._credentials.current()
        pair = (current.client_id, current.consumer_key.get_secret_value())
        if pair == (self.client_id, self._consumer_key):
            return False
        self.client_id, self._consumer_key = pair
        return True

    async def _call(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        event: str,
        query: Query = (),
        body: Any = None,
        signed: bool = True,
        account_id: str | None = None,
    ) -> Any:
        """Send through the pipeline and return the parsed JSON of a 2xx answer. An
        unclassified `operation` raises `UnknownOperation` before anything is sent."""
        kind = snaptrade_operation(operation).kind
        if self._credentials is not None and signed:
            await self._adopt_credentials()
        limiters = {"client": self._limiter}
        if account_id and (account_limiter := self._account_limiter(account_id)) is not None:
            limiters["account"] = account_limiter
        answer = await self._pipeline.send(
            Call(
                operation,
                event,
                kind,
                lambda: self.build_request(method, path, query, body, signed=signed),
                limiters,
            )
        )
        if answer.parse_error is not None:
            raise SnapTradeMalformedResponse(
                "response is not JSON",
                operation=operation,
                status=answer.response.status_code,
                request_id=answer.response.headers.get("x-request-id"),
                field="$",
            ) from answer.parse_error
        return answer.payload

    async def _list(self, method: str, path: str, **kw: Any) -> list[Any]:
        data = await self._call(method, path, **kw)
        if not isinstance(data, list):
            raise _shape_error(kw["operation"], "expected a JSON array")
        return data

    async def _object(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        data = await self._call(method, path, **kw)
        if not isinstance(data, dict):
            raise _shape_error(kw["operation"], "expected a JSON object")
        return data

    # -- status and reference data ----------------------------------------------------------

    async def api_status(self) -> wire.ApiStatus:
        """`GET /`: unsigned; the service's version, clock and whether it is online."""
        data = await self._object(
            "GET", "/", operation="ApiStatus_check", event="snaptrade.status.check", signed=False
        )
        return cast(wire.ApiStatus, data)

    status = api_status

    async def list_brokerages(self) -> list[wire.Brokerage]:
        data = await self._list(
            "GET",
            "/brokerages",
            operation="ReferenceData_listAllBrokerages",
            event="snaptrade.brokerages.list",
        )
        return cast(list[wire.Brokerage], data)

    # -- users ------------------------------------------------------------------------------

    async def register_user(self, user_id: str) -> tuple[str, str]:
        """Create a SnapTrade user; returns (user_id, user_secret)."""
        data = await self._object(
            "POST",
            "/snapTrade/registerUser",
            operation="Authentication_registerSnapTradeUser",
            event="snaptrade.user.register",
            body={"userId": user_id},
        )
        return _user_and_secret(data, "Authentication_registerSnapTradeUser")

    async def list_users(self) -> list[str]:
        data = await self._list(
            "GET",
            "/snapTrade/listUsers",
            operation="Authentication_listSnapTradeUsers",
            event="snaptrade.users.list",
        )
        return [str(u) for u in data]

    async def delete_user(self, user_id: str) -> wire.DeleteUserResponse:
        """Queue the user (and every connection of theirs) for deletion."""
        data = await self._object(
            "DELETE",
            "/snapTrade/deleteUser",
            operation="Authentication_deleteSnapTradeUser",
            event="snaptrade.user.delete",
            query=[("userId", user_id)],
        )
        return cast(wire.DeleteUserResponse, data)

    async def reset_user_secret(self, user_id: str, user_secret: str) -> tuple[str, str]:
        """Rotate the user's secret; the old one stops working. Returns (user_id, new_secret)."""
        data = await self._object(
            "POST",
            "/snapTrade/resetUserSecret",
            operation="Authentication_resetSnapTradeUserSecret",
            event="snaptrade.user_secret.reset",
            body={"userId": user_id, "userSecret": user_secret},
        )
        return _user_and_secret(data, "Authentication_resetSnapTradeUserSecret")

    async def login(
        self,
        user_id: str,
        user_secret: str,
        *,
        broker: str | None = None,
        immediate_redirect: bool | None = None,
        custom_redirect: str | None = None,
        reconnect: str | None = None,
        connection_type: wire.ConnectionType | None = None,
    ) -> PortalLink:
        """A connection-portal link for the user (optionally straight to one brokerage)."""
        body: dict[str, Any] = {}
        if broker is not None:
            body["broker"] = broker
        if immediate_redirect is not None:
            body["immediateRedirect"] = immediate_redirect
        if custom_redirect is not None:
            body["customRedirect"] = custom_redirect
        if reconnect is not None:
            body["reconnect"] = reconnect
        if connection_type is not None:
            body["connectionType"] = connection_type
        operation = "Authentication_loginSnapTradeUser"
        data = await self._object(
            "POST",
            "/snapTrade/login",
            operation=operation,
            event="snaptrade.login.create",
            query=_user(user_id, user_secret),
            body=body or None,
        )
        uri = data.get("redirectURI")
        if not isinstance(uri, str) or not uri:
            raise _shape_error(operation, "missing redirectURI", field="redirectURI")
        session = data.get("sessionId")
        return PortalLink(uri, session if isinstance(session, str) else None)

    # -- connections (brokerage authorizations) --------------------------------------------

    async def list_authorizations(
        self, user_id: str, user_secret: str
    ) -> list[wire.BrokerageAuthorization]:
        data = await self._list(
            "GET",
            "/authorizations",
            operation="Connections_listBrokerageAuthorizations",
            event="snaptrade.authorizations.list",
            query=_user(user_id, user_secret),
        )
        return cast(list[wire.BrokerageAuthorization], data)

    async def get_authorization(
        self, user_id: str, user_secret: str, authorization_id: str
    ) -> wire.BrokerageAuthorization:
        data = await self._object(
            "GET",
            f"/authorizations/{_seg(authorization_id)}",
            operation="Connections_detailBrokerageAuthorization",
            event="snaptrade.authorization.fetch",
            query=_user(user_id, user_secret),
        )
        return cast(wire.BrokerageAuthorization, data)

    async def refresh_authorization(
        self, user_id: str, user_secret: str, authorization_id: str
    ) -> wire.RefreshResponse:
        """Schedule a re-sync of the connection. SnapTrade bills every call."""
        data = await self._object(
            "POST",
            f"/authorizations/{_seg(authorization_id)}/refresh",
            operation="Connections_refreshBrokerageAuthorization",
            event="snaptrade.authorization.refresh",
            query=_user(user_id, user_secret),
        )
        return cast(wire.RefreshResponse, data)

    async def delete_authorization(
        self, user_id: str, user_secret: str, authorization_id: str
    ) -> dict[str, Any]:
        """Remove a connection (`DELETE /connection/{id}`; deletion completes asynchronously)."""
        return await self._object(
            "DELETE",
            f"/connection/{_seg(authorization_id)}",
            operation="Connections_deleteConnection",
            event="snaptrade.authorization.delete",
            query=_user(user_id, user_secret),
        )

    async def sandbox_create_connection(
        self,
        user_id: str,
        user_secret: str,
        broker: str,
        connection_type: wire.ConnectionType = "read",
    ) -> wire.BrokerageAuthorization:
        """Sandbox only (`POST /sandbox/connections`): complete a connection without a browser."""
        data = await self._object(
            "POST",
            "/sandbox/connections",
            operation="Sandbox_createConnection",
            event="snaptrade.sandbox_connection.create",
            query=_user(user_id, user_secret),
            body={"userId": user_id, "broker": broker, "connectionType": connection_type},
        )
        return cast(wire.BrokerageAuthorization, data)

    # -- accounts ---------------------------------------------------------------------------

    async def list_accounts(self, user_id: str, user_secret: str) -> list[wire.Account]:
        data = await self._list(
            "GET",
            "/accounts",
            operation="AccountInformation_listUserAccounts",
            event="snaptrade.accounts.list",
            query=_user(user_id, user_secret),
        )
        return cast(list[wire.Account], data)

    async def get_account(self, user_id: str, user_secret: str, account_id: str) -> wire.Account:
        data = await self._object(
            "GET",
            f"/accounts/{_seg(account_id)}",
            operation="AccountInformation_getUserAccountDetails",
            event="snaptrade.account.fetch",
            query=_user(user_id, user_secret),
            account_id=account_id,
        )
        return cast(wire.Account, data)

    async def search_account_symbols(
        self, user_id: str, user_secret: str, account_id: str, substring: str
    ) -> list[wire.UniversalSymbol]:
        """Symbols the account's brokerage supports that match `substring` (at most 20)."""
        data = await self._list(
            "POST",
            f"/accounts/{_seg(account_id)}/symbols",
            operation="ReferenceData_symbolSearchUserAccount",
            event="snaptrade.symbols.search",
            query=_user(user_id, user_secret),
            body={"substring": substring},
            account_id=account_id,
        )
        return cast(list[wire.UniversalSymbol], data)

    async def get_balances(
        self, user_id: str, user_secret: str, account_id: str
    ) -> list[wire.Balance]:
        data = await self._list(
            "GET",
            f"/accounts/{_seg(account_id)}/balances",
            operation="AccountInformation_getUserAccountBalance",
            event="snaptrade.balances.fetch",
            query=_user(user_id, user_secret),
            account_id=account_id,
        )
        return cast(list[wire.Balance], data)

    async def get_positions(
        self, user_id: str, user_secret: str, account_id: str
    ) -> wire.AllAccountPositionsResponse:
        """Every position of the account (`/positions/all`: stocks, funds, options, crypto…)."""
        data = await self._object(
            "GET",
            f"/accounts/{_seg(account_id)}/positions/all",
            operation="AccountInformation_getAllAccountPositions",
            event="snaptrade.positions.fetch",
            query=_user(user_id, user_secret),
            account_id=account_id,
        )
        return cast(wire.AllAccountPositionsResponse, data)

    async def list_orders(
        self,
        user_id: str,
        user_secret: str,
        account_id: str,
        *,
        state: str | None = None,
        days: int | None = None,
    ) -> list[wire.AccountOrderRecord]:
        # Filters first, then the user: the order the official SDK sends (and so signs).
        query: list[tuple[str, str]] = []
        if state is not None:
            query.append(("state", state))
        if days is not None:
            query.append(("days", str(days)))
        query += _user(user_id, user_secret)
        data = await self._list(
            "GET",
            f"/accounts/{_seg(account_id)}/orders",
            operation="AccountInformation_getUserAccountOrders",
            event="snaptrade.orders.list",
            query=query,
            account_id=account_id,
        )
        return cast(list[wire.AccountOrderRecord], data)

    async def get_order(
        self, user_id: str, user_secret: str, account_id: str, brokerage_order_id: str
    ) -> wire.AccountOrderRecord:
        data = await self._object(
            "POST",
            f"/accounts/{_seg(account_id)}/orders/details",
            operation="AccountInformation_getUserAccountOrderDetail",
            event="snaptrade.order.fetch",
            query=_user(user_id, user_secret),
            body={"brokerage_order_id": brokerage_order_id},
            account_id=account_id,
        )
        return cast(wire.AccountOrderRecord, data)

    async def list_activities(
        self,
        user_id: str,
        user_secret: str,
        account_id: str,
        *,
        start_date: str | None = None,
        end_date: str | None = None,
        offset: int | None = None,
        limit: int | None = None,
        type: str | None = None,
    ) -> dict[str, Any]:
        """One page of transactions: `{"data": [...], "pagination": {...}}`."""
        query: list[tuple[str, str]] = []
        for name, value in (
            ("startDate", start_date),
            ("endDate", end_date),
            ("offset", offset),
            ("limit", limit),
            ("type", type),
        ):
            if value is not None:
                query.append((name, str(value)))
        query += _user(user_id, user_secret)
        return await self._object(
            "GET",
            f"/accounts/{_seg(account_id)}/activities",
            operation="AccountInformation_getAccountActivities",
            event="snaptrade.activities.list",
            query=query,
            account_id=account_id,
        )

    # -- trading ----------------------------------------------------------------------------

    async def order_impact(
        self, user_id: str, user_secret: str, form: wire.TradeImpactForm
    ) -> wire.ManualTradeAndImpact:
        """Check an order; the answer's `trade.id` places exactly that order."""
        data = await self._object(
            "POST",
            "/trade/impact",
            operation="Trading_getOrderImpact",
            event="snaptrade.order.impact",
            query=_user(user_id, user_secret),
            body=dict(form),
        )
        return cast(wire.ManualTradeAndImpact, data)

    async def place_checked_order(
        self, user_id: str, user_secret: str, trade_id: str, *, wait_to_confirm: bool | None = None
    ) -> wire.AccountOrderRecord:
        """Place a trade checked by `order_impact`. Never retried automatically."""
        body = None if wait_to_confirm is None else {"wait_to_confirm": wait_to_confirm}
        data = await self._object(
            "POST",
            f"/trade/{_seg(trade_id)}",
            operation="Trading_placeOrder",
            event="snaptrade.order.place_checked",
            query=_user(user_id, user_secret),
            body=body,
        )
        return cast(wire.AccountOrderRecord, data)

    async def place_order(
        self, user_id: str, user_secret: str, form: wire.ManualTradeForm
    ) -> wire.AccountOrderRecord:
        """Place an order directly. Never retried automatically.

        A `client_order_id` is always sent (generated when the form has none) so a manual
        retry with the same form is recognised by the brokerage instead of placed twice.
        """
        body: dict[str, Any] = dict(form)
        if not body.get("client_order_id"):
            body["client_order_id"] = str(uuid.uuid4())
        data = await self._object(
            "POST",
            "/trade/place",
            operation="Trading_placeForceOrder",
            event="snaptrade.order.place",
            query=_user(user_id, user_secret),
            body=body,
        )
        return cast(wire.AccountOrderRecord, data)

    async def cancel_order(
        self, user_id: str, user_secret: str, account_id: str, brokerage_order_id: str
    ) -> wire.CancelOrderResponse:
        data = await self._object(
            "POST",
            f"/accounts/{_seg(account_id)}/trading/cancel",
            operation="Trading_cancelOrder",
            event="snaptrade.order.cancel",
            query=_user(user_id, user_secret),
            body={"brokerage_order_id": brokerage_order_id},
        )
        return cast(wire.CancelOrderResponse, data)


def _user(user_id: str, user_secret: str) -> list[tuple[str, str]]:
    return [("userId", user_id), ("userSecret", user_secret)]


_SEGMENT = re.compile(r"[A-Za-z0-9._~:@+-]+")


def _seg(value: str) -> str:
    """An id placed in the path. It is sent and signed verbatim, so it must need no escaping;
    SnapTrade's ids are UUIDs, and anything else (a '/', '?', '#') is the caller's fault."""
    if not _SEGMENT.fullmatch(value) or value in (".", ".."):
        raise InvalidIdentifier(f"not a valid SnapTrade id: {value[:64]!r}")
    return value


def _parse_json(response: httpx.Response) -> tuple[Any, ValueError | None]:
    if not response.content:
        return None, None
    try:
        return response.json(), None
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError
        return None, exc


def _code_of(payload: Any) -> str | None:
    if isinstance(payload, dict):
        code = payload.get("code", payload.get("default_code"))
        return None if code is None else str(code)
    return None


def _shape_error(operation: str, message: str, *, field: str = "$") -> SnapTradeError:
    return SnapTradeMalformedResponse(message, operation=operation, field=field)


def _user_and_secret(data: dict[str, Any], operation: str) -> tuple[str, str]:
    user_id, secret = data.get("userId"), data.get("userSecret")
    if not isinstance(user_id, str) or not user_id:
        raise _shape_error(operation, "missing userId", field="userId")
    if not isinstance(secret, str) or not secret:
        raise _shape_error(operation, "missing userSecret", field="userSecret")
    return user_id, secret
