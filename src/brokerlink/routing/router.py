"""Which provider opens an institution (link time), and which serves a stored account (run time).

Link time may fall back, and says why: the user sees which provider opens before anything is made.
Run time never does: an account's stored provider decides, because the same account seen through
another aggregator is a different record and a duplicate waiting to happen.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

from brokerlink.domain import Provider
from brokerlink.errors import BrokerlinkError

from .coverage import CoverageEntry, CoverageMap, normalize_name

__all__ = [
    "BrokerageStatus",
    "LinkRouter",
    "NoProviderAvailable",
    "ProviderFlags",
    "ReferenceData",
    "RoutingDecision",
    "UnknownProvider",
    "provider_for_account",
]


class NoProviderAvailable(BrokerlinkError):
    """No provider can open this institution right now; the message says why."""

    status_code = 409
    code = "no_provider_available"


class UnknownProvider(BrokerlinkError):
    """A stored record names no provider we know: an error, never a guess."""

    status_code = 500
    code = "unknown_provider"


@dataclass(frozen=True)
class BrokerageStatus:
    """What SnapTrade's `/brokerages` says about one brokerage right now."""

    slug: str
    name: str
    enabled: bool = True
    maintenance_mode: bool = False
    is_degraded: bool = False
    allows_trading: bool | None = None

    @property
    def unavailable_reason(self) -> str | None:
        if not self.enabled:
            return "disabled"
        if self.maintenance_mode:
            return "in maintenance"
        if self.is_degraded:
            return "degraded"
        return None


@dataclass(frozen=True)
class ReferenceData:
    """Live provider reference data, when it could be fetched; empty means "not known"."""

    snaptrade_brokerages: Mapping[str, BrokerageStatus] = field(default_factory=dict)
    plaid_institutions: Mapping[str, str] = field(default_factory=dict)  # id -> name


@dataclass(frozen=True)
class ProviderFlags:
    enable_snaptrade: bool = True
    snaptrade_admin_only: bool = False


@dataclass(frozen=True)
class RoutingDecision:
    """The provider that opens, why, and what to ask it for."""

    query: str
    provider: Provider
    reason: str
    entry: CoverageEntry | None = None
    fallback_used: bool = False
    # The provider's own id for the institution: a SnapTrade brokerage slug or a Plaid id.
    provider_institution_id: str | None = None
    # What the SnapTrade portal is asked for; None for Plaid.
    connection_type: str | None = None
    trading_possible: bool = False

    @property
    def institution_slug(self) -> str | None:
        """Our slug for the institution this opens, as far as it is known before the provider
        answers: the coverage map's, else the SnapTrade brokerage's (lower case, as a link to
        it is stored); None when the provider's own search picks it."""
        if self.entry is not None:
            return self.entry.slug
        if self.provider is Provider.SNAPTRADE and self.provider_institution_id:
            return self.provider_institution_id.lower()
        return None


