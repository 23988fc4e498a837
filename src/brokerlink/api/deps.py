"""Request dependencies: the app state, the transaction, the caller.

The session dependency is the transaction boundary: it commits when the route returns and
rolls back when it raises, before the response is sent (scope "function"), so a client that
reads right after a write sees it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.api.state import AppState
from brokerlink.auth import AuthService, NotAuthenticated
from brokerlink.db.session import transaction
from brokerlink.errors import BrokerlinkError
from brokerlink.models import User

__all__ = [
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "CurrentUser",
    "DbSession",
    "State",
    "get_session",
    "get_state",
    "needs_caller",
    "optional_user",
]

SESSION_COOKIE = "brokerlink_session"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.brokerlink
    return state


State = Annotated[AppState, Depends(get_state)]


def _reads_only(request: Request) -> bool:
    return request.method in _SAFE


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A read session for GET/HEAD/OPTIONS (on SQLite it never takes the write lock, so a read
    never queues behind a write), a write session otherwise."""
    state = get_state(request)
    maker = state.reads if _reads_only(request) else state.sessionmaker
    async with maker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


def _presented_token(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "api"
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, "session"
    return None


async def _authenticate(request: Request, session: AsyncSession, token: str, kind: str) -> User:
    state = get_state(request)
    if not _reads_only(request):
        user = await AuthService(session, clock=state.clock).authenticate(token, kind=kind)
        # End the sign-in lookup's transaction: on SQLite a write transaction holds the write
        # lock, and services that open their own session (orders, refreshes) would wait on it.
        await session.commit()
        return user
    user, touch = await AuthService(session, clock=state.clock).authenticate_read(token, kind=kind)
    await session.commit()
    if touch is not None:
        # A read stays a read: the token's last use (once a minute) is a write of its own.
        async with transaction(state.sessionmaker) as write:
            await AuthService(write, clock=state.clock).touch(touch)
    return user


async def optional_user(request: Request, session: DbSession) -> User | None:
    presented = _presented_token(request)
    if presented is None:
        return None
    try:
        return await _authenticate(request, session, *presented)
    except NotAuthenticated:
        return None


class CsrfRequired(BrokerlinkError):
    status_code = 403
    code = "csrf_required"


CSRF_HEADER = "X-Brokerlink-CSRF"


async def current_user(request: Request, session: DbSession) -> User:
    presented = _presented_token(request)
    if presented is None:
        raise NotAuthenticated("sign in, or send an API token as 'Authorization: Bearer …'")
    token, kind = presented
    # A cookie rides along on cross-site requests; a custom header cannot be sent cross-site
    # without a CORS preflight, which this app never grants.
    if kind == "session" and not _reads_only(request) and not request.headers.get(CSRF_HEADER):
        raise CsrfRequired(f"a signed-in browser request that changes data needs {CSRF_HEADER}")
    return await _authenticate(request, session, token, kind)


CurrentUser = Annotated[User, Depends(current_user)]


def needs_caller(dependant: Dependant) -> bool:
    """Whether a route (its dependency tree) needs the signed-in caller."""
    return any(d.call is current_user or needs_caller(d) for d in dependant.dependencies)
