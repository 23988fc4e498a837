"""Live provider reference data for the link-time router, fetched when available.

SnapTrade's brokerage list says which brokerages are disabled, in maintenance or degraded (the
router then opens the coverage entry's fallback) and which allow trading; Plaid's institution
search finds institutions the coverage map does not know. Either provider being unreachable
leaves that part empty ("not known"): the map's defaults apply, and the failure is logged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import structlog

from brokerlink.domain.errors import ProviderError
from brokerlink.providers.plaid import PlaidClient
from brokerlink.providers.snaptrade import SnapTradeClient
from brokerlink.routing.router import BrokerageStatus, ReferenceData

__all__ = ["ReferenceSource", "brokerage_statuses"]

log = structlog.get_logger("brokerlink.routing")


def brokerage_statuses(brokerages: list[Mapping[str, object]]) -> dict[str, BrokerageStatus]:
    """SnapTrade `/brokerages` items as router statuses, keyed by slug."""
    statuses: dict[str, BrokerageStatus] = {}
    for item in brokerages:
        slug = item.get("slug")
        if not isinstance(slug, str) or not slug:
            continue
        name = item.get("display_name") or item.get("name") or slug
        trading = item.get("allows_trading")
        statuses[slug] = BrokerageStatus(
            slug=slug,
            name=str(name),
            enabled=item.get("enabled") is not False,
            maintenance_mode=item.get("maintenance_mode") is True,
            is_degraded=item.get("is_degraded") is True,
            allows_trading=trading if isinstance(trading, bool) else None,
        )
    return statuses


class ReferenceSource:
    """Fetches reference data for one routing decision; SnapTrade's list is cached for `ttl`."""

    def __init__(
        self,
        *,
        snaptrade: SnapTradeClient | None = None,
        plaid: PlaidClient | None = None,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.snaptrade = snaptrade
        self.plaid = plaid
        self.ttl = ttl
        self.clock = clock
        self._brokerages: dict[str, BrokerageStatus] = {}
        self._fetched_at: float | None = None

    async def _snaptrade_brokerages(self) -> dict[str, BrokerageStatus]:
        if self.snaptrade is None:
            return {}
        now = self.clock()
        if self._fetched_at is not None and now - self._fetched_at < self.ttl:
            return self._brokerages
        try:
            raw = await self.snaptrade.list_brokerages()
        except ProviderError as error:
            log.warning("routing.reference.unavailable", provider="snaptrade", error=str(error))
            return self._brokerages  # the last good list, or nothing
        self._brokerages = brokerage_statuses([dict(b) for b in raw])
        self._fetched_at = now
        return self._brokerages

    async def _plaid_matches(self, query: str) -> dict[str, str]:
        if self.plaid is None or not query.strip():
            return {}
        try:
            found = await self.plaid.institutions_search(query, products=None)
        except ProviderError as error:
            log.warning("routing.reference.unavailable", provider="plaid", error=str(error))
            return {}
        return {
            i["institution_id"]: i.get("name", "")
            for i in found.get("institutions") or []
            if "institution_id" in i
        }

    def invalidate(self) -> None:
        self._fetched_at = None

    async def for_query(self, query: str, *, known: bool) -> ReferenceData:
        """Reference data for routing `query`; Plaid is searched only for unknown names."""
        brokerages = await self._snaptrade_brokerages()
        plaid = {} if known else await self._plaid_matches(query)
        return ReferenceData(snaptrade_brokerages=brokerages, plaid_institutions=plaid)
