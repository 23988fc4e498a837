"""The composition root: settings → store → secret store → provider clients → connectors →
services, built in one place for every face (the API and web app, the CLI, the loaders, the
worker).

    async with open_services(settings, snaptrade_url=…, plaid_url=…) as services:
        services.sessionmaker, services.connectors, services.sync, services.refreshes(), …

Which providers there are:

- real credentials in the environment select the real service (`SNAPTRADE_CLIENT_ID` and
  `SNAPTRADE_CONSUMER_KEY`; `PLAID_CLIENT_ID` and `PLAID_SECRET`);
- otherwise a provider is there only when its URL is given explicitly, pointing at a running
  sandbox (`brokerlink sandbox snaptrade|plaid`, or `embedded_sandboxes()`), which is then
  called with the sandbox's own documented credentials;
- SnapTrade app credentials read from the secret store (`snaptrade_credentials`, the loaders)
  stand in for the environment's, and are followed through rotations;
- `sandbox=True` (the demo) uses the given sandbox URLs with the sandbox credentials even when
  real credentials are set, so that an embedded run never calls a real service.

A provider with none of these is absent, and whoever needs it says so. Nothing outside
`brokerlink.providers` and this module builds a provider client.

Every client reports each finished call to one `Observer`: the Prometheus counters and the
provider call log writer (`brokerlink.observability`), whose flusher runs for the duration of
`open_services` and writes what is left on exit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from brokerlink.config import Settings
from brokerlink.connections.items import ConnectionItems
from brokerlink.connections.refresh import RefreshService
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain.connectors import TradingConnector
from brokerlink.domain.enums import Provider
from brokerlink.errors import ConfigurationError
from brokerlink.observability import metrics
from brokerlink.observability.calls import CallRecorder
from brokerlink.observability.observer import call_observer, count_sync
from brokerlink.orders.service import OrderService
from brokerlink.policies.cost_guard import CostPolicy
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.limits import Limits
from brokerlink.providers.observe import Observer
from brokerlink.providers.plaid import PlaidClient, PlaidConnector
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.routing.coverage import CoverageRegistry, load_coverage
from brokerlink.routing.reference import ReferenceSource
from brokerlink.routing.router import ProviderFlags
from brokerlink.sandbox_ids import (
    PLAID_SANDBOX_CLIENT_ID,
    PLAID_SANDBOX_SECRET,
    SANDBOX_CLIENT_ID,
    SANDBOX_CONSUMER_KEY,
)
from brokerlink.secrets import SecretStore, secret_store_from_settings
from brokerlink.secrets.credentials import AppCredentials, AppCredentialsProvider
from brokerlink.sync.engine import ConnectionOutcome, SyncEngine
from brokerlink.webhooks.urls import webhook_url

__all__ = [
    "Clients",
    "Connectors",
    "LinkStateKeyMissing",
    "Services",
    "embedded_sandboxes",
    "open_clients",
    "open_services",
    "plaid_retry",
    "provider_connectors",
    "reference_source",
    "require_link_state_key",
    "shared_limits",
    "snaptrade_retry",
]


def snaptrade_retry(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.snaptrade_max_retries,
        max_delay=settings.snaptrade_max_backoff_seconds,
    )


def plaid_retry(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.plaid_max_retries, max_delay=settings.plaid_max_backoff_seconds
    )


@dataclass
class Connectors:
    snaptrade: SnapTradeConnector | None = None
    plaid: PlaidConnector | None = None

    def by_provider(self) -> dict[Provider, SnapTradeConnector | PlaidConnector]:
        found: dict[Provider, SnapTradeConnector | PlaidConnector] = {}
        if self.snaptrade is not None:
            found[Provider.SNAPTRADE] = self.snaptrade
        if self.plaid is not None:
            found[Provider.PLAID] = self.plaid
        return found

    def trading(self) -> dict[Provider, TradingConnector]:
        return {} if self.snaptrade is None else {Provider.SNAPTRADE: self.snaptrade}

    def describe(self) -> str:
        names = [p.value for p in self.by_provider()]
        return ", ".join(names) if names else "none"


@dataclass
class Clients:
    """The provider clients a run has, open for the duration of `open_clients`."""

    snaptrade: SnapTradeClient | None = None
    plaid: PlaidClient | None = None


def _snaptrade_client(
    settings: Settings,
    *,
    url: str | None,
    sandbox: bool,
    stored: AppCredentials | None,
    rotation: AppCredentialsProvider | None,
    limits: Limits | None,
    observer: Observer | None,
) -> SnapTradeClient | None:
    if settings.snaptrade_live and not sandbox:
        return SnapTradeClient.from_settings(
            settings, base_url=url, limits=limits, observer=observer
        )
    if stored is not None and not sandbox:
        return SnapTradeClient(
            stored.client_id,
            stored.consumer_key,
            base_url=url or settings.snaptrade_url or "https://api.snaptrade.com",
            timeout=settings.snaptrade_timeout_seconds,
            retry=snaptrade_retry(settings),
            rate_limit_per_minute=settings.snaptrade_rate_limit_per_minute,
            rate_limit_window_seconds=settings.snaptrade_rate_limit_window_seconds,
            account_rate_limit_per_minute=settings.snaptrade_account_rate_limit_per_minute,
            credentials=rotation,
            limits=limits,
            observer=observer,
        )
    if url:
        return SnapTradeClient(
            SANDBOX_CLIENT_ID,
            SANDBOX_CONSUMER_KEY,
            base_url=url,
            timeout=settings.snaptrade_timeout_seconds,
            retry=snaptrade_retry(settings),
            rate_limit_per_minute=settings.snaptrade_rate_limit_per_minute,
            rate_limit_window_seconds=settings.snaptrade_rate_limit_window_seconds,
            limits=limits,
            observer=observer,
        )
    return None


def _plaid_client(
    settings: Settings,
    *,
    url: str | None,
    sandbox: bool,
    limits: Limits | None,
    observer: Observer | None,
) -> PlaidClient | None:
    if settings.plaid_live and not sandbox:
        assert settings.plaid_client_id is not None
        assert settings.plaid_secret is not None
        return PlaidClient(
            settings.plaid_client_id,
            settings.plaid_secret,
            environment=settings.plaid_env,
            base_url=url or settings.plaid_base_url,
            retry=plaid_retry(settings),
            limits=limits,
            observer=observer,
        )
    if url:
        return PlaidClient(
            PLAID_SANDBOX_CLIENT_ID,
            PLAID_SANDBOX_SECRET,
            base_url=url,
            retry=plaid_retry(settings),
            limits=limits,
            observer=observer,
        )
    return None


def shared_limits(settings: Settings) -> Limits | None:
    """The rate-limit windows every process shares (in Redis), when a queue URL is set;
    None: each client keeps its own, in process."""
    if not settings.queue_url:
        return None
    from brokerlink.providers.redis_limits import RedisLimits

    return RedisLimits(settings.queue_url)


@asynccontextmanager
async def open_clients(
    settings: Settings,
    *,
    snaptrade_url: str | None = None,
    plaid_url: str | None = None,
    sandbox: bool = False,
    snaptrade_credentials: AppCredentials | None = None,
    snaptrade_rotation: AppCredentialsProvider | None = None,
    observer: Observer | None = None,
) -> AsyncIterator[Clients]:
    """The provider clients the settings allow (see the module's rules), closed on exit.

    `snaptrade_credentials` are app credentials read from the secret store, used when the
    environment has none (the loaders); `snaptrade_rotation` then follows their rotation.
    `observer` is told of every call (None: the metrics only, at the settings' prices)."""
    if observer is None:
        observer = call_observer(settings)
    async with AsyncExitStack() as stack:
        found = Clients()
        limits = shared_limits(settings)
        if limits is not None:
            stack.push_async_callback(limits.aclose)
        snap = _snaptrade_client(
            settings,
            url=snaptrade_url,
            sandbox=sandbox,
            stored=snaptrade_credentials,
            rotation=snaptrade_rotation,
            limits=limits,
            observer=observer,
        )
        if snap is not None:
            found.snaptrade = await stack.enter_async_context(snap)
        plaid = _plaid_client(
            settings, url=plaid_url, sandbox=sandbox, limits=limits, observer=observer
        )
        if plaid is not None:
            found.plaid = await stack.enter_async_context(plaid)
        yield found


def _connectors(
    settings: Settings,
    clients: Clients,
    secrets: SecretStore,
    sessionmaker: async_sessionmaker[AsyncSession],
    public_url: str | None = None,
) -> Connectors:
    """Connectors over the clients. Plaid finds its Items through the store's connections,
    and asks for webhooks at the app's public URL when it is known (a Link sets the Item's
    webhook); SnapTrade knows the data plan (on "daily" a sync skips holdings SnapTrade has
    not re-read since the last one)."""
    found = Connectors()
    if clients.snaptrade is not None:
        found.snaptrade = SnapTradeConnector(
            clients.snaptrade,
            secrets,
            institution_lookup=load_coverage().slug_for_snaptrade,
            plan=settings.snaptrade_plan,
        )
    if clients.plaid is not None:
        found.plaid = PlaidConnector(
            clients.plaid,
            secrets,
            items=ConnectionItems(sessionmaker),
            webhook=webhook_url(public_url or settings.public_url, Provider.PLAID),
        )
    return found


@asynccontextmanager
async def provider_connectors(
    settings: Settings,
    secrets: SecretStore,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    snaptrade_url: str | None = None,
    plaid_url: str | None = None,
    sandbox: bool = False,
) -> AsyncIterator[Connectors]:
    """The connectors the settings allow, open for the duration of the block."""
    async with open_clients(
        settings, snaptrade_url=snaptrade_url, plaid_url=plaid_url, sandbox=sandbox
    ) as clients:
        yield _connectors(settings, clients, secrets, sessionmaker)


class LinkStateKeyMissing(ConfigurationError):
    """Serving the real providers without `BROKERLINK_LINK_STATE_KEY`."""

    code = "link_state_key_missing"


def require_link_state_key(settings: Settings) -> None:
    """On the real providers every app process must sign link state with one shared key: the
    provider sends the browser back to whichever replica the load balancer picks, and a key
    drawn at random per process would refuse the state another process signed. Sandboxes and
    the demo run in one process, where a random key is fine."""
    if settings.link_state_key is not None:
        return
    live = [
        name
        for name, on in (("SnapTrade", settings.snaptrade_live), ("Plaid", settings.plaid_live))
        if on
    ]
    if not live:
        return
    raise LinkStateKeyMissing(
        f"BROKERLINK_LINK_STATE_KEY is not set, and this process serves the real "
        f"{' and '.join(live)}: a provider's callback can reach any replica, and a random key "
        "per process makes the link fail there. Set BROKERLINK_LINK_STATE_KEY to the same "
        "random value (32+ characters) on every web process."
    )


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """Everything a face needs, built from one set of settings."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    secrets: SecretStore
    clients: Clients
    connectors: Connectors
    coverage: CoverageRegistry
    flags: ProviderFlags
    policy: CostPolicy
    # Live reference data for the link-time router (brokerages in maintenance, Plaid's
    # institution search); None when no provider client is there to ask.
    reference: ReferenceSource | None
    sync: SyncEngine
    # Writes the provider call log (flushed on the way out of `open_services`).
    calls: CallRecorder | None = None
    clock: Callable[[], datetime] = field(default=_now)

    def sync_engine(
        self, *, on_connection: Callable[[ConnectionOutcome], None] | None = None
    ) -> SyncEngine:
        """A sync engine on the same store and connectors, reporting each connection (to the
        metrics, then to `on_connection`)."""

        def report(outcome: ConnectionOutcome) -> None:
            count_sync(outcome)
            if on_connection is not None:
                on_connection(outcome)

        return SyncEngine(
            self.sessionmaker,
            self.connectors.by_provider(),
            on_connection=report,
            lease_ttl=timedelta(seconds=self.settings.sync_lease_seconds),
        )

    def refreshes(self) -> RefreshService:
        return RefreshService(
            self.sessionmaker,
            self.policy,
            self.connectors.by_provider(),
            clock=self.clock,
            coverage=self.coverage.current,
        )

    def orders(self) -> OrderService:
        return OrderService(self.sessionmaker, self.connectors.trading(), clock=self.clock)


def reference_source(clients: Clients) -> ReferenceSource | None:
    if clients.snaptrade is None and clients.plaid is None:
        return None
    return ReferenceSource(snaptrade=clients.snaptrade, plaid=clients.plaid)


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    snaptrade_url: str | None = None,
    plaid_url: str | None = None,
    sandbox: bool = False,
    snaptrade_credentials: AppCredentials | None = None,
    secrets: SecretStore | None = None,
    public_url: str | None = None,
) -> AsyncIterator[Services]:
    """The services for `settings`, open for the block; the store must be at head already
    (`brokerlink db upgrade`, or `migrate.upgrade_async` in the embedded modes).

    `snaptrade_credentials`: app credentials read from the secret store, used (and followed
    through rotations) when the environment has none. `secrets`: a secret store already open
    (else the settings' own). `public_url`: the app's address as providers reach it (else the
    setting's), where Plaid is asked to send webhooks."""
    engine = create_engine(settings.database_url_resolved)
    sessionmaker = create_sessionmaker(engine)
    if secrets is None:
        secrets = secret_store_from_settings(settings, sessionmaker=sessionmaker)
    rotation = AppCredentialsProvider(secrets) if snaptrade_credentials is not None else None
    recorder = CallRecorder(
        sessionmaker,
        capacity=settings.call_log_buffer,
        flush_seconds=settings.call_log_flush_seconds,
    )
    try:
        async with (
            recorder.running(),
            open_clients(
                settings,
                snaptrade_url=snaptrade_url,
                plaid_url=plaid_url,
                sandbox=sandbox,
                snaptrade_credentials=snaptrade_credentials,
                snaptrade_rotation=rotation,
                observer=call_observer(settings, recorder),
            ) as clients,
        ):
            connectors = _connectors(settings, clients, secrets, sessionmaker, public_url)
            yield Services(
                settings=settings,
                engine=engine,
                sessionmaker=sessionmaker,
                secrets=secrets,
                clients=clients,
                connectors=connectors,
                coverage=CoverageRegistry.start(settings.coverage_file),
                flags=ProviderFlags(
                    enable_snaptrade=settings.enable_snaptrade,
                    snaptrade_admin_only=settings.snaptrade_admin_only,
                ),
                policy=CostPolicy.from_settings(settings),
                reference=reference_source(clients),
                sync=SyncEngine(
                    sessionmaker,
                    connectors.by_provider(),
                    on_connection=count_sync,
                    lease_ttl=timedelta(seconds=settings.sync_lease_seconds),
                ),
                calls=recorder,
            )
    finally:
        await engine.dispose()
        metrics.mark_process_dead()


@asynccontextmanager
async def embedded_sandboxes(
    *, snaptrade: bool = True, plaid: bool = True
) -> AsyncIterator[tuple[str | None, str | None]]:
    """The offline sandboxes served in this process on loopback ports: their base URLs (None
    for one not asked for), stopped on exit. For the embedded modes only (`demo`,
    `serve --sandboxes`, the loaders with `BROKERLINK_SANDBOX=embedded`)."""
    from brokerlink.cli._serve import serve_in_background
    from brokerlink.sandbox import plaid as plaid_sandbox
    from brokerlink.sandbox import snaptrade as snaptrade_sandbox

    async with AsyncExitStack() as stack:
        snap_url = plaid_url = None
        # Served with no lifespan: their webhook senders are closed here, once the servers
        # stopped (the exit stack unwinds in reverse).
        if snaptrade:
            snap_app = snaptrade_sandbox.create_app(
                client_id=SANDBOX_CLIENT_ID, consumer_key=SANDBOX_CONSUMER_KEY
            )
            stack.push_async_callback(snap_app.state.webhooks.dispatcher.aclose)
            snap_url = await stack.enter_async_context(serve_in_background(snap_app))
        if plaid:
            plaid_app = plaid_sandbox.create_app(
                client_id=PLAID_SANDBOX_CLIENT_ID, secret=PLAID_SANDBOX_SECRET
            )
            stack.push_async_callback(plaid_app.state.webhook_delivery.dispatcher.aclose)
            plaid_url = await stack.enter_async_context(serve_in_background(plaid_app))
        yield snap_url, plaid_url
