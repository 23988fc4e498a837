"""`/api/institutions`: the institution picker's data, each with the provider it opens and why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.api.deps import CurrentUser, DbSession, State
from brokerlink.domain.enums import Provider
from brokerlink.errors import BrokerlinkError
from brokerlink.models import Connection
from brokerlink.repositories import ConnectionRepository
from brokerlink.routing.coverage import CoverageEntry, normalize_name

__all__ = ["InstitutionOut", "institution_cards", "linked_connections", "router"]

router = APIRouter(prefix="/api/institutions", tags=["institutions"])

_PALETTE = ("#1f6feb", "#8250df", "#bf3989", "#cf222e", "#bc4c00", "#1a7f37", "#0969da")


class InstitutionOut(BaseModel):
    slug: str
    name: str
    type: str
    popular: bool
    logo_text: str
    logo_color: str
    provider: str | None
    reason: str
    fallback_used: bool
    trading_possible: bool
    # The user's connection to this institution, if any: the picker offers Reconnect.
    connected: bool = False
    connection_id: int | None = None
    connection_status: str | None = None


def _logo(entry: CoverageEntry) -> tuple[str, str]:
    words = [w for w in entry.name.replace("*", " ").replace("&", " ").split() if w[0].isalnum()]
    text = "".join(w[0] for w in words[:2]).upper() or entry.name[:2].upper()
    color = _PALETTE[sum(entry.slug.encode()) % len(_PALETTE)]
    return text, color


async def linked_connections(session: AsyncSession, user_id: int) -> list[Connection]:
    """The user's provider connections (manual ones are not institutions)."""
    return [
        c
        for c in await ConnectionRepository.from_session(session).list_for_user(user_id)
        if c.provider is not Provider.MANUAL
    ]


def institution_cards(
    state: State,
    *,
    q: str | None,
    scope: str,
    need_trading: bool,
    connections: Sequence[Connection] = (),
) -> list[InstitutionOut]:
    coverage = state.coverage.current
    router_ = state.router
    entries = list(coverage.entries)
    if q:
        wanted = normalize_name(q)
        entries = [e for e in entries if any(wanted in normalize_name(n) for n in e.names())]
    elif scope == "popular":
        entries = [e for e in entries if e.popular]
    entries.sort(key=lambda e: (not e.popular, e.name.casefold()))
    cards = []
    for entry in entries:
        text, color = _logo(entry)
        try:
            decision = router_.choose_provider(entry.slug, need_trading)
            provider: str | None = decision.provider.value
            reason, fallback, trading = (
                decision.reason,
                decision.fallback_used,
                decision.trading_possible,
            )
        except BrokerlinkError as refused:
            provider, reason, fallback, trading = None, refused.message, False, False
        # Connections are stored under the coverage slug of the institution the provider
        # reported (connections.service), so the slug finds them whichever provider opened.
        mine = next((c for c in connections if c.institution_slug == entry.slug), None)
        cards.append(
            InstitutionOut(
                slug=entry.slug,
                name=entry.name,
                type=entry.type,
                popular=entry.popular,
                logo_text=text,
                logo_color=color,
                provider=provider,
                reason=reason,
                fallback_used=fallback,
                trading_possible=trading,
                connected=mine is not None,
                connection_id=mine.id if mine is not None else None,
                connection_status=mine.status.value if mine is not None else None,
            )
        )
    return cards


@router.get("", response_model=list[InstitutionOut])
async def list_institutions(
    state: State,
    session: DbSession,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=100, description="Search by name or alias")] = None,
    scope: Annotated[Literal["popular", "all"], Query()] = "all",
    need_trading: bool = False,
) -> list[InstitutionOut]:
    """Institutions (popular first), each with the provider it would open and the reason,
    and whether the user already has a connection to it (`connected`, `connection_id`)."""
    connections = await linked_connections(session, user.id)
    return institution_cards(
        state, q=q, scope=scope, need_trading=need_trading, connections=connections
    )
