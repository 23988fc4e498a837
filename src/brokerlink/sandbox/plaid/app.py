"""The Plaid sandbox as an ASGI app: Plaid's POST paths, the Hosted Link page, admin routes.

Every Plaid path runs the same pipeline (`_plaid_endpoint`): the request counted per
operation (`sandbox/_counts.py`), fault injection, JSON body, credentials from the body or the
PLAID-CLIENT-ID / PLAID-SECRET headers, request validation, then the handler, which applies rate
limits and the Item's state; a fault with `after` lets the handler run and then replaces its
answer. Admin routes: `admin.py`. Refusals are `PlaidError`s
rendered as Plaid's error object with a `request_id`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from brokerlink.sandbox._faults import (
    FAULT_HEADER,
    FaultDecision,
    FaultHeaderError,
)
from brokerlink.sandbox._webhook_delivery import PLAID_RETRIES, WebhookDispatcher
from brokerlink.sandbox.plaid import link_page, wire
from brokerlink.sandbox.plaid.admin import add_admin_routes
from brokerlink.sandbox.plaid.delivery import PlaidWebhookDelivery, add_delivery_routes
from brokerlink.sandbox.plaid.errors import PlaidError, invalid_field, item_login_required
from brokerlink.sandbox.plaid.requests import (
    AccessTokenRequest,
    AccountsRequest,
    BalanceRequest,
    FireWebhookRequest,
    InstitutionGetByIdRequest,
    InstitutionsSearchRequest,
    InvestmentsTransactionsRequest,
    ItemRemoveRequest,
    ItemWebhookUpdateRequest,
    LinkTokenCreateRequest,
    LinkTokenGetRequest,
    PublicTokenExchangeRequest,
    SandboxPublicTokenCreateRequest,
    WebhookVerificationKeyGetRequest,
    parse_request,
)
from brokerlink.sandbox.plaid.state import (
    Account,
    Clock,
    Item,
    LinkToken,
    PlaidSandboxState,
    RateLimit,
    timestamp,
)

__all__ = ["create_app"]

M = TypeVar("M", bound=BaseModel)
Handler = Callable[[PlaidSandboxState, Any, Request], Awaitable[dict[str, Any]]]
_ROUTES: dict[str, tuple[type[BaseModel], Handler]] = {}


def _route(
    path: str, model: type[M]
) -> Callable[[Callable[[PlaidSandboxState, M, Request], Awaitable[dict[str, Any]]]], Handler]:
    def register(
        fn: Callable[[PlaidSandboxState, M, Request], Awaitable[dict[str, Any]]],
    ) -> Handler:
        _ROUTES[path] = (model, fn)
        return fn

    return register


def _fault_error(status: int) -> PlaidError:
    if status == 429:
        return PlaidError(
            "RATE_LIMIT_EXCEEDED",
            "RATE_LIMIT",
            "rate limit exceeded for attempts to access this item. please try again later",
            status=429,
        )
    if status == 503:
        return PlaidError(
            "API_ERROR",
            "PLANNED_MAINTENANCE",
            "the Plaid API is temporarily unavailable due to planned maintenance",
            display_message="This financial institution is not currently responding to "
            "requests. We apologize for the inconvenience.",
            status=503,
        )
    if status in (502, 504):
        return PlaidError(
            "INSTITUTION_ERROR",
            "INSTITUTION_NOT_RESPONDING",
            "this institution is not currently responding to this request. please try again soon",
            status=status,
        )
    if status >= 500:
        return PlaidError(
            "API_ERROR",
            "INTERNAL_SERVER_ERROR",
            "an unexpected error occurred",
            display_message="Something went wrong. Please try again later.",
            status=status,
        )
    if status == 400:
        return PlaidError(
            "INSTITUTION_ERROR",
            "INSTITUTION_DOWN",
            "this institution is not currently responding to this request. please try again soon",
        )
    if status in (401, 403):
        return PlaidError(
            "INVALID_INPUT",
            "INVALID_API_KEYS",
            "invalid client_id or secret provided",
            status=status,
        )
    return PlaidError("INVALID_REQUEST", "INVALID_FIELD", "injected sandbox fault", status=status)


def _credentials(body: dict[str, Any], request: Request) -> tuple[str, str]:
    client_id = body.get("client_id") or request.headers.get("PLAID-CLIENT-ID")
    secret = body.get("secret") or request.headers.get("PLAID-SECRET")
    missing = [n for n, v in (("client_id", client_id), ("secret", secret)) if not v]
    if missing:
        raise PlaidError(
            "INVALID_REQUEST",
            "MISSING_FIELDS",
            f"the following required fields are missing: {', '.join(missing)}",
        )
    if not isinstance(client_id, str) or not isinstance(secret, str):
        raise invalid_field("client_id and secret must be strings")
    return client_id, secret


async def _apply_faults(state: PlaidSandboxState, request: Request) -> FaultDecision:
    """The request's faults; raises the injected error now unless it comes `after` processing."""
    try:
        decision = state.faults.decide(request.url.path, request.headers.get(FAULT_HEADER))
    except FaultHeaderError as e:
        raise PlaidError("INVALID_REQUEST", "INVALID_HEADERS", f"{FAULT_HEADER}: {e}") from e
    if decision.latency:
        await asyncio.sleep(decision.latency)
    if decision.fails_before:
        raise await _injected_failure(decision)
    return decision


