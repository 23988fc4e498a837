"""SnapTrade behind the neutral `InvestmentsConnector` and `TradingConnector` contracts.

One SnapTrade user per application user, reused for every institution; `users.SnapTradeUsers`
keeps its secret (rotated on a 1083, recovered when a rotation's answer is lost) and every call
here runs as that user through it. A user whose SnapTrade user had to be replaced sees
`SnapTradeUserReplaced` once; their connections are then re-linked through `connection_link`
onto the stored connections. Deleting a user (which loses their connections) is never automatic.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal, TypeVar, cast

from brokerlink.domain.connectors import InvestmentsConnector, SyncReads, TradingConnector
from brokerlink.domain.enums import OrderStatus, Provider
from brokerlink.domain.models import (
    AccountSummary,
    Balance,
    Capabilities,
    Connection,
    Order,
    OrderPreview,
    OrderRequest,
    Position,
    RefreshResult,
)
from brokerlink.errors import ValidationError
from brokerlink.log import get_logger
from brokerlink.providers.snaptrade import normalize, wire
from brokerlink.providers.snaptrade.client import PortalLink, SnapTradeClient
from brokerlink.providers.snaptrade.errors import (
    SnapTradeAuthError,
    SnapTradeError,
    SnapTradeMalformedResponse,
    SnapTradeNotFound,
)
from brokerlink.providers.snaptrade.users import (
    USER_RECORD,
    Credentials,
    SnapTradeUserReplaced,
    SnapTradeUsers,
)
from brokerlink.secrets.store import SecretNotFound, SecretStore, snaptrade_user_secret_name

__all__ = ["USER_RECORD", "SnapTradeConnector"]

T = TypeVar("T")

_log = get_logger("brokerlink.providers.snaptrade")


class SnapTradeConnector:
    """Domain-typed access to one application's SnapTrade users.

    `institution_lookup` maps a SnapTrade brokerage slug (`SCHWAB`) to the application's
    institution slug; by default the slug is lower-cased. `plan` is the app's SnapTrade data
    plan; only on the Daily plan does a sync skip reading holdings SnapTrade has not re-synced
    (unknown, None, is treated as real-time: always read).
    """

    def __init__(
        self,
        client: SnapTradeClient,
        secrets: SecretStore,
        *,
        institution_lookup: Callable[[str], str | None] | None = None,
        plan: Literal["daily", "realtime"] | None = None,
    ) -> None:
        self.client = client
        self.secrets = secrets
        self.users = SnapTradeUsers(client, secrets)
        self._institution_lookup = institution_lookup
        self.plan = plan

    @property
    def provider(self) -> Provider:
        return Provider.SNAPTRADE

    @property
    def rotations(self) -> int:
        return self.users.rotations

    # -- users and their secrets ------------------------------------------------------------

    def _institution_slug(self, brokerage_slug: str) -> str:
        found = self._institution_lookup(brokerage_slug) if self._institution_lookup else None
        return found or brokerage_slug.lower()

    async def _credentials(self, user_id: str) -> Credentials:
        return await self.users.credentials(user_id)

    async def register_user(self, user_id: str) -> str:
        """Register `user_id` with SnapTrade once; later calls reuse it. Returns SnapTrade's id."""
        return await self.users.register(user_id)

    async def _as_user(self, user_id: str, call: Callable[[str, str], Awaitable[T]]) -> T:
        return await self.users.as_user(user_id, call)

    async def knows_authorization(self, user_id: str, authorization_id: str) -> bool:
        """Whether the user's current SnapTrade user still has this authorization (it does
        not once the SnapTrade user was replaced, or the connection was deleted upstream)."""
        try:
            await self._as_user(
                user_id, lambda uid, s: self.client.get_authorization(uid, s, authorization_id)
            )
        except (SnapTradeNotFound, SnapTradeUserReplaced):
            return False
        return True

    # -- connections ------------------------------------------------------------------------

    async def connection_link(
        self,
        user_id: str,
        *,
        broker: str | None = None,
        connection_type: wire.ConnectionType = "read",
        custom_redirect: str | None = None,
        reconnect: str | None = None,
        immediate_redirect: bool | None = None,
    ) -> str:
        """The connection-portal URL for the user (registering them first if needed)."""
        await self.register_user(user_id)

        def login(uid: str, secret: str) -> Awaitable[PortalLink]:
            return self.client.login(
                uid,
                secret,
                broker=broker,
                immediate_redirect=immediate_redirect,
                custom_redirect=custom_redirect,
                reconnect=reconnect,
                connection_type=connection_type,
            )

        try:
            link = await self._as_user(user_id, login)
        except SnapTradeUserReplaced:
            if reconnect is not None:
                raise  # the connection to fix belonged to the replaced user
            # A new link works at once with the new SnapTrade user.
            link = await self._as_user(user_id, login)
        return link.redirect_uri

    async def record_connection(
        self, user_id: str, institution_slug: str, authorization_id: str
    ) -> Connection:
        """Check the authorization exists and store the per-institution secret record."""
        raw = await self._as_user(
            user_id, lambda uid, s: self.client.get_authorization(uid, s, authorization_id)
        )
        connection = normalize.from_snaptrade_authorization(
            raw, operation="Connections_detailBrokerageAuthorization"
        )
        creds = await self._credentials(user_id)
        await self.secrets.put(
            snaptrade_user_secret_name(user_id, institution_slug),
            self.users.record(user_id, institution_slug, creds, authorization_id=authorization_id),
        )
        return connection

    async def remove(self, user_id: str, connection_id: str) -> None:
        """Delete the authorization at SnapTrade (ends its billing), then forget its record.
        An authorization SnapTrade no longer knows is simply forgotten."""
        try:
            await self._as_user(
                user_id, lambda uid, s: self.client.delete_authorization(uid, s, connection_id)
            )
        except SnapTradeNotFound:
            _log.info("snaptrade.authorization.already_gone", authorization_id=connection_id)
        user_record = snaptrade_user_secret_name(user_id, USER_RECORD)
        for name in await self.secrets.list(self.users.prefix(user_id)):
            if name == user_record:
                continue
            try:
                record = await self.secrets.get(name)
            except SecretNotFound:
                continue
            if record.get("authorization_id") == connection_id:
                await self.secrets.delete(name)

    async def _registered(self, user_id: str) -> bool:
        return await self.users.registered(user_id)

    async def list_connections(self, user_id: str) -> list[Connection]:
        if not await self._registered(user_id):
            return []
        raw = await self._as_user(user_id, self.client.list_authorizations)
        connections = []
        for i, item in enumerate(raw):
            c = normalize.from_snaptrade_authorization(item, field=f"[{i}]")
            if c.institution_slug is not None:
                c = c.model_copy(
                    update={"institution_slug": self._institution_slug(c.institution_slug)}
                )
            connections.append(c)
        return connections

    async def refresh(self, user_id: str, connection_id: str) -> RefreshResult:
        """Ask SnapTrade to re-sync a connection. Billed per call by SnapTrade."""
        raw = await self._as_user(
            user_id, lambda uid, s: self.client.refresh_authorization(uid, s, connection_id)
        )
        detail = raw.get("detail")
        return RefreshResult(
            provider=Provider.SNAPTRADE,
            connection_id=connection_id,
            accepted=True,
            detail=detail if isinstance(detail, str) else None,
        )

    # -- accounts and holdings --------------------------------------------------------------

    async def list_accounts_for_sync(self, user_id: str) -> list[AccountSummary]:
        """The user's accounts in one call (`GET /accounts`), without their capabilities.

        Capabilities need the authorizations as well; a sync never reads them (a stored
        account keeps its own), so it saves that call on every user.
        """
        if not await self._registered(user_id):
            return []
        accounts = await self._as_user(user_id, self.client.list_accounts)
        return [
            normalize.from_snaptrade_account(raw, field=f"[{i}]") for i, raw in enumerate(accounts)
        ]

    def holdings_unchanged(self, row: AccountSummary, stored_as_of: datetime | None) -> bool:
        """On the Daily plan, positions, balances and orders are SnapTrade's cached copy, which
        changes only when SnapTrade syncs the brokerage (at link, daily, on a manual refresh:
        the spec's `HoldingsStatus`), and the accounts listing dates that sync
        (`sync_status.holdings.last_successful_sync`). Holdings stored as of that sync or later
        are what reading them again would return. On a real-time plan they are read live."""
        return (
            self.plan == "daily"
            and row.holdings_as_of is not None
            and stored_as_of is not None
            and row.holdings_as_of <= stored_as_of
        )

    async def list_accounts(self, user_id: str) -> list[AccountSummary]:
        if not await self._registered(user_id):
            return []
        accounts, authorizations = await asyncio.gather(
            self._as_user(user_id, self.client.list_accounts),
            self._as_user(user_id, self.client.list_authorizations),
        )
        capabilities: dict[str, Capabilities] = {}
        for auth in authorizations:
            if not isinstance(auth, dict) or not isinstance(auth.get("id"), str):
                continue
            brokerage = auth.get("brokerage")
            if isinstance(brokerage, dict):
                capabilities[auth["id"]] = Capabilities(
                    trading=auth.get("type") == "trade"
                    and brokerage.get("allows_trading") is True
                    and auth.get("disabled") is not True,
                    realtime=auth.get("data_freshness_mode") == "realtime",
                )
        result = []
        for i, raw in enumerate(accounts):
            conn = raw.get("brokerage_authorization") if isinstance(raw, dict) else None
            result.append(
                normalize.from_snaptrade_account(
                    raw,
                    capabilities=capabilities.get(conn) if isinstance(conn, str) else None,
                    field=f"[{i}]",
                )
            )
        return result

    async def get_balances(self, user_id: str, account_id: str) -> list[Balance]:
        raw = await self._as_user(
            user_id, lambda uid, s: self.client.get_balances(uid, s, account_id)
        )
        return normalize.from_snaptrade_balances(account_id, raw, as_of=datetime.now(UTC))

    async def get_holdings(self, user_id: str, account_id: str) -> list[Position]:
        """Securities from positions/all plus one `CUR:<ISO>` position per cash currency."""
        raw_positions, balances = await asyncio.gather(
            self._as_user(user_id, lambda uid, s: self.client.get_positions(uid, s, account_id)),
            self.get_balances(user_id, account_id),
        )
        default_currency = balances[0].currency if balances else None
        positions = normalize.from_snaptrade_positions(
            account_id, raw_positions, default_currency=default_currency
        )
        as_of = positions[0].as_of if positions else None
        cash = [b.model_copy(update={"as_of": as_of or b.as_of}) for b in balances]
        return positions + normalize.cash_positions(cash)

    # -- trading ----------------------------------------------------------------------------

    async def _resolve_symbol(self, user_id: str, request: OrderRequest) -> OrderRequest:
        """SnapTrade checks orders by universal symbol id: find it for a ticker."""
        if request.instrument_id or not request.symbol:
            return request
        wanted = request.symbol.strip().upper()
        found = await self._as_user(
            user_id,
            lambda uid, s: self.client.search_account_symbols(uid, s, request.account_id, wanted),
        )
        for item in found:
            if str(item.get("symbol", "")).upper() == wanted and item.get("id"):
                return request.model_copy(update={"instrument_id": item["id"]})
        raise ValidationError(
            f"{wanted} is not a symbol this account's brokerage trades", field="symbol"
        )

    async def preview_order(self, user_id: str, request: OrderRequest) -> OrderPreview:
        """Order impact (SnapTrade's checked order): what placing would do, and its trade id."""
        request = await self._resolve_symbol(user_id, request)
        form = normalize.to_snaptrade_impact_form(request)
        raw = await self._as_user(
            user_id,
            lambda uid, s: self.client.order_impact(uid, s, cast(wire.TradeImpactForm, form)),
        )
        return normalize.from_snaptrade_impact(request.account_id, raw)

    async def place_order(self, user_id: str, request: OrderRequest) -> Order:
        """Place once. A 1083 means SnapTrade refused before placing, so a rotated retry is safe."""
        client_order_id = request.client_order_id or str(uuid.uuid4())
        form = normalize.to_snaptrade_trade_form(
            request.model_copy(update={"client_order_id": client_order_id})
        )
        raw = await self._as_user(
            user_id,
            lambda uid, s: self.client.place_order(uid, s, cast(wire.ManualTradeForm, form)),
        )
        return normalize.from_snaptrade_order(
            request.account_id,
            raw,
            operation="Trading_placeForceOrder",
            client_order_id=client_order_id,
        )

    async def place_previewed_order(self, user_id: str, preview: OrderPreview) -> Order:
        raw = await self._as_user(
            user_id, lambda uid, s: self.client.place_checked_order(uid, s, preview.preview_id)
        )
        return normalize.from_snaptrade_order(
            preview.account_id, raw, operation="Trading_placeOrder"
        )

    async def get_order(self, user_id: str, account_id: str, order_id: str) -> Order:
        raw = await self._as_user(
            user_id, lambda uid, s: self.client.get_order(uid, s, account_id, order_id)
        )
        return normalize.from_snaptrade_order(
            account_id, raw, operation="AccountInformation_getUserAccountOrderDetail"
        )

    async def list_orders(self, user_id: str, account_id: str) -> list[Order]:
        raw = await self._as_user(
            user_id, lambda uid, s: self.client.list_orders(uid, s, account_id, state="all")
        )
        return [
            normalize.from_snaptrade_order(account_id, item, field=f"[{i}]")
            for i, item in enumerate(raw)
        ]

    async def cancel_order(self, user_id: str, account_id: str, order_id: str) -> Order:
        """Ask for cancellation, then read the order back for its status."""
        answer = await self._as_user(
            user_id, lambda uid, s: self.client.cancel_order(uid, s, account_id, order_id)
        )
        if answer.get("brokerage_order_id") not in (None, order_id):
            raise SnapTradeMalformedResponse(
                "cancel answered for another order",
                operation="Trading_cancelOrder",
                field="brokerage_order_id",
            )
        try:
            return await self.get_order(user_id, account_id, order_id)
        except SnapTradeError as exc:
            if isinstance(exc, SnapTradeAuthError):
                raise
            # The cancel was accepted; only the read-back failed, so report it as pending.
            return Order(
                provider=Provider.SNAPTRADE,
                account_id=account_id,
                order_id=order_id,
                status=OrderStatus.CANCEL_PENDING,
            )


if TYPE_CHECKING:
    # mypy proves the connector satisfies the neutral contracts, signature for signature.
    def _conforms(
        c: SnapTradeConnector,
    ) -> tuple[InvestmentsConnector, TradingConnector, SyncReads]:
        return c, c, c
