"""`/api/connections`: start a provider's flow, complete it, list, reconnect, remove, refresh.

Connecting, refreshing and removing call the provider (they must); the answer to a completed
connection comes from the store, and its first sync runs in the background.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.accounts.schemas import ConnectionOut
from brokerlink.accounts.service import AccountsView
from brokerlink.api.deps import CurrentUser, DbSession, State
from brokerlink.api.state import AppState
from brokerlink.connections.link_state import STATE_TTL, LinkState, sign_state, verify_state
from brokerlink.connections.refresh import RefreshNotSupported, RefreshService
from brokerlink.connections.service import LinkResult, LinkService, LinkStart
from brokerlink.domain.enums import Provider
from brokerlink.errors import (
    ID_MAX_LENGTH,
    PRINTABLE,
    PROVIDER_ID,
    SIGNED_TOKEN,
    BrokerlinkError,
    NotFoundError,
    ValidationError,
)
from brokerlink.models import Connection, User
from brokerlink.policies.cost_guard import CostGuard, RefreshRefused
from brokerlink.repositories import ConnectionRepository

__all__ = ["callback_url", "link_service", "router", "start_link", "finish_link"]

router = APIRouter(prefix="/api/connections", tags=["connections"])
pages = APIRouter(tags=["connections"])

Id = Annotated[int, Path(ge=1, le=2**62)]


class LinkCancelled(BrokerlinkError):
    status_code = 409
    code = "link_cancelled"


class StartIn(BaseModel):
    institution: str | None = Field(default=None, min_length=1, max_length=200, pattern=PRINTABLE)
    need_trading: bool = False
    # No institution: open the provider's own search (Plaid Hosted Link without one).
    provider_search: bool = False


class StartOut(BaseModel):
    provider: str
    reason: str
    fallback_used: bool
    url: str
    state: str
    monthly_cost: Decimal
    link_token: str | None = None


class CompleteIn(BaseModel):
    state: str = Field(min_length=1, max_length=4000, pattern=SIGNED_TOKEN)
    # What the provider's flow reported back (SnapTrade's redirect: status, connection_id).
    status: str | None = Field(default=None, max_length=40, pattern="^[A-Za-z_]+$")
    connection_id: str | None = Field(
        default=None, min_length=1, max_length=ID_MAX_LENGTH, pattern=PROVIDER_ID
    )
    public_token: str | None = Field(
        default=None, min_length=1, max_length=400, pattern=PROVIDER_ID
    )


class RefreshIn(BaseModel):
    # The user confirmed refreshing inside the cost window, knowing what it costs.
    override: bool = False


class RefreshOut(BaseModel):
    connection_id: int
    provider: str
    accepted: bool
    detail: str | None
    sync: str


class RefreshAllItem(BaseModel):
    connection_id: int
    institution: str
    provider: str
    result: Literal["refreshed", "refused", "failed"]
    reason: str | None = None
    next_allowed_at: datetime | None = None


async def refresh_each(
    refreshes: RefreshService,
    user_id: int,
    connections: Sequence[Connection],
    *,
    override: bool,
    keep_going: bool,
) -> list[RefreshAllItem]:
    """Refresh each connection; a cost-guard refusal is reported with its reason and next
    time. With `keep_going`, any other failure is reported too and the rest still run."""
    out: list[RefreshAllItem] = []
    for connection in connections:
        item = RefreshAllItem(
            connection_id=connection.id,
            institution=connection.institution_name,
            provider=connection.provider.value,
            result="refreshed",
        )
        try:
            await refreshes.refresh(user_id, connection.id, override=override)
        except RefreshRefused as refused:
            item.result, item.reason = "refused", refused.reason
            item.next_allowed_at = refused.next_allowed_at
        except RefreshNotSupported as unsupported:
            # Not a failure: the provider keeps this institution fresh on its own schedule.
            item.result, item.reason = "refused", unsupported.message
        except Exception as error:
            if not keep_going:
                raise
            item.result, item.reason = "failed", str(error)
        out.append(item)
    return out


def link_service(state: AppState, session: AsyncSession) -> LinkService:
    return LinkService(
        session,
        router=state.router,
        snaptrade=state.snaptrade,
        plaid=state.plaid,
        plan=state.plan,
        guard=CostGuard(session, state.policy, clock=state.clock),
        reference=state.reference,
    )


def callback_url(state: AppState, request: Request) -> str:
    base = state.public_url or str(request.base_url).rstrip("/")
    return f"{base.rstrip('/')}/connect/callback"


def _start_out(
    state: AppState,
    user: User,
    start: LinkStart,
    *,
    institution: str,
    connection_id: int | None = None,
) -> StartOut:
    signed = sign_state(
        LinkState(
            user_id=user.id,
            provider=start.provider,
            institution=institution,
            expires_at=state.clock() + STATE_TTL,
            link_token=start.link_token,
            connection_id=connection_id,
        ),
        state.state_key,
    )
    return StartOut(
        provider=start.provider.value,
        reason=start.decision.reason,
        fallback_used=start.decision.fallback_used,
        url=start.url,
        state=signed,
        monthly_cost=start.monthly_cost,
        link_token=start.link_token,
    )


async def start_link(
    state: AppState, session: AsyncSession, user: User, request: Request, body: StartIn
) -> StartOut:
    if body.institution is None and not body.provider_search:
        raise ValidationError(
            "name an institution, or ask for the provider's own search (provider_search)",
            field="institution",
        )
    links = link_service(state, session)
    start = await links.start(
        user.id,
        None if body.provider_search else body.institution,
        need_trading=body.need_trading,
        redirect_uri=callback_url(state, request),
    )
    institution = "" if body.provider_search else (body.institution or "")
    return _start_out(state, user, start, institution=institution)


async def finish_link(
    state: AppState, session: AsyncSession, user: User, body: CompleteIn
) -> ConnectionOut:
    """Complete the flow the signed state describes, commit, and start its first sync."""
    flow = verify_state(body.state, state.state_key, user_id=user.id, now=state.clock())
    if body.status is not None and body.status.upper() not in ("SUCCESS", "SUCCEEDED"):
        raise LinkCancelled(
            f"the {flow.provider.value} connection flow ended with {body.status.lower()}; "
            "nothing was connected"
        )
    links = link_service(state, session)
    result: LinkResult
    if flow.connection_id is not None:
        result = await links.complete_reconnect(
            user.id, flow.connection_id, authorization_id=body.connection_id
        )
    elif flow.provider is Provider.SNAPTRADE:
        if not body.connection_id:
            raise ValidationError("SnapTrade's connection_id is required", field="connection_id")
        result = await links.complete_snaptrade(
            user.id, authorization_id=body.connection_id, institution=flow.institution
        )
    else:
        result = await links.complete_plaid(
            user.id,
            institution=flow.institution,
            public_token=body.public_token,
            link_token=None if body.public_token else flow.link_token,
        )
    connection_id = result.connection.id
    await session.commit()
    # The first sync: in the background, so the answer does not wait on the provider.
    await state.queue.first_sync(connection_id)
    view = AccountsView(session, policy=state.policy, clock=state.clock)
    return next(c for c in await view.connections(user.id) if c.id == connection_id)


@router.get("", response_model=list[ConnectionOut])
async def list_connections(
    state: State, session: DbSession, user: CurrentUser
) -> list[ConnectionOut]:
    """The user's connections and their accounts, from the store, with freshness."""
    return await AccountsView(session, policy=state.policy, clock=state.clock).connections(user.id)


