"""The sync engine: every connection's accounts and positions into the store, nothing lost.

For each user and provider the engine asks the provider for the user's accounts once, then each
account's holdings, and replaces that account's stored positions in one transaction. The
provider on the connection's record decides which connector is used (the run-time router); a
failure on one account or connection never stops the others and never removes stored data:

    the fetch fails            → account `stale`, with the error and its time; positions kept
    the provider wants a login → account `broken` and connection `broken`, with the reason
    the payload is malformed   → treated as a failed fetch (fails closed)
    an account disappears      → kept, marked `stale` ("no longer reported")

A connector with `SyncReads` saves calls: it lists the accounts without their capabilities (a
stored account keeps its own; for SnapTrade that is `GET /accounts` alone, so a first sync costs
1 + 2 calls per account, positions/all and balances), and it says when an account's holdings
are the ones stored (SnapTrade's Daily plan: not re-synced since), which are then not read
again, only marked synced. A stale or broken account is always read.

Nothing a connection returns is filtered by routing after the fetch. Concurrency is bounded per
provider; the connectors' own limiters keep the request rate under the provider's limits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.connectors import InvestmentsConnector, SyncReads
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import (
    AuthFailed,
    ProviderError,
    ReconnectRequired,
    UserReconnectRequired,
)
from brokerlink.domain.models import AccountSummary, Capabilities, Position
from brokerlink.models import Account, AccountSyncStatus, Connection, ConnectionStatus
from brokerlink.providers.observe import call_context
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
)
from brokerlink.routing.router import provider_for_account
from brokerlink.sync.lease import DEFAULT_LEASE, SyncLease
from brokerlink.sync.relink import adopt_relinked
from brokerlink.sync.summary import AccountOutcome, ConnectionOutcome, SyncSummary

__all__ = ["AccountOutcome", "ConnectionOutcome", "SyncEngine", "SyncSummary"]

log = structlog.get_logger("brokerlink.sync")

CapabilitiesFor = Callable[[Connection, AccountSummary], Capabilities]


def _no_capabilities(_connection: Connection, _account: AccountSummary) -> Capabilities:
    # Accounts first seen by a sync get no trading until the link flow derives their flags.
    return Capabilities()


def _reason(error: BaseException) -> str:
    return str(error) if isinstance(error, ProviderError) else f"{type(error).__name__}: {error}"


def _needs_reconnect(error: BaseException) -> bool:
    return isinstance(error, ReconnectRequired | AuthFailed)


class SyncEngine:
    """Syncs one connection, one user, or every user. Each write is its own transaction."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        connectors: Mapping[Provider, InvestmentsConnector],
        *,
        concurrency: Mapping[Provider, int] | None = None,
        user_concurrency: int = 16,
        capabilities_for: CapabilitiesFor = _no_capabilities,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_connection: Callable[[ConnectionOutcome], None] | None = None,
        lease_ttl: timedelta = DEFAULT_LEASE,
    ) -> None:
        self.lease_ttl = lease_ttl
        # Called with what a run did while it still holds the leases (the schedule settles
        # there, so no second sync of a connection can start between its end and its settling).
        self.before_release: Callable[[Sequence[ConnectionOutcome]], Awaitable[None]] | None = None
        self.on_connection = on_connection
        self.sessionmaker = sessionmaker
        self.connectors = connectors
        limits = {Provider.SNAPTRADE: 8, Provider.PLAID: 8, **(concurrency or {})}
        self._slots = {p: asyncio.Semaphore(n) for p, n in limits.items()}
        self._users = asyncio.Semaphore(user_concurrency)
        # Fingerprint matching reads and claims accounts: one claim at a time.
        self._claims = asyncio.Lock()
        self.capabilities_for = capabilities_for
        self.clock = clock

    # -- entry points ---------------------------------------------------------------------------

    async def sync_all(self) -> SyncSummary:
        async with transaction(self.sessionmaker) as session:
            user_ids = await ConnectionRepository.from_session(session).user_ids_with_connections()
        return await self._run(self._sync_user_bounded(u) for u in user_ids)

    async def sync_user(self, user_id: int) -> SyncSummary:
        started = time.perf_counter()
        summary = await self._sync_user(user_id)
        summary.seconds = time.perf_counter() - started
        return summary

    async def is_stale(self, user_id: int, max_age: timedelta) -> bool:
        """Whether any of the user's accounts was last tried (synced, or failed) more than
        `max_age` ago, or never.

        Broken and disabled connections are left out: they wait for the user to reconnect, and
        syncing them again would only repeat the failure.
        """
        now = self.clock()
        async with transaction(self.sessionmaker) as session:
            accounts = AccountRepository.from_session(session)
            for c in await ConnectionRepository.from_session(session).list_for_user(user_id):
                if c.provider is Provider.MANUAL or c.status is not ConnectionStatus.ACTIVE:
                    continue
                tried = [
                    max((t for t in (a.last_synced_at, a.last_error_at) if t), default=None)
                    for a in await accounts.list_for_connection(c.id)
                ] or [c.last_synced_at]
                if any(t is None or now - t > max_age for t in tried):
                    return True
        return False

    async def sync_user_if_stale(self, user_id: int, max_age: timedelta) -> SyncSummary | None:
        """Sync the user first when their data is older than `max_age` (before an analysis)."""
        if not await self.is_stale(user_id, max_age):
            return None
        log.info("sync.user.stale", user_id=user_id, max_age_hours=max_age.total_seconds() / 3600)
        return await self.sync_user(user_id)

    async def sync_connection(self, connection_id: int) -> ConnectionOutcome:
        async with transaction(self.sessionmaker) as session:
            connection = await ConnectionRepository.from_session(session).get(connection_id)
            if connection is None:
                raise LookupError(f"connection {connection_id} does not exist")
            user_id, provider = connection.user_id, connection.provider
        summary = await self._sync_provider(
            user_id, provider_for_account(provider), [connection_id]
        )
        return next(c for c in summary.connections if c.connection_id == connection_id)

    # -- internals ------------------------------------------------------------------------------

    def _report(self, outcome: ConnectionOutcome) -> None:
        if self.on_connection is not None:
            self.on_connection(outcome)

    async def _run(self, jobs: Iterable[Awaitable[SyncSummary]]) -> SyncSummary:
        started = time.perf_counter()
        summary = SyncSummary()
        for result in await asyncio.gather(*jobs):
            summary.merge(result)
        summary.seconds = time.perf_counter() - started
        return summary

    async def _sync_user_bounded(self, user_id: int) -> SyncSummary:
        async with self._users:
            return await self._sync_user(user_id)

    async def _sync_user(self, user_id: int) -> SyncSummary:
        async with transaction(self.sessionmaker) as session:
            connections = await ConnectionRepository.from_session(session).list_syncable(user_id)
            by_provider: dict[Provider, list[int]] = {}
            for c in connections:
                by_provider.setdefault(provider_for_account(c.provider), []).append(c.id)
        summary = SyncSummary()
        results = await asyncio.gather(
            *(self._sync_provider(user_id, p, ids) for p, ids in by_provider.items())
        )
        for result in results:
            summary.merge(result)
        return summary

    async def _sync_provider(
        self, user_id: int, provider: Provider, connection_ids: Sequence[int]
    ) -> SyncSummary:
        """The connections whose sync lease this run gets; the others are reported skipped."""
        lease = SyncLease(self.sessionmaker, ttl=self.lease_ttl)
        started = self.clock()
        taken = await lease.take(connection_ids, now=started)
        try:
            summary = await self._sync_leased(
                user_id, provider, [c for c in connection_ids if c in taken]
            )
            for outcome in summary.connections:
                outcome.started_at = started
            if self.before_release is not None:
                await self.before_release(summary.connections)
        finally:
            await lease.release()
        for cid in connection_ids:
            if cid not in taken:
                skipped = ConnectionOutcome(
                    cid, provider, True, "already being synced elsewhere", skipped=True
                )
                log.info("sync.connection.skipped", connection_id=cid, reason=skipped.error)
                summary.connections.append(skipped)
                self._report(skipped)
        return summary

    async def _sync_leased(
        self, user_id: int, provider: Provider, connection_ids: Sequence[int]
    ) -> SyncSummary:
        """One provider's connections of one user: one accounts call, then each account."""
        summary = SyncSummary()
        if not connection_ids:
            return summary
        connector = self.connectors.get(provider)
        async with transaction(self.sessionmaker) as session:
            repo = ConnectionRepository.from_session(session)
            loaded = [await repo.get(cid) for cid in connection_ids]
            connections = {c.provider_connection_id: c.id for c in loaded if c is not None}
            # Recorded with each provider call (`providers.observe.call_context`).
            institutions = {c.id: c.institution_slug for c in loaded if c is not None}
            # What is stored fresh, and as of when: holdings the provider has not re-synced
            # since are not read again (`SyncReads`). The lease keeps it true until we write.
            fresh: dict[tuple[int, str], datetime | None] = {}
            if isinstance(connector, SyncReads):
                accounts_repo = AccountRepository.from_session(session)
                for cid in connections.values():
                    for a in await accounts_repo.list_for_connection(cid):
                        if a.sync_status is AccountSyncStatus.FRESH:
                            fresh[(cid, a.provider_account_id)] = a.data_as_of
        if connector is None:
            error = f"no {provider.value} connector is configured"
            for cid in connections.values():
                summary.connections.append(ConnectionOutcome(cid, provider, False, error))
                await self._fail_connection(cid, error, broken=False)
                self._report(summary.connections[-1])
            return summary
        slot = self._slots.setdefault(provider, asyncio.Semaphore(8))
        try:
            async with slot:
                summary.provider_calls += 1
                # The listing without capabilities, unless a hook derives them from the rows.
                list_accounts = (
                    connector.list_accounts_for_sync
                    if isinstance(connector, SyncReads)
                    and self.capabilities_for is _no_capabilities
                    else connector.list_accounts
                )
                only = set(institutions.values())
                single = only.pop() if len(only) == 1 else None
                with call_context(institution=single, user_id=user_id):
                    accounts = await list_accounts(str(user_id))
        except Exception as error:  # noqa: BLE001 - every failure is recorded, none is fatal
            # A user-wide re-link carries a reason meant for people; keep it plain.
            reason = error.message if isinstance(error, UserReconnectRequired) else _reason(error)
            broken = _needs_reconnect(error)
            log.warning(
                "sync.accounts.failed", provider=provider.value, user_id=user_id, error=reason
            )
            # An error naming the one connection that needs a new login breaks only that one;
            # the others of the run could not be read this time (stale, not broken).
            concerned = getattr(error, "connection_id", None) if broken else None
            for key, cid in connections.items():
                here = broken and concerned in (None, key)
                summary.connections.append(
                    ConnectionOutcome(cid, provider, False, reason, broken=here)
                )
                await self._fail_connection(cid, reason, broken=here)
                self._report(summary.connections[-1])
            if isinstance(error, UserReconnectRequired):
                # Every one of the user's connections at this provider, not only this run's.
                async with transaction(self.sessionmaker) as session:
                    others = [
                        c.id
                        for c in await ConnectionRepository.from_session(session).list_syncable(
                            user_id
                        )
                        if provider_for_account(c.provider) is provider
                        and c.id not in connections.values()
                    ]
                for cid in others:
                    await self._fail_connection(cid, reason, broken=True)
            return summary

        grouped: dict[str, list[AccountSummary]] = {key: [] for key in connections}
        for account in accounts:
            grouped.setdefault(account.connection_id, []).append(account)
        unknown = [key for key in grouped if key not in connections]
        if unknown:
            # Accounts of the user's other stored connections (not in this run) are known.
            async with transaction(self.sessionmaker) as session:
                stored = {
                    c.provider_connection_id
                    for c in await ConnectionRepository.from_session(session).list_for_user(user_id)
                }
            unknown = [key for key in unknown if key not in stored]
        if unknown:
            # Accounts under a connection we have no record of are reported, never dropped
            # silently: they belong to a link this product did not make or has forgotten.
            log.warning(
                "sync.connection.unknown",
                provider=provider.value,
                user_id=user_id,
                connections=unknown,
            )

        async def one_connection(key: str, cid: int) -> ConnectionOutcome:
            outcome = ConnectionOutcome(cid, provider, True)
            reported = frozenset(a.account_id for a in grouped[key])
            unchanged = {
                a.account_id
                for a in grouped[key]
                if (cid, a.account_id) in fresh
                and isinstance(connector, SyncReads)
                and connector.holdings_unchanged(a, fresh[(cid, a.account_id)])
            }
            account_jobs = [
                self._confirm_unchanged(cid, a)
                if a.account_id in unchanged
                else self._sync_account(connector, slot, user_id, cid, a, summary, reported)
                for a in grouped[key]
            ]
            with call_context(institution=institutions.get(cid), user_id=user_id):
                outcome.accounts = list(await asyncio.gather(*account_jobs))
            missing_note = await self._mark_missing(cid, {a.account_id for a in grouped[key]})
            failed = [a for a in outcome.accounts if not a.ok]
            if failed:
                outcome.ok = False
                outcome.error = failed[0].error
                outcome.broken = any(a.error and a.error.startswith("reconnect:") for a in failed)
            async with transaction(self.sessionmaker) as session:
                repo = ConnectionRepository.from_session(session)
                connection = await repo.get(cid)
                assert connection is not None
                if outcome.ok:
                    await repo.mark_synced(connection, self.clock())
                    # Repaired only when the provider shows its accounts again: a broken link
                    # that now reports nothing (its accounts re-linked elsewhere) stays broken.
                    if connection.status is ConnectionStatus.BROKEN and grouped[key]:
                        await repo.set_status(connection, ConnectionStatus.ACTIVE, None)
                elif outcome.broken:
                    await repo.set_status(connection, ConnectionStatus.BROKEN, outcome.error)
            if missing_note:
                log.info("sync.accounts.missing", connection_id=cid, detail=missing_note)
            self._report(outcome)
            return outcome

        summary.connections.extend(
            await asyncio.gather(*(one_connection(k, cid) for k, cid in connections.items()))
        )
        return summary

    async def _sync_account(
        self,
        connector: InvestmentsConnector,
        slot: asyncio.Semaphore,
        user_id: int,
        connection_id: int,
        summary_row: AccountSummary,
        summary: SyncSummary,
        reported: frozenset[str] = frozenset(),
    ) -> AccountOutcome:
        outcome = AccountOutcome(summary_row.account_id, ok=False)
        try:
            async with slot:
                summary.provider_calls += 1
                positions = await connector.get_holdings(str(user_id), summary_row.account_id)
        except Exception as error:  # noqa: BLE001 - recorded on the account, never fatal
            async with transaction(self.sessionmaker) as session:
                failed_id = (await self._upsert_account(session, connection_id, summary_row)).id
            broken = _needs_reconnect(error)
            outcome.error = ("reconnect: " if broken else "") + _reason(error)
            await self._fail_account(failed_id, outcome.error, broken=broken)
            log.warning("sync.account.failed", account_id=failed_id, error=outcome.error)
            return outcome
        now = self.clock()
        account_id: int | None = None
        try:
            async with self._claims, transaction(self.sessionmaker) as session:
                accounts = AccountRepository.from_session(session)
                if await accounts.get_by_provider_id(connection_id, summary_row.account_id) is None:
                    await adopt_relinked(
                        session, user_id, connection_id, summary_row, positions, reported
                    )
                account_id = (await self._upsert_account(session, connection_id, summary_row)).id
            async with transaction(self.sessionmaker) as session:
                accounts = AccountRepository.from_session(session)
                stored = await accounts.get(account_id)
                assert stored is not None
                portfolio = await PortfolioRepository.from_session(session).get_or_create_default(
                    user_id
                )
                outcome.positions = await PositionRepository.from_session(
                    session
                ).replace_account_positions(stored, positions, portfolio_id=portfolio.id)
                await accounts.mark_fresh(
                    stored, synced_at=now, data_as_of=_data_as_of(summary_row, positions)
                )
        except Exception as error:  # noqa: BLE001 - a bad payload fails closed
            outcome.error = f"could not store the positions: {_reason(error)}"
            if account_id is not None:
                await self._fail_account(account_id, outcome.error, broken=False)
            log.warning("sync.account.failed", account_id=account_id, error=outcome.error)
            return outcome
        outcome.ok = True
        log.info("sync.account.completed", account_id=account_id, positions=outcome.positions)
        return outcome

    async def _confirm_unchanged(self, connection_id: int, row: AccountSummary) -> AccountOutcome:
        """Store the listing and mark the account synced; its holdings are not read again."""
        async with transaction(self.sessionmaker) as session:
            account = await self._upsert_account(session, connection_id, row)
            await AccountRepository.from_session(session).mark_fresh(
                account,
                synced_at=self.clock(),
                data_as_of=None,  # keeps its data_as_of
            )
        log.info("sync.account.unchanged", account_id=account.id)
        return AccountOutcome(row.account_id, ok=True, unchanged=True)

    async def _upsert_account(
        self, session: AsyncSession, connection_id: int, row: AccountSummary
    ) -> Account:
        accounts = AccountRepository.from_session(session)
        existing = await accounts.get_by_provider_id(connection_id, row.account_id)
        connection = await ConnectionRepository.from_session(session).get(connection_id)
        assert connection is not None
        capabilities = (
            existing.capabilities
            if existing is not None
            else self.capabilities_for(connection, row)
        )
        return await accounts.upsert(
            connection,
            provider_account_id=row.account_id,
            name=row.name,
            type=row.type,
            currency=row.currency,
            number_mask=row.number_mask,
            capabilities=capabilities,
        )

    async def _fail_account(self, account_id: int, error: str, *, broken: bool) -> None:
        async with transaction(self.sessionmaker) as session:
            accounts = AccountRepository.from_session(session)
            account = await accounts.get(account_id)
            if account is not None:
                await accounts.mark_failed(account, error=error, at=self.clock(), broken=broken)

    async def _fail_connection(self, connection_id: int, error: str, *, broken: bool) -> None:
        async with transaction(self.sessionmaker) as session:
            connections = ConnectionRepository.from_session(session)
            connection = await connections.get(connection_id)
            if connection is None:
                return
            if broken:
                await connections.set_status(connection, ConnectionStatus.BROKEN, error)
            accounts = AccountRepository.from_session(session)
            for account in await accounts.list_for_connection(connection_id):
                await accounts.mark_failed(account, error=error, at=self.clock(), broken=broken)

    async def _mark_missing(self, connection_id: int, reported: set[str]) -> str | None:
        async with transaction(self.sessionmaker) as session:
            accounts = AccountRepository.from_session(session)
            missing = [
                a
                for a in await accounts.list_for_connection(connection_id)
                if a.provider_account_id not in reported
            ]
            for account in missing:
                await accounts.mark_failed(
                    account, error="no longer reported by the provider", at=self.clock()
                )
        return f"{len(missing)} account(s) no longer reported" if missing else None


def _data_as_of(row: AccountSummary, positions: Sequence[Position]) -> datetime | None:
    stamps = [p.as_of for p in positions if p.as_of is not None]
    if row.holdings_as_of is not None:
        stamps.append(row.holdings_as_of)
    return max(stamps) if stamps else None