class LinkRouter:
    """`choose_provider` decides at link time, from the coverage map and live reference data."""

    def __init__(
        self,
        coverage: CoverageMap,
        flags: ProviderFlags | None = None,
        reference: ReferenceData | None = None,
    ) -> None:
        self.coverage = coverage
        self.flags = flags or ProviderFlags()
        self.reference = reference or ReferenceData()

    def _snaptrade_blocked(self, is_admin: bool) -> str | None:
        if not self.flags.enable_snaptrade:
            return "SnapTrade is turned off (ENABLE_SNAPTRADE=false)"
        if self.flags.snaptrade_admin_only and not is_admin:
            return "SnapTrade is enabled for administrators only (SNAPTRADE_ADMIN_ONLY=true)"
        return None

    def _brokerage_blocked(self, slug: str) -> str | None:
        status = self.reference.snaptrade_brokerages.get(slug)
        if status is None or status.unavailable_reason is None:
            return None
        return f"SnapTrade reports {status.name} as {status.unavailable_reason}"

    def _snaptrade_trades(self, entry: CoverageEntry) -> bool:
        if not entry.allow_trading or entry.snaptrade_slug is None:
            return False
        status = self.reference.snaptrade_brokerages.get(entry.snaptrade_slug)
        return status is None or status.allows_trading is not False

    def _decide(
        self, query: str, entry: CoverageEntry, provider: Provider, reason: str, *, fallback: bool
    ) -> RoutingDecision:
        if provider is Provider.SNAPTRADE:
            trades = self._snaptrade_trades(entry)
            return RoutingDecision(
                query=query,
                provider=provider,
                reason=reason,
                entry=entry,
                fallback_used=fallback,
                provider_institution_id=entry.snaptrade_slug,
                connection_type="trade-if-available" if trades else "read",
                trading_possible=trades,
            )
        return RoutingDecision(
            query=query,
            provider=provider,
            reason=reason,
            entry=entry,
            fallback_used=fallback,
            provider_institution_id=entry.plaid_institution_id,
        )

    def choose_provider(
        self, institution: str, need_trading: bool = False, *, is_admin: bool = False
    ) -> RoutingDecision:
        """Pick the provider for `institution` (a slug, name or alias) and say why."""
        entry = self.coverage.match(institution)
        blocked = self._snaptrade_blocked(is_admin)
        if entry is None:
            return self._unknown(institution, need_trading, blocked)

        preferred = entry.preferred_provider
        fallback = entry.fallback_provider
        if need_trading and preferred is Provider.PLAID:
            # Trading intent is a wish, not an order: it moves a Plaid institution to SnapTrade
            # only where SnapTrade has a brokerage for it that trades. Otherwise SnapTrade's
            # portal would open on whatever brokerage it lists first, under this name.
            if not self._snaptrade_trades(entry):
                return self._decide(
                    institution,
                    entry,
                    Provider.PLAID,
                    f"{entry.name} accounts can't place trades here; {entry.name} connects "
                    "through Plaid, read-only",
                    fallback=False,
                )
            if blocked:
                return self._decide(
                    institution,
                    entry,
                    Provider.PLAID,
                    f"{entry.name} connects through Plaid; trading would need SnapTrade, but "
                    f"{blocked}, so the connection will be read-only",
                    fallback=False,
                )
            assert entry.snaptrade_slug is not None  # _snaptrade_trades checked it
            why_not = self._brokerage_blocked(entry.snaptrade_slug)
            if why_not is not None:
                return self._decide(
                    institution,
                    entry,
                    Provider.PLAID,
                    f"{entry.name} connects through Plaid; trading would need SnapTrade, but "
                    f"{why_not}, so the connection will be read-only",
                    fallback=False,
                )
            reason = f"{entry.name} is read through Plaid, but trading needs SnapTrade"
            return self._decide(institution, entry, Provider.SNAPTRADE, reason, fallback=True)
        if preferred is Provider.SNAPTRADE:
            assert entry.snaptrade_slug is not None  # the coverage validator guarantees it
            why_not = blocked or self._brokerage_blocked(entry.snaptrade_slug)
            if why_not is None:
                reason = f"{entry.name} connects through SnapTrade (coverage map)"
                if need_trading and not self._snaptrade_trades(entry):
                    reason += "; trading is not available for this institution"
                return self._decide(institution, entry, Provider.SNAPTRADE, reason, fallback=False)
            if fallback is None:
                raise NoProviderAvailable(f"{entry.name}: {why_not}, and it has no fallback")
            return self._decide(
                institution,
                entry,
                fallback,
                f"{why_not}; {entry.name} opens through {fallback.value.capitalize()} instead"
                + (" (read-only: trading is not possible there)" if need_trading else ""),
                fallback=True,
            )
        return self._decide(
            institution,
            entry,
            Provider.PLAID,
            f"{entry.name} connects through Plaid (coverage map)",
            fallback=False,
        )

    def _unknown(self, query: str, need_trading: bool, blocked: str | None) -> RoutingDecision:
        key = normalize_name(query)
        brokerage = next(
            (
                b
                for b in self.reference.snaptrade_brokerages.values()
                if key in (normalize_name(b.slug), normalize_name(b.name))
                and b.unavailable_reason is None
            ),
            None,
        )
        plaid_id = next(
            (
                i
                for i, name in self.reference.plaid_institutions.items()
                if normalize_name(name) == key
            ),
            None,
        )
        snaptrade_ok = brokerage is not None and blocked is None
        if snaptrade_ok and (need_trading or plaid_id is None):
            assert brokerage is not None
            trades = bool(brokerage.allows_trading)
            return RoutingDecision(
                query=query,
                provider=Provider.SNAPTRADE,
                reason=f"{brokerage.name} is not in the coverage map; SnapTrade lists it",
                provider_institution_id=brokerage.slug,
                connection_type="trade-if-available" if trades else "read",
                trading_possible=trades,
            )
        if plaid_id is not None:
            return RoutingDecision(
                query=query,
                provider=Provider.PLAID,
                reason=f"{query} is not in the coverage map; Plaid lists it",
                provider_institution_id=plaid_id,
            )
        # No SnapTrade brokerage is known for it: never SnapTrade's generic portal, whose
        # first brokerage would be stored under this name. Plaid's own search finds it.
        reason = f"{query} is unknown; Plaid is the default"
        if need_trading:
            why = blocked or f"SnapTrade lists no brokerage called {query}"
            reason = f"{query} accounts can't place trades here ({why}); Plaid opens it read-only"
        return RoutingDecision(query=query, provider=Provider.PLAID, reason=reason)


def provider_for_account(stored: str | Provider | None) -> Provider:
    """Run-time routing: the provider on the account's record, always; anything else is an error."""
    if isinstance(stored, Provider):
        return stored
    try:
        return Provider(stored or "")
    except ValueError:
        raise UnknownProvider(
            f"the account's stored provider {stored!r} is not a known provider; "
            "refusing to guess or fail over"
        ) from None