async def _injected_failure(decision: FaultDecision) -> PlaidError:
    """Sleep out an injected timeout; the injected status's error (504 after a timeout)."""
    if decision.timeout is not None:
        await asyncio.sleep(decision.timeout)
    error = _fault_error(decision.failure_status)
    if decision.retry_after is not None:
        error.headers["Retry-After"] = f"{decision.retry_after:g}"
    return error


def _plaid_endpoint(path: str) -> Callable[[Request], Awaitable[Response]]:
    model, handler = _ROUTES[path]

    async def endpoint(request: Request) -> Response:
        state: PlaidSandboxState = request.app.state.sandbox
        request_id = state.new_request_id()
        state.requests.hit("POST", path)
        try:
            decision = await _apply_faults(state, request)
            raw = await request.body()
            ctype = request.headers.get("content-type", "")
            try:
                if "json" not in ctype:
                    raise ValueError(ctype)
                body = json.loads(raw)
            except ValueError:
                raise PlaidError(
                    "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed as JSON"
                ) from None
            if not isinstance(body, dict):
                raise PlaidError("INVALID_REQUEST", "INVALID_BODY", "body must be a JSON object")
            state.check_credentials(*_credentials(body, request))
            state.check_logins()
            parsed = parse_request(model, body)
            if decision.fails_after:
                # Processed (Item changed, call billed), then the answer is lost.
                try:
                    await handler(state, parsed, request)
                except PlaidError:
                    pass
                raise await _injected_failure(decision)
            result = await handler(state, parsed, request)
        except PlaidError as e:
            return JSONResponse(e.body(request_id), status_code=e.status, headers=e.headers)
        result["request_id"] = request_id
        if decision.malformed == "truncate":
            data = json.dumps(result).encode()
            return Response(data[: len(data) // 2], media_type="application/json")
        if decision.malformed == "shape":
            return JSONResponse([{"request_id": request_id}])
        return JSONResponse(result)

    endpoint.__name__ = "plaid_" + path.strip("/").replace("/", "_")
    return endpoint


# -- helpers shared by handlers --------------------------------------------------------------
def _item(state: PlaidSandboxState, access_token: str, path: str) -> Item:
    item = state.item_for(access_token)
    state.hit_rate_limit(path, item.item_id)
    return item


def _select_accounts(accounts: list[Account], account_ids: list[str] | None) -> list[Account]:
    if account_ids is None:
        return accounts
    known = {a.account_id: a for a in accounts}
    unknown = [a for a in account_ids if a not in known]
    if unknown:
        raise PlaidError(
            "INVALID_INPUT",
            "INVALID_ACCOUNT_ID",
            f"one or more of the account IDs is invalid: {', '.join(unknown)}",
        )
    return [known[a] for a in account_ids]


# -- link --------------------------------------------------------------------------------------
def _check_link_products(lists: dict[str, list[str]], *, update_mode: bool) -> None:
    """Plaid's rules for the product lists: `products` has at least one product (outside update
    mode), `balance` is never named, and no product is in two lists."""
    if not update_mode and not lists["products"]:
        raise invalid_field(
            "products must have at least one product unless launching Link in update mode"
        )
    for name, products in lists.items():
        if "balance" in products:
            raise invalid_field(f"balance is not a valid product for {name}")
    seen: dict[str, str] = {}
    for name, products in lists.items():
        for product in products:
            if product in seen and seen[product] != name:
                raise invalid_field(
                    f"{product} cannot be in both {seen[product]} and {name}; "
                    "the product lists must not overlap"
                )
            seen[product] = name


@_route("/link/token/create", LinkTokenCreateRequest)
async def link_token_create(
    state: PlaidSandboxState, req: LinkTokenCreateRequest, request: Request
) -> dict[str, Any]:
    if req.user is None and req.user_id is None:
        raise PlaidError(
            "INVALID_REQUEST", "MISSING_FIELDS", "the following required fields are missing: user"
        )
    lists = {
        "products": list(req.products or []),
        "required_if_supported_products": list(req.required_if_supported_products or []),
        "optional_products": list(req.optional_products or []),
        "additional_consented_products": list(req.additional_consented_products or []),
    }
    _check_link_products(lists, update_mode=req.access_token is not None)
    if req.institution_id is not None:
        state.institution(req.institution_id)
    token = state.create_link_token(
        client_name=req.client_name,
        language=req.language,
        country_codes=req.country_codes,
        products=lists["products"],
        required_if_supported=lists["required_if_supported_products"],
        optional=lists["optional_products"],
        webhook=req.webhook,
        redirect_uri=req.redirect_uri,
        hosted_link=req.hosted_link,
        user_id=req.user_id,
        client_user_id=req.user.client_user_id if req.user else None,
        access_token=req.access_token,
        institution_id=req.institution_id,
    )
    out: dict[str, Any] = {
        "link_token": token.link_token,
        "expiration": timestamp(token.expires_at),
    }
    if req.hosted_link is not None:
        out["hosted_link_url"] = (
            f"{str(request.base_url).rstrip('/')}/hosted-link/{token.link_token}"
        )
    if req.user_id is not None:
        out["user_id"] = req.user_id
    return out


@_route("/link/token/get", LinkTokenGetRequest)
async def link_token_get(
    state: PlaidSandboxState, req: LinkTokenGetRequest, request: Request
) -> dict[str, Any]:
    return wire.link_token_get_json(state, state.link_token(req.link_token))


@_route("/item/public_token/exchange", PublicTokenExchangeRequest)
async def public_token_exchange(
    state: PlaidSandboxState, req: PublicTokenExchangeRequest, request: Request
) -> dict[str, Any]:
    item = state.exchange_public_token(req.public_token)
    return {"access_token": item.access_token, "item_id": item.item_id}


@_route("/sandbox/public_token/create", SandboxPublicTokenCreateRequest)
async def sandbox_public_token_create(
    state: PlaidSandboxState, req: SandboxPublicTokenCreateRequest, request: Request
) -> dict[str, Any]:
    opts = req.options
    item = state.create_item(
        req.institution_id,
        req.initial_products,
        opts.webhook if opts else None,
        username=(opts.override_username if opts else None) or "user_good",
        password=(opts.override_password if opts else None) or "pass_good",
    )
    return {"public_token": state.issue_public_token(item)}


# -- item --------------------------------------------------------------------------------------
@_route("/item/get", AccessTokenRequest)
async def item_get(
    state: PlaidSandboxState, req: AccessTokenRequest, request: Request
) -> dict[str, Any]:
    item = _item(state, req.access_token, "/item/get")
    state.expire_login(item)
    return {"item": wire.item_json(state, item), "status": wire.item_status_json(state, item)}


@_route("/item/remove", ItemRemoveRequest)
async def item_remove(
    state: PlaidSandboxState, req: ItemRemoveRequest, request: Request
) -> dict[str, Any]:
    state.remove_item(_item(state, req.access_token, "/item/remove"))
    return {}


@_route("/item/webhook/update", ItemWebhookUpdateRequest)
async def item_webhook_update(
    state: PlaidSandboxState, req: ItemWebhookUpdateRequest, request: Request
) -> dict[str, Any]:
    item = state.item_for(req.access_token)
    item.webhook = req.webhook or None
    if item.webhook:
        state.record_webhook(
            item, "ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED", new_webhook_url=item.webhook, error=None
        )
    return {"item": wire.item_json(state, item)}


@_route("/sandbox/item/reset_login", AccessTokenRequest)
async def sandbox_reset_login(
    state: PlaidSandboxState, req: AccessTokenRequest, request: Request
) -> dict[str, Any]:
    state.reset_login(state.item_for(req.access_token))
    return {"reset_login": True}


_WEBHOOK_CODES = {
    "HOLDINGS": {"DEFAULT_UPDATE"},
    "INVESTMENTS_TRANSACTIONS": {"DEFAULT_UPDATE", "HISTORICAL_UPDATE"},
    "ITEM": {
        "ERROR",
        "LOGIN_REPAIRED",
        "NEW_ACCOUNTS_AVAILABLE",
        "PENDING_DISCONNECT",
        "PENDING_EXPIRATION",
        "USER_PERMISSION_REVOKED",
    },
}


@_route("/sandbox/item/fire_webhook", FireWebhookRequest)
async def sandbox_fire_webhook(
    state: PlaidSandboxState, req: FireWebhookRequest, request: Request
) -> dict[str, Any]:
    item = state.item_for(req.access_token)
    webhook_type = req.webhook_type or (
        "ITEM" if req.webhook_code in _WEBHOOK_CODES["ITEM"] else "HOLDINGS"
    )
    if req.webhook_code not in _WEBHOOK_CODES.get(webhook_type, set()):
        raise invalid_field(
            f"webhook_code {req.webhook_code} is not supported for webhook_type {webhook_type}"
        )
    if webhook_type != "ITEM" and "investments" not in item.products:
        raise PlaidError(
            "SANDBOX_ERROR",
            "SANDBOX_PRODUCT_NOT_ENABLED",
            "The Item does not have the product required by the webhook enabled",
        )
    if not item.webhook:
        raise PlaidError(
            "SANDBOX_ERROR",
            "SANDBOX_WEBHOOK_INVALID",
            "webhook for this item is either not set or set to an invalid URL",
        )
    extra: dict[str, Any] = {}
    in_a_week = timestamp(state.now() + 7 * 86400)
    if webhook_type == "ITEM" and req.webhook_code == "ERROR":
        extra["error"] = item_login_required().webhook_body()
    elif req.webhook_code == "PENDING_DISCONNECT":
        extra.update(reason="INSTITUTION_TOKEN_EXPIRATION", disconnect_time=in_a_week)
    elif req.webhook_code == "PENDING_EXPIRATION":
        extra["consent_expiration_time"] = in_a_week
    state.record_webhook(item, webhook_type, req.webhook_code, **extra)
    return {"webhook_fired": True}


@_route("/webhook_verification_key/get", WebhookVerificationKeyGetRequest)
async def webhook_verification_key_get(
    state: PlaidSandboxState, req: WebhookVerificationKeyGetRequest, request: Request
) -> dict[str, Any]:
    key = state.signer.jwk(req.key_id)
    if key is None:
        raise PlaidError(
            "INVALID_INPUT",
            "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
            "invalid key_id provided. note that key_ids are specific to Plaid environments, "
            "and verification requests must be made to the same environment that the webhook "
            "was sent from",
        )
    return {"key": key}


# -- accounts ----------------------------------------------------------------------------------
@_route("/accounts/get", AccountsRequest)
async def accounts_get(
    state: PlaidSandboxState, req: AccountsRequest, request: Request
) -> dict[str, Any]:
    item = state.usable(_item(state, req.access_token, "/accounts/get"))
    ids = req.options.account_ids if req.options else None
    accounts = _select_accounts(item.accounts, ids)
    return {
        "accounts": [wire.account_json(state, item, a) for a in accounts],
        "item": wire.item_json(state, item),
    }


@_route("/accounts/balance/get", BalanceRequest)
async def accounts_balance_get(
    state: PlaidSandboxState, req: BalanceRequest, request: Request
) -> dict[str, Any]:
    item = state.usable(_item(state, req.access_token, "/accounts/balance/get"))
    ids = req.options.account_ids if req.options else None
    accounts = _select_accounts(item.accounts, ids)
    now = timestamp(state.now())
    rendered = [wire.account_json(state, item, a) for a in accounts]
    for account in rendered:
        account["balances"]["last_updated_datetime"] = now
    return {"accounts": rendered, "item": wire.item_json(state, item)}


# -- investments -------------------------------------------------------------------------------
@_route("/investments/holdings/get", AccountsRequest)
async def investments_holdings_get(
    state: PlaidSandboxState, req: AccountsRequest, request: Request
) -> dict[str, Any]:
    item = state.investments_ready(_item(state, req.access_token, "/investments/holdings/get"))
    ids = req.options.account_ids if req.options else None
    accounts = _select_accounts(state.investment_accounts(item), ids)
    holdings, securities = wire.holdings_json(state, item, accounts)
    return {
        "accounts": [wire.account_json(state, item, a, investment=True) for a in accounts],
        "holdings": holdings,
        "securities": securities,
        "item": wire.item_json(state, item),
        "is_investments_fallback_item": False,
    }


@_route("/investments/refresh", AccessTokenRequest)
async def investments_refresh(
    state: PlaidSandboxState, req: AccessTokenRequest, request: Request
) -> dict[str, Any]:
    state.refresh_investments(_item(state, req.access_token, "/investments/refresh"))
    return {}


@_route("/investments/transactions/get", InvestmentsTransactionsRequest)
async def investments_transactions_get(
    state: PlaidSandboxState, req: InvestmentsTransactionsRequest, request: Request
) -> dict[str, Any]:
    item = state.investments_ready(_item(state, req.access_token, "/investments/transactions/get"))
    if req.start_date > req.end_date:
        raise invalid_field("start_date must be on or before end_date")
    opts = req.options
    accounts = _select_accounts(state.investment_accounts(item), opts.account_ids if opts else None)
    rows, _ = wire.investment_transactions(state, item, accounts, req.start_date, req.end_date)
    count = opts.count if opts else 100
    offset = opts.offset if opts else 0
    page = rows[offset : offset + count]
    wanted = {r["security_id"] for r in page if r["security_id"]}
    securities = {
        s.security_id: wire.security_json(state, item, s)
        for s in state.securities.values()
        if s.security_id in wanted
    }
    return {
        "item": wire.item_json(state, item),
        "accounts": [wire.account_json(state, item, a, investment=True) for a in accounts],
        "securities": list(securities.values()),
        "investment_transactions": page,
        "total_investment_transactions": len(rows),
        "is_investments_fallback_item": False,
    }


# -- institutions ------------------------------------------------------------------------------
@_route("/institutions/search", InstitutionsSearchRequest)
async def institutions_search(
    state: PlaidSandboxState, req: InstitutionsSearchRequest, request: Request
) -> dict[str, Any]:
    state.hit_rate_limit("/institutions/search", None)
    found = state.search_institutions(req.query, req.products, req.country_codes)
    opts = req.options
    if opts is not None and opts.oauth is not None:
        found = [i for i in found if i.oauth == opts.oauth]
    meta = bool(opts and opts.include_optional_metadata)
    return {"institutions": [wire.institution_json(i, optional_metadata=meta) for i in found]}


@_route("/institutions/get_by_id", InstitutionGetByIdRequest)
async def institutions_get_by_id(
    state: PlaidSandboxState, req: InstitutionGetByIdRequest, request: Request
) -> dict[str, Any]:
    state.hit_rate_limit("/institutions/get_by_id", None)
    inst = state.institution(req.institution_id)
    if not set(req.country_codes) & set(inst.country_codes):
        raise PlaidError("INVALID_INPUT", "INVALID_INSTITUTION", "invalid institution_id provided")
    opts = req.options
    return {
        "institution": wire.institution_json(
            inst,
            optional_metadata=bool(opts and opts.include_optional_metadata),
            status=bool(opts and opts.include_status),
        )
    }


def _exit(state: PlaidSandboxState, token: LinkToken, error: PlaidError | None) -> Response:
    target = link_page.exit_redirect(state, token, error)
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return HTMLResponse(link_page.exited_page(token, error), status_code=200)


def _add_hosted_link_routes(app: FastAPI) -> None:
    @app.get("/hosted-link/{link_token}", response_class=HTMLResponse)
    async def hosted_link_page(link_token: str, request: Request) -> HTMLResponse:
        state: PlaidSandboxState = request.app.state.sandbox
        try:
            token = state.link_token(link_token, live=True)
        except PlaidError as e:
            return HTMLResponse(link_page.expired_page(e), status_code=404)
        if any(s.finished_at is not None and s.item_id for s in token.sessions):
            return HTMLResponse(link_page.done_page(token))
        state.open_session(token)
        return HTMLResponse(link_page.login_page(state, token, None))

    @app.post("/hosted-link/{link_token}", response_class=HTMLResponse)
    async def hosted_link_submit(link_token: str, request: Request) -> Response:
        state: PlaidSandboxState = request.app.state.sandbox
        try:
            token = state.link_token(link_token, live=True)
        except PlaidError as e:
            return HTMLResponse(link_page.expired_page(e), status_code=404)
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("action") == "exit":
            return _exit(state, token, None)
        institutions = state.link_institutions(token)
        institution_id = form.get("institution_id") or (
            institutions[0].institution_id if len(institutions) == 1 else ""
        )
        try:
            if not institution_id:
                raise invalid_field("choose an institution")
            state.complete_link(
                token, institution_id, form.get("username", ""), form.get("password", "")
            )
        except PlaidError as e:
            if not link_page.retryable(state, token, e):
                return _exit(state, token, e)
            return HTMLResponse(
                link_page.login_page(state, token, e, selected=institution_id),
                status_code=400,
            )
        redirect = token.completion_redirect_uri
        if redirect:
            return RedirectResponse(redirect, status_code=303)
        return HTMLResponse(link_page.done_page(token))


def create_app(
    *,
    client_id: str,
    secret: str,
    state: PlaidSandboxState | None = None,
    clock: Clock | None = None,
    product_ready_delay: float = 0.5,
    rate_limits: dict[str, RateLimit] | None = None,
    deliver_webhooks: bool = True,
    webhook_transport: httpx.AsyncBaseTransport | None = None,
    webhook_retry_scale: float = 1.0,
    webhook_timeout: float = 10.0,
) -> FastAPI:
    """Build the sandbox accepting exactly one `client_id`/`secret` pair.

    Webhooks are POSTed, signed, in the background and retried on Plaid's schedule scaled by
    `webhook_retry_scale` (`delivery.py`), unless `deliver_webhooks` is false (the outbox
    `state.webhooks` records them either way); `webhook_transport` lets tests receive them
    in-process and `app.state.webhook_delivery.dispatcher` lists the deliveries.
    Pass `state` to share or pre-seed it (its own credentials are then replaced by these);
    `clock` and `product_ready_delay` only apply when the app builds the state itself.
    """
    if state is None:
        state = PlaidSandboxState(
            client_id=client_id,
            secret=secret,
            clock=clock,
            product_ready_delay=product_ready_delay,
            rate_limits=rate_limits,
        )
    else:
        state.client_id, state.secret = client_id, secret
    dispatcher = WebhookDispatcher(
        PLAID_RETRIES,
        clock=state.now,
        transport=webhook_transport,
        retry_scale=webhook_retry_scale,
        timeout=webhook_timeout,
        enabled=deliver_webhooks,
    )
    delivery = PlaidWebhookDelivery(state, dispatcher)
    app = FastAPI(
        title="Plaid sandbox (brokerlink)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=delivery.lifespan,
    )
    app.state.sandbox = state
    app.state.webhook_delivery = delivery
    for path in _ROUTES:
        app.add_api_route(path, _plaid_endpoint(path), methods=["POST"], include_in_schema=False)
    add_admin_routes(app)
    add_delivery_routes(app)
    _add_hosted_link_routes(app)
    return app
