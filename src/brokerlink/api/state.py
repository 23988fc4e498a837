"""What the app holds for its lifetime: engines, connectors, policies. Built at the edge.

`open_state(settings, …)` builds it from settings (the `serve` command and `demo` do); tests
build an `AppState` from their own fixtures and hand it to `create_app`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets as _random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from brokerlink.auth.throttle import SignInPolicy
from brokerlink.composition import Connectors, Services, open_services
from brokerlink.config import Settings
from brokerlink.connections.refresh import RefreshService
from brokerlink.db.session import create_read_sessionmaker
from brokerlink.orders.service import OrderService
from brokerlink.policies.cost_guard import CostPolicy
from brokerlink.portfolio.cache import PortfolioCache
from brokerlink.portfolio.consolidate import DEFAULT_CASH_PROXIES
from brokerlink.providers.plaid import PlaidConnector
from brokerlink.providers.snaptrade import SnapTradeConnector
from brokerlink.routing.coverage import CoverageRegistry
from brokerlink.routing.reference import ReferenceSource
from brokerlink.routing.router import LinkRouter, ProviderFlags
from brokerlink.sync.jobs import Jobs
from brokerlink.sync.schedule import Scheduler, SyncSchedule
from brokerlink.sync.tasks import BackgroundSyncs, CeleryJobs

__all__ = ["AppState", "link_state_key", "open_state"]


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class AppState:
    sessionmaker: async_sessionmaker[AsyncSession]
    coverage: CoverageRegistry
    flags: ProviderFlags
    connectors: Connectors
    # In-process syncs: what a request waits on (an analysis on fresh data).
    syncs: BackgroundSyncs
    policy: CostPolicy = field(default_factory=CostPolicy)
    plan: Literal["daily", "realtime"] = "daily"
    clock: Callable[[], datetime] = _now
    cash_proxies: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CASH_PROXIES))
    # Signs the state a provider's flow carries back to the callback page.
    state_key: bytes = field(default_factory=lambda: _random.token_bytes(32))
    session_ttl: timedelta = timedelta(days=7)
    # Failed sign-ins allowed per email and per client address, and where the address is read.
    sign_in: SignInPolicy = field(default_factory=SignInPolicy)
    secure_cookies: bool = False
    # Where providers send the browser back; None: the request's own base URL.
    public_url: str | None = None
    analysis_max_age: timedelta = timedelta(hours=24)
    # Consolidated portfolios per user, served while the store's data version holds (None: off).
    portfolio_cache: PortfolioCache | None = field(default_factory=PortfolioCache)
    # Sessions of requests that only read (None: derived from `sessionmaker`'s engine).
    read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
    # Live provider reference data the link-time router consults (None: the map alone).
    reference: ReferenceSource | None = None
    # Background sync jobs: the Celery queue when one is configured, else `syncs`.
    jobs: Jobs | None = None

    @classmethod
    def from_services(cls, services: Services, *, public_url: str | None = None) -> AppState:
        """The app's state on the composition root's services."""
        settings = services.settings
        state = cls(
            sessionmaker=services.sessionmaker,
            coverage=services.coverage,
            flags=services.flags,
            connectors=services.connectors,
            syncs=BackgroundSyncs(services.sync, SyncSchedule.from_settings(settings)),
            policy=services.policy,
            plan=settings.snaptrade_plan,
            secure_cookies=settings.env == "production",
            session_ttl=timedelta(hours=settings.session_ttl_hours),
            sign_in=SignInPolicy.from_settings(settings),
            public_url=public_url or settings.public_url,
            analysis_max_age=timedelta(hours=settings.analysis_max_age_hours),
            reference=services.reference,
        )
        if settings.link_state_key is not None:
            state.state_key = link_state_key(settings.link_state_key.get_secret_value())
        return state

    def __post_init__(self) -> None:
        if self.jobs is None:
            self.jobs = self.syncs
        if self.read_sessionmaker is None:
            bind = self.sessionmaker.kw.get("bind")
            # Sessions bound to one connection (tests' outer transactions) read through it.
            self.read_sessionmaker = (
                create_read_sessionmaker(bind)
                if isinstance(bind, AsyncEngine)
                else self.sessionmaker
            )

    @property
    def queue(self) -> Jobs:
        return self.jobs or self.syncs

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        return self.read_sessionmaker or self.sessionmaker

    @property
    def router(self) -> LinkRouter:
        return LinkRouter(self.coverage.current, self.flags)

    @property
    def snaptrade(self) -> SnapTradeConnector | None:
        return self.connectors.snaptrade

    @property
    def plaid(self) -> PlaidConnector | None:
        return self.connectors.plaid

    @property
    def refreshes(self) -> RefreshService:
        return RefreshService(
            self.sessionmaker,
            self.policy,
            self.connectors.by_provider(),
            clock=self.clock,
            coverage=self.coverage.current,
        )

    @property
    def orders(self) -> OrderService:
        return OrderService(self.sessionmaker, self.connectors.trading(), clock=self.clock)


def link_state_key(value: str) -> bytes:
    """The key that signs a link's state, from the `BROKERLINK_LINK_STATE_KEY` setting."""
    return hashlib.sha256(value.encode()).digest()


@asynccontextmanager
async def open_state(
    settings: Settings,
    *,
    snaptrade_url: str | None = None,
    plaid_url: str | None = None,
    public_url: str | None = None,
    sandbox: bool = False,
) -> AsyncIterator[AppState]:
    """The state for `settings`, on the composition root's services; the store must already
    be migrated to head."""
    async with open_services(
        settings, snaptrade_url=snaptrade_url, plaid_url=plaid_url, sandbox=sandbox
    ) as services:
        state = AppState.from_services(services, public_url=public_url)
        schedule = SyncSchedule.from_settings(settings)
        # -- sync jobs and the schedule ------------------------------------------------------
        # With a queue, jobs go to the workers and `brokerlink beat` schedules: no web process
        # does. Without one, the scheduler runs beside the app (the same claims), and requests
        # never trigger it.
        if settings.queue_url:
            from brokerlink.worker import create_celery

            state.jobs = CeleryJobs(create_celery(settings), services.sessionmaker, schedule)
        scheduled = (
            asyncio.create_task(
                Scheduler(services.sessionmaker, schedule, state.syncs.run_claims).run(
                    tick_seconds=settings.sync_tick_seconds
                )
            )
            if settings.sync_in_app and not settings.queue_url
            else None
        )
        try:
            yield state
        finally:
            if scheduled is not None:
                scheduled.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scheduled
            await state.syncs.close()
            if state.jobs is not state.syncs and state.jobs is not None:
                await state.jobs.close()
