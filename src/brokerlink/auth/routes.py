"""`/api/auth`: sign in (a session cookie for the web app, throttled), sign out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from brokerlink.api.deps import SESSION_COOKIE, CurrentUser, DbSession, State
from brokerlink.auth.service import AuthService
from brokerlink.auth.sign_in import SignIn
from brokerlink.auth.throttle import client_address

__all__ = ["router"]

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginIn(BaseModel):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    id: int
    email: str | None
    name: str | None


def set_session_cookie(response: Response, token: str, state: State) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(state.session_ttl.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=state.secure_cookies,
        path="/",
    )


@router.post(
    "/login",
    response_model=UserOut,
    responses={
        401: {"description": "wrong email or password (one answer for both)"},
        429: {"description": "too many failed sign-ins (`sign_in_throttled`, `Retry-After`)"},
    },
)
async def login(body: LoginIn, request: Request, response: Response, state: State) -> UserOut:
    """A web session for the right email and password (an HttpOnly, SameSite cookie).

    Throttled per email and per client address; no transaction is open while the password is
    checked, so this route takes its sessions from the state rather than the request's.
    """
    sign_in = SignIn(state.sessionmaker, policy=state.sign_in, clock=state.clock)
    done = await sign_in(
        body.email,
        body.password,
        address=client_address(request, state.sign_in.trusted_proxy_hops),
        ttl=state.session_ttl,
    )
    set_session_cookie(response, done.issued.token, state)
    return UserOut(id=done.user.id, email=done.user.email, name=done.user.name)


@router.post("/logout", status_code=204)
async def logout(
    request: Request, response: Response, state: State, session: DbSession, user: CurrentUser
) -> None:
    """End the web session (the cookie's token is revoked, not only forgotten)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await AuthService(session, clock=state.clock).revoke(token)
    response.delete_cookie(SESSION_COOKIE, path="/")


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return UserOut(id=user.id, email=user.email, name=user.name)
