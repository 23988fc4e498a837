"""Linking institutions and refreshing connections: the link-time router, the providers' own
connection flows, capabilities derived at import, and the cost guard on every refresh.

    start(user, institution)          → which provider opens and why, and the URL to open
    complete_snaptrade / complete_plaid → the connection and its accounts stored, capabilities set

Provider calls are made inside `providers.observe.call_context` with the user and the
institution as far as it is known then (the coverage map's slug at the start, the provider's
answer once it has named it, the stored connection's afterwards): the call log carries them.

Services flush and never commit; the caller (a request, a CLI command) owns the transaction.
Refreshes, which are billed, own their transactions instead: `connections.refresh`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.connections.relink import move_onto
from brokerlink.connections.same_login import find_same_login, reported_institution
from brokerlink.domain.enums import ConnectionAccess, Provider
from brokerlink.domain.errors import ProviderError
from brokerlink.domain.models import AccountSummary
from brokerlink.domain.models import Connection as ProviderConnection
from brokerlink.errors import BrokerlinkError, NotFoundError, ValidationError
from brokerlink.models import Account, Connection, ConnectionStatus
from brokerlink.policies.capabilities import derive_capabilities
from brokerlink.policies.cost_guard import CostGuard, CostPolicy
from brokerlink.providers.observe import call_context
from brokerlink.providers.plaid import PlaidConnector, products_for
from brokerlink.providers.plaid.linking import link_not_opened
from brokerlink.providers.snaptrade import SnapTradeConnector
from brokerlink.repositories import AccountRepository, ConnectionRepository
from brokerlink.routing.coverage import CoverageEntry
from brokerlink.routing.reference import ReferenceSource
from brokerlink.routing.router import LinkRouter, RoutingDecision, provider_for_account

__all__ = ["LinkNotFinished", "LinkResult", "LinkService", "LinkStart", "ProviderNotConfigured"]

log = structlog.get_logger("brokerlink.connections")

DataPlan = Literal["daily", "realtime"]


class ProviderNotConfigured(BrokerlinkError):
    status_code = 503
    code = "provider_not_configured"


class LinkNotFinished(BrokerlinkError):
    """The provider's flow ended without a connection (left, cancelled or failed there)."""

    status_code = 409
    code = "link_not_finished"


@dataclass
class LinkStart:
    """Where the user goes next: the provider's flow, and the reason it was chosen."""

    decision: RoutingDecision
    url: str
    link_token: str | None = None  # Plaid: read the Hosted Link result with it
    # What keeping this connection adds to the monthly bill (USD), shown before linking.
    monthly_cost: Decimal = Decimal(0)

    @property
    def provider(self) -> Provider:
        return self.decision.provider


@dataclass
class LinkResult:
    connection: Connection
    accounts: list[Account]
    reasons: dict[str, str] = field(default_factory=dict)  # account id → trading reason
    # The user's monthly cost of keeping all their connections of this provider, after linking.
    monthly_cost: Decimal = Decimal(0)


