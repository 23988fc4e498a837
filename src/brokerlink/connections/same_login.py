"""Which institution a provider linked, and whether a new link is a login the user already has.

The institution of a connection is the provider's answer, never the picker's: the portal or
Hosted Link may have linked another institution than the card the user clicked (SnapTrade's
generic portal, Plaid's own search). `reported_institution` maps the answer onto the coverage map.

The same login linked again reuses its connection. The rule, per provider:

- SnapTrade: the same brokerage authorization id is the same connection (the upsert by upstream
  id does it). A *new* authorization at the same brokerage whose accounts carry the same number
  masks is the same login linked twice.
- Plaid: Plaid's duplicate-Item guidance: the same institution and the same account masks is the
  same login (https://plaid.com/docs/link/duplicate-items/).

Only a full match counts: every stored account's mask is among the new link's masks and the other
way round, with at least one mask. A second login at the same institution (a joint account, a
spouse's) has other masks and stays a connection of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.enums import Provider
from brokerlink.domain.models import AccountSummary
from brokerlink.domain.models import Connection as ProviderConnection
from brokerlink.models import Connection
from brokerlink.repositories import AccountRepository, ConnectionRepository
from brokerlink.routing.coverage import CoverageEntry, CoverageMap, normalize_name

__all__ = ["find_same_login", "reported_institution"]


def reported_institution(
    coverage: CoverageMap, provider: Provider, link: ProviderConnection
) -> tuple[CoverageEntry | None, str]:
    """The coverage entry (if any) and our slug for the institution the provider linked."""
    entry: CoverageEntry | None = None
    if provider is Provider.SNAPTRADE and link.institution_slug:
        entry = coverage.by_snaptrade_slug(link.institution_slug.upper())
        if entry is None:
            return None, link.institution_slug.lower()
        return entry, entry.slug
    entry = coverage.match(link.institution_name)
    if entry is not None:
        return entry, entry.slug
    return None, link.institution_slug or normalize_name(link.institution_name) or "institution"


def _masks(masks: Sequence[str | None]) -> frozenset[str]:
    return frozenset(m for m in masks if m)


async def find_same_login(
    session: AsyncSession,
    user_id: int,
    provider: Provider,
    slug: str,
    link: ProviderConnection,
    accounts: Sequence[AccountSummary],
) -> Connection | None:
    """The user's stored connection that `link` duplicates, or None."""
    fresh = _masks([a.number_mask for a in accounts])
    if not fresh:
        return None
    repo = AccountRepository.from_session(session)
    for stored in await ConnectionRepository.from_session(session).list_for_user(
        user_id, provider=provider
    ):
        if stored.provider_connection_id == link.connection_id or stored.institution_slug != slug:
            continue
        held = _masks([a.number_mask for a in await repo.list_for_connection(stored.id)])
        if held == fresh:
            return stored
    return None
