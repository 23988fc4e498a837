"""`/api/institutions`: the institution picker's data, each with the provider it opens and why."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from brokerlink.api.deps import CurrentUser, State
from brokerlink.errors import BrokerlinkError
from brokerlink.routing.coverage import CoverageEntry, normalize_name

__all__ = ["InstitutionOut", "institution_cards", "router"]

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


def _logo(entry: CoverageEntry) -> tuple[str, str]:
    words = [w for w in entry.name.replace("*", " ").replace("&", " ").split() if w[0].isalnum()]
    text = "".join(w[0] for w in words[:2]).upper() or entry.name[:2].upper()
    color = _PALETTE[sum(entry.slug.encode()) % len(_PALETTE)]
    return text, color


def institution_cards(
    state: State, *, q: str | None, scope: str, need_trading: bool
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
            )
        )
    return cards


@router.get("", response_model=list[InstitutionOut])
async def list_institutions(
    state: State,
    user: CurrentUser,
    q: Annotated[str | None, Query(max_length=100, description="Search by name or alias")] = None,
    scope: Annotated[Literal["popular", "all"], Query()] = "all",
    need_trading: bool = False,
) -> list[InstitutionOut]:
    """Institutions (popular first), each with the provider it would open and the reason."""
    return institution_cards(state, q=q, scope=scope, need_trading=need_trading)