@router.post("", response_model=StartOut, status_code=201)
async def start_connection(
    body: StartIn, request: Request, state: State, session: DbSession, user: CurrentUser
) -> StartOut:
    """Route the institution to a provider and open its flow: the SnapTrade portal URL or the
    Plaid Hosted Link URL, with the reason and the monthly cost of keeping the connection."""
    return await start_link(state, session, user, request, body)


@router.post("/complete", response_model=ConnectionOut)
async def complete_connection(
    body: CompleteIn, state: State, session: DbSession, user: CurrentUser
) -> ConnectionOut:
    """After the provider's flow: store the connection and its accounts; the first sync starts
    in the background."""
    return await finish_link(state, session, user, body)


@router.post("/{connection_id}/reconnect", response_model=StartOut, status_code=201)
async def reconnect_connection(
    connection_id: Id, request: Request, state: State, session: DbSession, user: CurrentUser
) -> StartOut:
    """The provider's re-login flow for the same connection (never a second connection)."""
    links = link_service(state, session)
    start = await links.reconnect(user.id, connection_id, redirect_uri=callback_url(state, request))
    connection = await ConnectionRepository.from_session(session).get(connection_id)
    assert connection is not None
    return _start_out(
        state,
        user,
        start,
        institution=connection.institution_slug or connection.institution_name,
        connection_id=connection_id,
    )