class LinkService:
    def __init__(
        self,
        session: AsyncSession,
        *,
        router: LinkRouter,
        snaptrade: SnapTradeConnector | None = None,
        plaid: PlaidConnector | None = None,
        plan: DataPlan = "daily",
        guard: CostGuard | None = None,
        reference: ReferenceSource | None = None,
    ) -> None:
        self.session = session
        self.router = router
        self.reference = reference
        self.snaptrade = snaptrade
        self.plaid = plaid
        self.plan = plan
        self.guard = guard
        self.connections = ConnectionRepository.from_session(session)
        self.accounts = AccountRepository.from_session(session)

    def _snaptrade(self) -> SnapTradeConnector:
        if self.snaptrade is None:
            raise ProviderNotConfigured("SnapTrade is not configured")
        return self.snaptrade

    def _plaid(self) -> PlaidConnector:
        if self.plaid is None:
            raise ProviderNotConfigured("Plaid is not configured")
        return self.plaid

    def _entry(self, institution: str) -> CoverageEntry | None:
        return self.router.coverage.match(institution)

    async def _before_network(self) -> None:
        """End the reads made so far before a provider call: no transaction stays open across
        the network (on SQLite an open write transaction holds the database's write lock for
        as long as the provider takes). What follows the call starts a new one."""
        if self.session.in_transaction():
            await self.session.commit()

    # -- link ------------------------------------------------------------------------------

    async def start(
        self,
        user_id: int,
        institution: str | None,
        *,
        need_trading: bool = False,
        is_admin: bool = False,
        redirect_uri: str | None = None,
    ) -> LinkStart:
        """Choose the provider (logged and shown with its reason) and open its flow. With no
        `institution`, Plaid's own search opens (the user picks the institution there)."""
        router = self.router
        if institution is None:
            decision = RoutingDecision(
                query="",
                provider=Provider.PLAID,
                reason="Plaid's own search: choose your institution in the window that opens "
                "(read-only)",
            )
        else:
            if self.reference is not None:
                known = router.coverage.match(institution) is not None
                router = LinkRouter(
                    router.coverage,
                    router.flags,
                    await self.reference.for_query(institution, known=known),
                )
            decision = router.choose_provider(institution, need_trading, is_admin=is_admin)
        log.info(
            "connections.link.routed",
            user_id=user_id,
            institution=institution,
            provider=decision.provider.value,
            reason=decision.reason,
            fallback=decision.fallback_used,
        )
        monthly = await self._added_monthly_cost(user_id, decision.provider)
        await self._before_network()
        with call_context(institution=decision.institution_slug, user_id=user_id):
            if decision.provider is Provider.SNAPTRADE:
                url = await self._snaptrade().connection_link(
                    str(user_id),
                    broker=decision.provider_institution_id,
                    connection_type="trade-if-available"
                    if decision.connection_type == "trade-if-available"
                    else "read",
                    custom_redirect=redirect_uri,
                )
                return LinkStart(decision, url, monthly_cost=monthly)
            if decision.provider is Provider.PLAID:
                entry = decision.entry
                try:
                    token, hosted = await self._plaid().create_link(
                        str(user_id),
                        institution_id=decision.provider_institution_id,
                        completion_redirect_uri=redirect_uri,
                        # What the institution's kind needs: a bank is asked for no investments.
                        products=products_for(entry.type if entry is not None else None),
                    )
                except ProviderError as error:
                    log.warning("connections.link.not_opened", provider="plaid", error=str(error))
                    plain = link_not_opened(
                        error, entry.name if entry else (institution or "the institution")
                    )
                    if plain is error:
                        raise
                    raise plain from error
                if hosted is None:
                    raise BrokerlinkError("Plaid returned no Hosted Link URL")
                return LinkStart(decision, hosted, link_token=token, monthly_cost=monthly)
            raise ValidationError(f"{decision.provider.value} has no connection flow")

    async def complete_snaptrade(
        self,
        user_id: int,
        *,
        authorization_id: str,
        institution: str,
        onto: Connection | None = None,
    ) -> LinkResult:
        """After the portal redirected with `connection_id`: store it and its accounts.
        With `onto`, the new authorization replaces that stored connection's (a re-link)."""
        connector = self._snaptrade()
        entry = self._entry(institution)
        slug = entry.slug if entry is not None else institution
        with call_context(institution=slug, user_id=user_id):
            connection = await connector.record_connection(str(user_id), slug, authorization_id)
        # SnapTrade has named the brokerage it linked: the slug it is stored under.
        _, reported = reported_institution(self.router.coverage, Provider.SNAPTRADE, connection)
        with call_context(institution=reported, user_id=user_id):
            accounts = [
                a
                for a in await connector.list_accounts(str(user_id))
                if a.connection_id == authorization_id
            ]
        if onto is not None:
            wanted = entry.snaptrade_slug if entry is not None else None
            found = connection.institution_slug
            if wanted and found and wanted.upper() != found.upper():
                raise ValidationError(
                    f"the new connection is to {connection.institution_name}, "
                    f"not {onto.institution_name}",
                    field="connection_id",
                )
            await move_onto(self.session, onto, authorization_id, accounts)
        return await self._store(user_id, Provider.SNAPTRADE, connection, accounts)

    async def complete_plaid(
        self,
        user_id: int,
        *,
        institution: str,
        public_token: str | None = None,
        link_token: str | None = None,
    ) -> LinkResult:
        """After Plaid Link: exchange the public token (or read the Hosted Link session)."""
        connector = self._plaid()
        entry = self._entry(institution) if institution else None
        # Plaid's own search: the institution is the one Plaid reports (named from its answer).
        slug = entry.slug if entry is not None else None
        with call_context(institution=slug, user_id=user_id):
            if public_token is not None:
                connection = await connector.complete_link(
                    str(user_id), public_token, slug or institution or "institution"
                )
            elif link_token is not None:
                made = await connector.complete_hosted_link(str(user_id), link_token, slug)
                if not made:
                    raise LinkNotFinished(
                        "nothing was connected: Plaid's window was left before an account was "
                        "linked"
                    )
                connection = made[0]
            else:
                raise ValidationError(
                    "a public_token or a link_token is required", field="public_token"
                )
        # Plaid has named the Item's institution: the slug it is stored under.
        _, reported = reported_institution(self.router.coverage, Provider.PLAID, connection)
        with call_context(institution=reported, user_id=user_id):
            # The new Item's own accounts (its one token read): not yet a stored connection.
            accounts = await connector.accounts_of_item(str(user_id), connection.connection_id)
        return await self._store(user_id, Provider.PLAID, connection, accounts)

    async def _store(
        self,
        user_id: int,
        provider: Provider,
        link: ProviderConnection,
        accounts: list[AccountSummary],
    ) -> LinkResult:
        # The institution is the provider's answer, never the card that was clicked.
        entry, slug = reported_institution(self.router.coverage, provider, link)
        replaced: str | None = None
        if await self.connections.get_by_provider_id(provider, link.connection_id) is None:
            twin = await find_same_login(self.session, user_id, provider, slug, link, accounts)
            if twin is not None:
                # The same login again: the stored connection takes the fresh upstream link
                # (its accounts, history and preferences stay); the old link is retired below.
                replaced = twin.provider_connection_id
                await move_onto(self.session, twin, link.connection_id, accounts)
        connection = await self.connections.upsert(
            user_id=user_id,
            provider=provider,
            provider_connection_id=link.connection_id,
            institution_name=entry.name if entry is not None else link.institution_name,
            institution_slug=slug,
            provider_institution_id=link.institution_id,
        )
        # A completed link or re-link is working now, whatever a sync had marked before.
        connection.status = ConnectionStatus.ACTIVE
        connection.status_reason = None
        stored: list[Account] = []
        reasons: dict[str, str] = {}
        for summary in accounts:
            decision = derive_capabilities(
                provider=provider,
                entry=entry,
                # The adapter's own flag already requires the brokerage and a trade-access link.
                brokerage_allows_trading=summary.capabilities.trading,
                access=link.access if provider is Provider.SNAPTRADE else ConnectionAccess.READ,
                plan=self.plan,
            )
            account = await self.accounts.upsert(
                connection,
                provider_account_id=summary.account_id,
                name=summary.name,
                type=summary.type,
                currency=summary.currency,
                number_mask=summary.number_mask,
                capabilities=decision.capabilities,
            )
            reasons[summary.account_id] = decision.trading_reason
            stored.append(account)
        if replaced is not None:
            with call_context(institution=slug, user_id=user_id):
                await self._retire(user_id, provider, replaced, kept=connection.id)
        return LinkResult(
            connection, stored, reasons, monthly_cost=await self._monthly_cost(user_id, provider)
        )

    async def _retire(self, user_id: int, provider: Provider, upstream: str, *, kept: int) -> None:
        """Remove a replaced upstream link at the provider (it would be billed for nothing),
        after committing the stored connection's move, with no transaction open. A failure is
        logged: the connector keeps the old link's record, so it can still be removed."""
        await self._before_network()
        try:
            if provider is Provider.SNAPTRADE:
                await self._snaptrade().remove(str(user_id), upstream)
            elif provider is Provider.PLAID:
                await self._plaid().remove(str(user_id), upstream)
        except ProviderError as error:
            log.warning(
                "connections.same_login.retire_failed",
                connection_id=kept,
                upstream=upstream,
                error=str(error),
            )
            return
        log.info("connections.same_login.reused", connection_id=kept, retired=upstream)

    # -- what connections cost a month -----------------------------------------------------

    async def _live_connections(self, user_id: int, provider: Provider) -> int:
        return sum(
            1
            for c in await self.connections.list_for_user(user_id, provider=provider)
            if c.status is not ConnectionStatus.DISABLED
        )

    async def _monthly_cost(self, user_id: int, provider: Provider) -> Decimal:
        """The monthly cost of the user's current connections through `provider`."""
        policy = self.guard.policy if self.guard is not None else CostPolicy()
        count = await self._live_connections(user_id, provider)
        return policy.monthly_cost(provider, connections=count, first_for_user=count > 0)

    async def _added_monthly_cost(self, user_id: int, provider: Provider) -> Decimal:
        """What one more connection through `provider` adds to the user's monthly cost."""
        policy = self.guard.policy if self.guard is not None else CostPolicy()
        count = await self._live_connections(user_id, provider)
        return policy.monthly_cost(provider, connections=1, first_for_user=count == 0)

    # -- refresh ---------------------------------------------------------------------------

    async def _owned(self, user_id: int, connection_id: int) -> Connection:
        connection = await self.connections.get(connection_id)
        if connection is None or connection.user_id != user_id:
            raise NotFoundError(f"connection {connection_id} not found")
        return connection

    async def reconnect(
        self, user_id: int, connection_id: int, *, redirect_uri: str | None = None
    ) -> LinkStart:
        """Open the provider's own re-login flow for a broken connection, same upstream id:
        SnapTrade's portal with `reconnect`, Plaid Link in update mode."""
        connection = await self._owned(user_id, connection_id)
        provider = provider_for_account(connection.provider)
        institution = connection.institution_slug or connection.institution_name
        decision = RoutingDecision(
            query=connection.institution_name,
            provider=provider,
            reason=f"reconnects the existing {provider.value} connection (never a second one)",
            entry=self._entry(institution),
        )
        await self._before_network()
        with call_context(institution=connection.institution_slug, user_id=user_id):
            if provider is Provider.SNAPTRADE:
                snaptrade = self._snaptrade()
                if await snaptrade.knows_authorization(
                    str(user_id), connection.provider_connection_id
                ):
                    url = await snaptrade.connection_link(
                        str(user_id),
                        reconnect=connection.provider_connection_id,
                        custom_redirect=redirect_uri,
                    )
                    return LinkStart(decision, url)
                # SnapTrade no longer has this authorization for the user (their SnapTrade user was
                # replaced, or it was removed upstream): link the institution again; completing
                # maps the new authorization onto this connection, so its history stays.
                trading = any(
                    a.capabilities.trading
                    for a in await self.accounts.list_for_connection(connection.id)
                )
                url = await snaptrade.connection_link(
                    str(user_id),
                    broker=decision.entry.snaptrade_slug if decision.entry is not None else None,
                    connection_type="trade-if-available" if trading else "read",
                    custom_redirect=redirect_uri,
                )
                relink = replace(
                    decision,
                    reason=f"links {connection.institution_name} again through SnapTrade and keeps "
                    "this connection's accounts and history (SnapTrade no longer has the old link)",
                )
                return LinkStart(relink, url)
            if provider is Provider.PLAID:
                token, hosted = await self._plaid().create_link(
                    str(user_id),
                    update_item_id=connection.provider_connection_id,
                    completion_redirect_uri=redirect_uri,
                )
                if hosted is None:
                    raise BrokerlinkError("Plaid returned no Hosted Link URL")
                return LinkStart(decision, hosted, link_token=token)
            raise ValidationError(f"{institution}: manual connections have nothing to reconnect")

    async def complete_reconnect(
        self, user_id: int, connection_id: int, *, authorization_id: str | None = None
    ) -> LinkResult:
        """After the re-login flow: confirm with the provider and mark the connection active.
        A SnapTrade `authorization_id` other than the stored one (the portal linked the
        institution again) is mapped onto this connection."""
        connection = await self._owned(user_id, connection_id)
        provider = provider_for_account(connection.provider)
        institution = connection.institution_slug or connection.institution_name
        await self._before_network()
        if provider is Provider.SNAPTRADE:
            relinked = authorization_id not in (None, connection.provider_connection_id)
            return await self.complete_snaptrade(
                user_id,
                authorization_id=authorization_id or connection.provider_connection_id,
                institution=institution,
                onto=connection if relinked else None,
            )
        if provider is Provider.PLAID:
            with call_context(institution=connection.institution_slug, user_id=user_id):
                link = await self._plaid().complete_update(
                    str(user_id), connection.provider_connection_id
                )
                accounts = await self._plaid().accounts_of_item(str(user_id), link.connection_id)
            return await self._store(user_id, provider, link, accounts)
        raise ValidationError("manual connections have nothing to reconnect")

    async def remove(self, user_id: int, connection_id: int) -> None:
        """Remove at the provider first (which ends its billing), then the stored connection
        with its accounts and positions. A provider failure leaves everything stored."""
        connection = await self._owned(user_id, connection_id)
        provider = provider_for_account(connection.provider)
        await self._before_network()
        with call_context(institution=connection.institution_slug, user_id=user_id):
            if provider is Provider.SNAPTRADE:
                await self._snaptrade().remove(str(user_id), connection.provider_connection_id)
            elif provider is Provider.PLAID:
                await self._plaid().remove(str(user_id), connection.provider_connection_id)
        await self.session.delete(connection)
        await self.session.flush()
        log.info(
            "connections.connection.removed",
            user_id=user_id,
            connection_id=connection_id,
            provider=provider.value,
        )
