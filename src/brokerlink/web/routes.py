"""The web app's pages, served by the API's own process: Jinja2 templates and a little JavaScript.

    /login                     email + password (the script posts to /api/auth/login)
    /                          connections and their account cards: refresh, sync all, reconnect,
                               the order ticket on accounts that can trade
    /connect                   the institution picker; connecting opens the provider in a popup
    /portfolio                 the consolidated portfolio: holdings, SVG allocation charts,
                               cash per currency, duplicated accounts to resolve
    /fragments/connections[/{id}]   the accounts page's connections, re-rendered after an action

Pages read the store through the read models (AccountsView, portfolio_out, institution_cards):
loading a page never calls a provider. Signed-out visitors are sent to /login.

An error on any path outside the API (an unknown address, a bad query such as an over-long
`?q=`, a failure) answers an HTML page (`error.html`) in plain words, with the status and the
stable code of the JSON error the API would give; `/api` stays JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from brokerlink.accounts.service import AccountsView
from brokerlink.api.deps import CSRF_HEADER, DbSession, State, optional_user
from brokerlink.api.state import AppState
from brokerlink.models import User
from brokerlink.portfolio.routes import portfolio_out
from brokerlink.repositories import PortfolioRepository
from brokerlink.routing.routes import institution_cards, linked_connections
from brokerlink.web import view

__all__ = ["install_web", "router", "templates"]

_HERE = Path(__file__).parent
_NO_STORE = {"Cache-Control": "no-store"}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=view.money,
        quantity=view.quantity,
        pct=view.pct,
        when=view.when,
        iso=view.iso,
        provider_label=view.provider_label,
        type_label=view.type_label,
    )
    env.globals.update(csrf_header=CSRF_HEADER)
    return env


templates = Jinja2Templates(env=_environment())
router = APIRouter(include_in_schema=False)

MaybeUser = Annotated[User | None, Depends(optional_user)]


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme) may follow a sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    query = "" if target == "/" else f"?{urlencode({'next': target})}"
    return RedirectResponse(f"/login{query}", status_code=303, headers=_NO_STORE)


def _page(request: Request, name: str, user: User | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "path": request.url.path, **context},
        headers=_NO_STORE,
    )


def _accounts_view(state: AppState, session: DbSession) -> AccountsView:
    return AccountsView(
        session, policy=state.policy, clock=state.clock, max_age=state.analysis_max_age
    )


async def _connections_context(
    state: AppState, session: DbSession, user: User, connection_id: int | None = None
) -> dict[str, Any]:
    connections = await _accounts_view(state, session).connections(user.id)
    if connection_id is not None:
        connections = [c for c in connections if c.id == connection_id]
    return {
        "connections": connections,
        "refresh": {
            c.id: view.refresh_view(c, state.policy, state.coverage.current) for c in connections
        },
        "plan": state.plan,
    }


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request,
    user: MaybeUser,
    next_: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    if user is not None:
        return RedirectResponse(_safe_next(next_), status_code=303, headers=_NO_STORE)
    return _page(request, "login.html", None, next=_safe_next(next_))


@router.get("/", response_class=HTMLResponse)
async def accounts_page(
    request: Request, state: State, session: DbSession, user: MaybeUser
) -> Response:
    """Every connection with its account cards, from the store."""
    if user is None:
        return _to_login(request)
    context = await _connections_context(state, session, user)
    portfolio = await PortfolioRepository.from_session(session).get_or_create_default(user.id)
    worth = await _accounts_view(state, session).net_worth(user, portfolio.base_currency)
    return _page(request, "accounts.html", user, compact=False, net_worth=worth, **context)


@router.get("/fragments/connections", response_class=HTMLResponse)
async def connections_fragment(
    request: Request, state: State, session: DbSession, user: MaybeUser
) -> Response:
    if user is None:
        return HTMLResponse("", status_code=401, headers=_NO_STORE)
    context = await _connections_context(state, session, user)
    return _page(request, "_connections.html", user, compact=False, **context)


@router.get("/fragments/connections/{connection_id}", response_class=HTMLResponse)
async def connection_fragment(
    request: Request, connection_id: int, state: State, session: DbSession, user: MaybeUser
) -> Response:
    """One connection's accounts, without actions (the connect page's result)."""
    if user is None:
        return HTMLResponse("", status_code=401, headers=_NO_STORE)
    context = await _connections_context(state, session, user, connection_id)
    return _page(request, "_connections.html", user, compact=True, **context)


@router.get("/connect", response_class=HTMLResponse)
async def connect_page(
    request: Request,
    state: State,
    session: DbSession,
    user: MaybeUser,
    q: Annotated[str | None, Query(max_length=100)] = None,
    scope: Literal["popular", "all"] = "all",
    trading: bool = False,
) -> Response:
    """The institution picker: popular first, then the rest; or what matches `q`."""
    if user is None:
        return _to_login(request)
    query = (q or "").strip() or None
    connections = await linked_connections(session, user.id)
    cards = institution_cards(
        state, q=query, scope="all", need_trading=trading, connections=connections
    )
    if query is None:
        popular = [c for c in cards if c.popular]
        others = [] if scope == "popular" else [c for c in cards if not c.popular]
    else:
        popular, others = [], cards
    return _page(
        request,
        "connect.html",
        user,
        q=query or "",
        scope=scope,
        trading=trading,
        popular=popular,
        others=others,
        searched=query is not None,
    )


@router.get("/portfolio", response_class=HTMLResponse)
async def portfolio_page(
    request: Request, state: State, session: DbSession, user: MaybeUser
) -> Response:
    """The consolidated portfolio, its charts and its duplicated accounts."""
    if user is None:
        return _to_login(request)
    portfolio = await portfolio_out(state, session, user)
    accounts = await _accounts_view(state, session).accounts(user.id)
    return _page(request, "portfolio.html", user, page=view.portfolio_view(portfolio, accounts))


_TITLES = {
    401: "Sign in to see this page",
    403: "This can't be done here",
    404: "Page not found",
    405: "This page can't be used that way",
    413: "That was too much to send",
    422: "This address has something we can't use",
    429: "Too many tries",
    500: "Something went wrong on our side",
    502: "A provider did not answer",
    503: "A provider is not available",
}


def _what(status: int, error: dict[str, Any], path: str) -> tuple[str, str | None]:
    """The page's sentence and, for bad input, which part of the address is at fault."""
    if status == 404:
        return (
            f"There is no page at {path}. The address may be mistyped, or what it pointed to "
            "was removed.",
            None,
        )
    if status == 422:
        field = error.get("field") or "a value"
        first = (error.get("errors") or [{}])[0]
        words = str(first.get("message") or error.get("message", ""))
        words = words[:1].lower() + words[1:]
        return (f"The “{field}” part of the address is not valid: {words}.", None)
    if status >= 500:
        return ("Nothing was changed. Try again in a moment.", str(error.get("message", "")))
    message = str(error.get("message", ""))
    return (message[:1].upper() + message[1:] + ".", None)


def error_page(
    request: Request, status: int, error: dict[str, Any], headers: dict[str, str]
) -> Response:
    """The web app's error page for `error` (the JSON error's "error" object)."""
    text, detail = _what(status, error, request.url.path)
    links = [("Back to your accounts", "/"), ("Connect an account", "/connect")]
    if status == 401:
        links = [("Sign in", "/login")]
    elif request.url.path.startswith("/connect"):
        links = [("Back to the institution list", "/connect"), ("Your accounts", "/")]
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "user": None,
            "path": request.url.path,
            "status": status,
            "code": str(error.get("code", f"http_{status}")),
            "title": _TITLES.get(status, "Something went wrong"),
            "text": text,
            "detail": detail,
            "links": links,
        },
        status_code=status,
        headers={**headers, **_NO_STORE},
    )


def install_web(app: FastAPI) -> None:
    """Mount the pages and their static files on `app`, and its error page."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
    app.state.error_page = error_page