@router.delete("/{connection_id}", status_code=204)
async def remove_connection(
    connection_id: Id, state: State, session: DbSession, user: CurrentUser
) -> None:
    """Remove at the provider (ending its billing), then the stored connection."""
    await link_service(state, session).remove(user.id, connection_id)


@router.post("/{connection_id}/refresh", response_model=RefreshOut)
async def refresh_connection(
    connection_id: Id,
    state: State,
    session: DbSession,
    user: CurrentUser,
    body: RefreshIn | None = None,
) -> RefreshOut:
    """Ask the provider for fresh data (cost-guarded: a Plaid refresh at most once per 24 h
    unless `override`), then sync the connection in the background."""
    override = body.override if body is not None else False
    # The refresh owns its transactions (intent, call, settle): none is open across the call.
    result = await state.refreshes.refresh(user.id, connection_id, override=override)
    await state.queue.refresh_followup(connection_id)
    return RefreshOut(
        connection_id=connection_id,
        provider=result.provider.value,
        accepted=result.accepted,
        detail=result.detail,
        sync="started",
    )


@router.post("/refresh-all", response_model=list[RefreshAllItem])
async def refresh_all(
    state: State, session: DbSession, user: CurrentUser, body: RefreshIn | None = None
) -> list[RefreshAllItem]:
    """Refresh every connection the cost guard allows (each refusal with its reason and next
    time), then sync all of them in the background."""
    connections = await ConnectionRepository.from_session(session).list_syncable(user.id)
    await session.commit()  # end the read before the provider calls
    out = await refresh_each(
        state.refreshes,
        user.id,
        connections,
        override=body.override if body is not None else False,
        # One connection's failure never stops the others.
        keep_going=True,
    )
    await state.queue.sync_user(user.id)
    return out


sync_router = APIRouter(prefix="/api/sync", tags=["connections"])


class SyncOut(BaseModel):
    status: str
    connections: int


@sync_router.post("", response_model=SyncOut, status_code=202)
async def sync_all(state: State, session: DbSession, user: CurrentUser) -> SyncOut:
    """ "Sync all": read every connection from its provider, in the background (no provider
    refresh is requested, so nothing is billed)."""
    count = len(await ConnectionRepository.from_session(session).list_syncable(user.id))
    if count == 0:
        raise NotFoundError("there are no connections to sync")
    await session.commit()  # the job marks its connections in a transaction of its own
    await state.queue.sync_user(user.id)
    return SyncOut(status="started", connections=count)


@sync_router.get("", response_model=SyncOut)
async def sync_status(state: State, session: DbSession, user: CurrentUser) -> SyncOut:
    count = len(await ConnectionRepository.from_session(session).list_syncable(user.id))
    running = await state.queue.syncing_user(user.id)
    return SyncOut(status="running" if running else "idle", connections=count)


_CALLBACK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>brokerlink: connection</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><p id="message">Finishing the connection…</p></main>
<script>
(function () {
  var q = new URLSearchParams(location.search);
  var status = (q.get("status") || "SUCCESS").toUpperCase();
  var ok = status === "SUCCESS" || status === "SUCCEEDED";
  var result = {type: "brokerlink.connect", status: status,
                connection_id: q.get("connection_id"), broker: q.get("broker"),
                error_code: q.get("error_code")};
  var message = document.getElementById("message");
  if (window.opener && !window.opener.closed) {
    window.opener.postMessage(result, location.origin);
    message.textContent = ok ? "Done. You can close this window."
      : "Nothing was connected. brokerlink shows what happened; you can close this window.";
    setTimeout(function () { window.close(); }, 300);
  } else {
    message.textContent = ok
      ? "The connection flow finished. Return to brokerlink to see your accounts."
      : "Nothing was connected (" + status.toLowerCase() + "). Return to brokerlink to try again.";
  }
})();
</script></body></html>
"""


@pages.get("/connect/callback", response_class=HTMLResponse, include_in_schema=False)
async def connect_callback() -> HTMLResponse:
    """Where providers send the browser back. It only hands the result to the page that
    opened the popup (same origin); completing needs the signed state and the user's session."""
    return HTMLResponse(_CALLBACK_PAGE, headers={"Cache-Control": "no-store"})
