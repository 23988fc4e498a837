"""The routes the portfolio app already calls, kept with their names and shapes:

    POST /api/snaptrade/register-user          → {"userId": ...} (the user secret stays stored)
    POST /api/snaptrade/create-connection-url  → {"redirectURI": ..., "state": ...}
    POST /api/snaptrade/refresh-holdings       → cost-guarded refresh of SnapTrade connections
    POST /api/plaid/create-link-token          → {"link_token", "hosted_link_url", "state"}
    POST /api/plaid/exchange-public-token      → the stored connection
    POST /api/plaid/refresh-holdings           → cost-guarded refresh of Plaid connections

They go through the same services as `/api/connections`: the same routing, cost guard and
background sync; their provider calls carry the user and the institution into the call log.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from brokerlink.accounts.schemas import ConnectionOut
from brokerlink.api.deps import CurrentUser, DbSession, State
from brokerlink.connections.link_state import STATE_TTL, LinkState, sign_state
from brokerlink.connections.routes import (
    CompleteIn,
    RefreshAllItem,
    callback_url,
    finish_link,
    refresh_each,
)
from brokerlink.connections.service import ProviderNotConfigured
from brokerlink.domain.enums import Provider
from brokerlink.errors import PRINTABLE, PROVIDER_ID, SIGNED_TOKEN, NotFoundError, ValidationError
from brokerlink.providers.observe import call_context
from brokerlink.repositories import ConnectionRepository

__all__ = ["router"]

router = APIRouter(tags=["compatibility"])


class RegisterOut(BaseModel):
    userId: str  # noqa: N815 - the portfolio app's field name


class ConnectionUrlIn(BaseModel):
    institution: str | None = Field(default=None, min_length=1, max_length=200, pattern=PRINTABLE)
    broker: str | None = Field(
        default=None, min_length=1, max_length=100, pattern="^[A-Za-z0-9_-]+$"
    )
    connectionType: str = Field(default="read", pattern="^(read|trade)$")  # noqa: N815


class ConnectionUrlOut(BaseModel):
    redirectURI: str  # noqa: N815
    state: str


class RefreshHoldingsIn(BaseModel):
    connection_id: int | None = Field(default=None, ge=1, le=2**62)
    override: bool = False


class LinkTokenIn(BaseModel):
    institution: str | None = Field(default=None, min_length=1, max_length=200, pattern=PRINTABLE)


class LinkTokenOut(BaseModel):
    link_token: str
    hosted_link_url: str
    state: str


class ExchangeIn(BaseModel):
    public_token: str = Field(min_length=1, max_length=400, pattern=PROVIDER_ID)
    state: str = Field(min_length=1, max_length=4000, pattern=SIGNED_TOKEN)


@router.post("/api/snaptrade/register-user", response_model=RegisterOut)
async def snaptrade_register(state: State, user: CurrentUser) -> RegisterOut:
    if state.snaptrade is None:
        raise ProviderNotConfigured("SnapTrade is not configured")
    with call_context(user_id=user.id):
        return RegisterOut(userId=await state.snaptrade.register_user(str(user.id)))


@router.post("/api/snaptrade/create-connection-url", response_model=ConnectionUrlOut)
async def snaptrade_connection_url(
    body: ConnectionUrlIn, request: Request, state: State, user: CurrentUser
) -> ConnectionUrlOut:
    """The SnapTrade portal URL. With an institution, the coverage map must route it to
    SnapTrade; a broker slug opens that brokerage directly."""
    if state.snaptrade is None:
        raise ProviderNotConfigured("SnapTrade is not configured")
    broker = body.broker
    institution = body.institution or body.broker or "snaptrade"
    slug = broker.lower() if broker else None
    if body.institution:
        decision = state.router.choose_provider(
            body.institution, need_trading=body.connectionType == "trade"
        )
        if decision.provider is not Provider.SNAPTRADE:
            raise ValidationError(
                f"{body.institution} connects through {decision.provider.value}: {decision.reason}",
                field="institution",
            )
        broker = decision.provider_institution_id
        slug = decision.institution_slug
    with call_context(institution=slug, user_id=user.id):
        url = await state.snaptrade.connection_link(
            str(user.id),
            broker=broker,
            connection_type="trade-if-available" if body.connectionType == "trade" else "read",
            custom_redirect=callback_url(state, request),
        )
    signed = sign_state(
        LinkState(
            user_id=user.id,
            provider=Provider.SNAPTRADE,
            institution=institution,
            expires_at=state.clock() + STATE_TTL,
        ),
        state.state_key,
    )
    return ConnectionUrlOut(redirectURI=url, state=signed)


async def _refresh(
    provider: Provider, body: RefreshHoldingsIn, state: State, session: DbSession, user: CurrentUser
) -> list[RefreshAllItem]:
    connections = [
        c
        for c in await ConnectionRepository.from_session(session).list_syncable(user.id)
        if c.provider is provider and (body.connection_id in (None, c.id))
    ]
    if body.connection_id is not None and not connections:
        raise NotFoundError(f"{provider.value} connection {body.connection_id} not found")
    await session.commit()  # end the read before the provider calls
    try:
        # Each refresh commits its own ledger rows: a failure of a later one (raised, as the
        # portfolio app expects) keeps what the earlier ones were billed.
        return await refresh_each(
            state.refreshes, user.id, connections, override=body.override, keep_going=False
        )
    finally:
        for connection in connections:
            await state.queue.refresh_followup(connection.id)


@router.post("/api/snaptrade/refresh-holdings", response_model=list[RefreshAllItem])
async def snaptrade_refresh(
    state: State, session: DbSession, user: CurrentUser, body: RefreshHoldingsIn | None = None
) -> list[RefreshAllItem]:
    return await _refresh(Provider.SNAPTRADE, body or RefreshHoldingsIn(), state, session, user)


@router.post("/api/plaid/create-link-token", response_model=LinkTokenOut)
async def plaid_link_token(
    body: LinkTokenIn, request: Request, state: State, user: CurrentUser
) -> LinkTokenOut:
    if state.plaid is None:
        raise ProviderNotConfigured("Plaid is not configured")
    entry = state.coverage.current.match(body.institution) if body.institution else None
    with call_context(institution=entry.slug if entry else None, user_id=user.id):
        token, hosted = await state.plaid.create_link(
            str(user.id),
            institution_id=entry.plaid_institution_id if entry is not None else None,
            completion_redirect_uri=callback_url(state, request),
        )
    signed = sign_state(
        LinkState(
            user_id=user.id,
            provider=Provider.PLAID,
            institution=body.institution or "plaid",
            expires_at=state.clock() + STATE_TTL,
            link_token=token,
        ),
        state.state_key,
    )
    return LinkTokenOut(link_token=token, hosted_link_url=hosted or "", state=signed)


@router.post("/api/plaid/exchange-public-token", response_model=ConnectionOut)
async def plaid_exchange(
    body: ExchangeIn, state: State, session: DbSession, user: CurrentUser
) -> ConnectionOut:
    return await finish_link(
        state, session, user, CompleteIn(state=body.state, public_token=body.public_token)
    )


@router.post("/api/plaid/refresh-holdings", response_model=list[RefreshAllItem])
async def plaid_refresh(
    state: State, session: DbSession, user: CurrentUser, body: RefreshHoldingsIn | None = None
) -> list[RefreshAllItem]:
    return await _refresh(Provider.PLAID, body or RefreshHoldingsIn(), state, session, user)
