"""The trading gate: an order goes out only from an account whose stored capabilities allow it.

The check runs before any provider call, on what is stored (capabilities derived at import), so a
Plaid account, a manual account or a read-only institution never reaches a provider's order API.
"""

from __future__ import annotations

from brokerlink.domain.enums import Provider
from brokerlink.domain.models import Capabilities
from brokerlink.errors import BrokerlinkError
from brokerlink.policies.capabilities import TradingBlock

__all__ = ["TradingRefused", "check_trading_allowed"]


class TradingRefused(BrokerlinkError):
    """An order refused by the gate; nothing was sent to any provider."""

    status_code = 403
    code = "trading_not_allowed"

    def __init__(self, message: str, *, account: str, provider: Provider, reason: str) -> None:
        super().__init__(message)
        self.account = account
        self.provider = provider
        self.reason = reason


def check_trading_allowed(
    *,
    account_label: str,
    provider: Provider,
    capabilities: Capabilities,
    institution: str | None = None,
) -> None:
    """Raise `TradingRefused` naming the account, the provider and why, unless it may trade.

    The reason says what stands in the way, from the block stored with the capabilities: the
    provider, the institution (read-only here), or a link made without trade access (which a
    reconnect with trading fixes).
    """
    name = institution or "this institution"
    if provider is not Provider.SNAPTRADE:
        reason = (
            "entered by hand, so there is no broker to send orders to"
            if provider is Provider.MANUAL
            else f"it is linked through {provider.label}, which reads accounts but cannot "
            "place orders"
        )
    elif capabilities.trading:
        return
    else:
        reason = _why_not(capabilities.trading_block, name)
    raise TradingRefused(
        f"Order refused for account {account_label} ({provider.value}): {reason}.",
        account=account_label,
        provider=provider,
        reason=reason,
    )


def _why_not(block: str | None, name: str) -> str:
    match block:
        case TradingBlock.INSTITUTION_READ_ONLY | TradingBlock.NOT_COVERED:
            return f"{name} is read-only here: brokerlink shows its accounts but places no trades"
        case TradingBlock.READ_ACCESS:
            return (
                f"{name} was linked without trade access: reconnect it and choose "
                '"I want to place trades"'
            )
        case TradingBlock.BROKERAGE:
            return f"SnapTrade does not offer trading at {name}"
        case _:
            # Linked before the block was recorded: both causes are possible.
            return (
                f"{name} is read-only here, or was linked without trade access "
                "(reconnect it with trading to place orders)"
            )
