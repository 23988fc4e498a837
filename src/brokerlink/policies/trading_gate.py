"""The trading gate: an order goes out only from an account whose stored capabilities allow it.

The check runs before any provider call, on what is stored (capabilities derived at import), so a
Plaid account, a manual account or a read-only institution never reaches a provider's order API.
"""

from __future__ import annotations

from brokerlink.domain.enums import Provider
from brokerlink.domain.models import Capabilities
from brokerlink.errors import BrokerlinkError

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
    *, account_label: str, provider: Provider, capabilities: Capabilities
) -> None:
    """Raise `TradingRefused` naming the account, the provider and why, unless it may trade."""
    if provider is not Provider.SNAPTRADE:
        reason = f"{provider.value} accounts cannot place orders"
    elif not capabilities.trading:
        reason = "the account's capabilities do not include trading"
    else:
        return
    raise TradingRefused(
        f"Order refused for account {account_label} ({provider.value}): {reason}.",
        account=account_label,
        provider=provider,
        reason=reason,
    )
