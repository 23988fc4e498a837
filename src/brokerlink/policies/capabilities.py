"""What an account can do, derived once at import and stored on the account.

    trading  = provider is SnapTrade
               AND the coverage entry allows trading
               AND SnapTrade's brokerage allows trading
               AND the connection was made with trade access
    realtime = provider is SnapTrade AND the SnapTrade plan is a real-time plan

Plaid and manual accounts never trade. On a daily plan SnapTrade data refreshes about once a day,
so it is never labelled real-time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from brokerlink.domain.enums import ConnectionAccess, Provider
from brokerlink.domain.models import Capabilities
from brokerlink.routing.coverage import CoverageEntry

__all__ = ["CapabilityDecision", "TradingBlock", "connection_type_for", "derive_capabilities"]


class TradingBlock(StrEnum):
    """Why an account cannot trade, stored with its capabilities (the gate words it)."""

    PROVIDER = "provider"  # not a SnapTrade account
    NOT_COVERED = "not_covered"  # the institution is not in the coverage map
    INSTITUTION_READ_ONLY = "institution_read_only"  # the coverage map allows no trading there
    BROKERAGE = "brokerage"  # SnapTrade's brokerage did not allow (or confirm) trading
    READ_ACCESS = "read_access"  # linked without trade access: reconnecting with trading helps


DataPlan = Literal["daily", "realtime"]
PortalConnectionType = Literal["read", "trade-if-available"]


@dataclass(frozen=True)
class CapabilityDecision:
    """The flags and, for each, the reason a user or operator is shown."""

    capabilities: Capabilities
    trading_reason: str
    realtime_reason: str


def connection_type_for(entry: CoverageEntry | None) -> PortalConnectionType:
    """What the SnapTrade portal asks for: trade access only where the map allows trading."""
    return "trade-if-available" if entry is not None and entry.allow_trading else "read"


def _trading(
    provider: Provider,
    entry: CoverageEntry | None,
    brokerage_allows_trading: bool | None,
    access: ConnectionAccess,
) -> tuple[TradingBlock | None, str]:
    if provider is not Provider.SNAPTRADE:
        return TradingBlock.PROVIDER, (
            f"{provider.value} accounts are read-only: only SnapTrade places orders"
        )
    name = entry.name if entry is not None else "this institution"
    if entry is None:
        return TradingBlock.NOT_COVERED, (
            "the institution is not in the coverage map, so trading is not enabled"
        )
    if not entry.allow_trading:
        return TradingBlock.INSTITUTION_READ_ONLY, f"{name} is read-only in the coverage map"
    if access is not ConnectionAccess.TRADE:
        return TradingBlock.READ_ACCESS, (
            f"the {name} connection was authorised for read access only"
        )
    if brokerage_allows_trading is not True:
        why = "does not allow" if brokerage_allows_trading is False else "did not confirm"
        return TradingBlock.BROKERAGE, f"SnapTrade {why} trading at {name}"
    return None, f"{name} through SnapTrade with trade access"


def derive_capabilities(
    *,
    provider: Provider,
    entry: CoverageEntry | None,
    brokerage_allows_trading: bool | None,
    access: ConnectionAccess,
    plan: DataPlan,
) -> CapabilityDecision:
    block, trading_reason = _trading(provider, entry, brokerage_allows_trading, access)
    trading = block is None
    if provider is not Provider.SNAPTRADE:
        realtime, realtime_reason = False, f"{provider.value} data is refreshed, not streamed"
    elif plan == "realtime":
        realtime, realtime_reason = True, "SnapTrade real-time plan"
    else:
        realtime, realtime_reason = False, "SnapTrade daily plan: data refreshes about once a day"
    return CapabilityDecision(
        capabilities=Capabilities(
            trading=trading,
            realtime=realtime,
            trading_block=None if block is None else block.value,
        ),
        trading_reason=trading_reason,
        realtime_reason=realtime_reason,
    )
