"""The contracts every provider adapter implements.

Connectors take the application's own user id; each adapter finds that user's provider
credentials itself (through the store it was built with). Every method either returns data or
raises a `domain.errors.ProviderError`: an empty list always means "there is nothing", never
"could not fetch".
"""

from datetime import datetime
from typing import Protocol, runtime_checkable

from .enums import Provider
from .models import (
    AccountSummary,
    Balance,
    Connection,
    Order,
    OrderPreview,
    OrderRequest,
    Position,
    RefreshResult,
)

__all__ = ["InvestmentsConnector", "SyncReads", "TradingConnector"]


@runtime_checkable
class InvestmentsConnector(Protocol):
    """Read access to a user's accounts through one provider."""

    @property
    def provider(self) -> Provider: ...

    async def list_connections(self, user_id: str) -> list[Connection]: ...

    async def list_accounts(self, user_id: str) -> list[AccountSummary]: ...

    async def get_holdings(self, user_id: str, account_id: str) -> list[Position]:
        """Securities and cash positions (cash as `CUR:<ISO>` positions) of one account."""
        ...

    async def get_balances(self, user_id: str, account_id: str) -> list[Balance]: ...

    async def refresh(self, user_id: str, connection_id: str) -> RefreshResult:
        """Ask the provider to re-pull the institution's data. May be billed by the provider."""
        ...


@runtime_checkable
class SyncReads(Protocol):
    """Optional: reads a sync makes in fewer provider calls than the general-purpose ones.

    `list_accounts_for_sync` answers what `list_accounts` does, except what only linking needs
    (the accounts' capabilities, left at their defaults): a sync keeps each stored account's
    own. `holdings_unchanged` says whether the holdings a listed account has now are the ones
    stored (dated `stored_as_of`), so that reading them again would return the same answer.
    The sync engine uses both where a connector has them.
    """

    async def list_accounts_for_sync(self, user_id: str) -> list[AccountSummary]: ...

    def holdings_unchanged(self, row: AccountSummary, stored_as_of: datetime | None) -> bool: ...


@runtime_checkable
class TradingConnector(Protocol):
    """Order entry through one provider. Placing is never retried automatically."""

    @property
    def provider(self) -> Provider: ...

    async def preview_order(self, user_id: str, request: OrderRequest) -> OrderPreview: ...

    async def place_order(self, user_id: str, request: OrderRequest) -> Order: ...

    async def place_previewed_order(self, user_id: str, preview: OrderPreview) -> Order: ...

    async def get_order(self, user_id: str, account_id: str, order_id: str) -> Order: ...

    async def list_orders(self, user_id: str, account_id: str) -> list[Order]: ...

    async def cancel_order(self, user_id: str, account_id: str, order_id: str) -> Order: ...
