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
from brokerlink.routing.routes import institution_cards
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
        "refresh": {c.id: view.refresh_view(c, state.policy) for c in connections},
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
    worth = await _accounts_view(state, session).net_worth(user.id, portfolio.base_currency)
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
    user: MaybeUser,
    q: Annotated[str | None, Query(max_length=100)] = None,
    scope: Literal["popular", "all"] = "all",
    trading: bool = False,
) -> Response:
    """The institution picker: popular first, then the rest; or what matches `q`."""
    if user is None:
        return _to_login(request)
    query = (q or "").strip() or None
    cards = institution_cards(state, q=query, scope="all", need_trading=trading)
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


def install_web(app: FastAPI) -> None:
    """Mount the pages and their static files on `app`."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=_HERE / "static"), name="static")
