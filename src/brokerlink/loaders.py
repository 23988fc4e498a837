"""The portfolio app's entry points for SnapTrade, in the shape of its Plaid loaders.

Synchronous functions over the async core, callable from scripts, notebooks and worker threads
(even where an event loop is already running): each call runs on one background event loop that
this module owns. Settings come from the environment at first use. SnapTrade credentials come
from the environment, else the secret store's `snaptrade/app_credentials`; with neither, a call
raises `SnapTradeNotConfigured` (saying what to set), unless sandbox mode is asked for with
`BROKERLINK_SANDBOX=embedded`: then calls go to the embedded SnapTrade sandbox, started on a
loopback port on first use. Credentials can always be stored and read.

    from brokerlink import loaders

    loaders.register_snaptrade_user("42")
    url = loaders.create_connection_portal_url("42", "Charles Schwab")
    positions = loaders.get_snaptrade_positions("42")
    frame = loaders.normalize_snaptrade_holdings(positions)             # pandas (optional extra)
    data = loaders.convert_snaptrade_holdings_to_portfolio_data(positions)  # ticker -> shares...

`shutdown()` stops the loop (and the sandbox); it also runs at interpreter exit.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Coroutine, Iterable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import SecretStr

from brokerlink.composition import Services, embedded_sandboxes, open_services
from brokerlink.config import Settings, get_settings
from brokerlink.domain.enums import Provider
from brokerlink.domain.errors import AuthFailed
from brokerlink.domain.models import AccountSummary, Balance, Connection, Position, RefreshResult
from brokerlink.errors import ConfigurationError, ValidationError
from brokerlink.policies.capabilities import connection_type_for
from brokerlink.portfolio.consolidate import (
    DEFAULT_CASH_PROXIES,
    SourcePosition,
    analysis_view,
    consolidate,
)
from brokerlink.providers.observe import call_context
from brokerlink.providers.snaptrade import SnapTradeConnector
from brokerlink.routing.coverage import load_coverage
from brokerlink.secrets import SecretNotFound, SecretStore, secret_store_from_settings
from brokerlink.secrets.credentials import (
    AppCredentials,
    SnapTradeUserSecret,
    get_app_credentials,
    store_app_credentials,
)
from brokerlink.secrets.credentials import (
    get_snaptrade_user_secret as _get_user_secret,
)
from brokerlink.secrets.credentials import (
    list_user_snaptrade_connections as _list_connections,
)
from brokerlink.secrets.credentials import (
    store_snaptrade_user_secret as _store_user_secret,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "HOLDINGS_COLUMNS",
    "SnapTradeNotConfigured",
    "convert_snaptrade_holdings_to_portfolio_data",
    "create_connection_portal_url",
    "get_snaptrade_accounts",
    "get_snaptrade_app_credentials",
    "get_snaptrade_balances",
    "get_snaptrade_connections",
    "get_snaptrade_positions",
    "get_snaptrade_user_secret",
    "list_user_snaptrade_connections",
    "normalize_snaptrade_holdings",
    "refresh_snaptrade_connection",
    "register_snaptrade_user",
    "shutdown",
    "store_snaptrade_app_credentials",
    "store_snaptrade_user_secret",
]

T = TypeVar("T")

HOLDINGS_COLUMNS = (
    "ticker",
    "quantity",
    "value",
    "currency",
    "type",
    "account_id",
    "cost_basis",
    "institution",
    "last_updated",
)


class SnapTradeNotConfigured(ConfigurationError):
    """No SnapTrade credentials anywhere, and the embedded sandbox was not asked for."""

    code = "snaptrade_not_configured"


NOT_CONFIGURED = (
    "brokerlink.loaders has no SnapTrade credentials: set SNAPTRADE_CLIENT_ID and "
    "SNAPTRADE_CONSUMER_KEY, or store them once with store_snaptrade_app_credentials(); "
    "for the offline sandbox instead, set BROKERLINK_SANDBOX=embedded"
)


@dataclass
class _Core:
    services: Services
    stack: AsyncExitStack

    @property
    def connector(self) -> SnapTradeConnector:
        connector = self.services.connectors.snaptrade
        assert connector is not None
        return connector


class _Runtime:
    """One background event loop per process, and the clients living on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._core: _Core | None = None
        self._core_lock: asyncio.Lock | None = None
        self._secrets: SecretStore | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="brokerlink-loaders", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        loop = self.loop()
        if self._thread is threading.current_thread():
            coroutine.close()
            raise RuntimeError("brokerlink.loaders functions are synchronous; await the core")
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    async def core(self) -> _Core:
        if self._core_lock is None:
            self._core_lock = asyncio.Lock()
        async with self._core_lock:
            if self._core is None:
                self._core = await _build_core(get_settings(), self.secrets())
            return self._core

    def secrets(self) -> SecretStore:
        """The secret store alone: credentials can be stored before any provider is there."""
        if self._secrets is None:
            self._secrets = secret_store_from_settings(get_settings())
        return self._secrets

    def shutdown(self) -> None:
        with self._lock:
            loop, thread, core = self._loop, self._thread, self._core
            self._loop = self._thread = self._core = None
            self._core_lock = self._secrets = None
        if loop is None:
            return
        if core is not None:
            asyncio.run_coroutine_threadsafe(core.stack.aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)
        loop.close()


_runtime = _Runtime()
atexit.register(_runtime.shutdown)


def shutdown() -> None:
    """Stop the background loop, close clients and stop the embedded sandbox, if running."""
    _runtime.shutdown()


async def _build_core(settings: Settings, secrets: SecretStore) -> _Core:
    """The services, on the credentials in the environment, else those in the secret store,
    else (only with `BROKERLINK_SANDBOX=embedded`) the embedded SnapTrade sandbox."""
    stored = None
    if not settings.snaptrade_live:
        try:
            stored = await get_app_credentials(secrets)
        except SecretNotFound:
            stored = None
    stack = AsyncExitStack()
    try:
        if settings.snaptrade_live or stored is not None:
            services = await stack.enter_async_context(
                open_services(settings, snaptrade_credentials=stored, secrets=secrets)
            )
        elif settings.sandbox == "embedded":
            sandbox_url, _ = await stack.enter_async_context(embedded_sandboxes(plaid=False))
            services = await stack.enter_async_context(
                open_services(settings, snaptrade_url=sandbox_url, sandbox=True, secrets=secrets)
            )
        else:
            raise SnapTradeNotConfigured(NOT_CONFIGURED)
    except BaseException:
        await stack.aclose()
        raise
    return _Core(services, stack)


async def _connector() -> SnapTradeConnector:
    return (await _runtime.core()).connector


async def _secrets() -> SecretStore:
    return _runtime.secrets()


# -- credentials ---------------------------------------------------------------------------


def store_snaptrade_app_credentials(
    client_id: str, consumer_key: str, environment: str = "production"
) -> None:
    """Store the SnapTrade app credentials in the secret store (`snaptrade/app_credentials`)."""

    async def run() -> None:
        await store_app_credentials(
            await _secrets(),
            AppCredentials(
                client_id=client_id, consumer_key=SecretStr(consumer_key), environment=environment
            ),
        )

    _runtime.run(run())


def get_snaptrade_app_credentials() -> AppCredentials:
    """The stored app credentials (`consumer_key` stays a `SecretStr`)."""

    async def run() -> AppCredentials:
        return await get_app_credentials(await _secrets())

    return _runtime.run(run())


def store_snaptrade_user_secret(
    user_id: str, institution: str, user_secret: str, snaptrade_user_id: str | None = None
) -> None:
    """Store a user's SnapTrade secret for one institution."""

    async def run() -> None:
        await _store_user_secret(
            await _secrets(),
            SnapTradeUserSecret(
                user_secret=SecretStr(user_secret),
                user_id=user_id,
                institution=institution,
                snaptrade_user_id=snaptrade_user_id or user_id,
            ),
        )

    _runtime.run(run())


def get_snaptrade_user_secret(user_id: str, institution: str) -> SnapTradeUserSecret:
    async def run() -> SnapTradeUserSecret:
        return await _get_user_secret(await _secrets(), user_id, institution)

    return _runtime.run(run())


def list_user_snaptrade_connections(user_id: str) -> list[SnapTradeUserSecret]:
    """The user's SnapTrade records, one per connected institution.

    Connections made in the portal since the last call are recorded first (one SnapTrade call
    when the user is registered; none otherwise).
    """

    async def run() -> list[SnapTradeUserSecret]:
        secrets = await _secrets()
        records = await _list_connections(secrets, user_id)
        connector = await _connector()
        try:
            live = await connector.list_connections(user_id)
        except AuthFailed:
            return records  # not registered with SnapTrade: nothing more to find
        known = {r.institution for r in records}
        for connection in live:
            slug = connection.institution_slug
            if slug and slug not in known:
                await connector.record_connection(user_id, slug, connection.connection_id)
                known.add(slug)
        return await _list_connections(secrets, user_id)

    return _runtime.run(run())


# -- provider calls ------------------------------------------------------------------------


def register_snaptrade_user(user_id: str) -> str:
    """Register the user with SnapTrade once (reused for every institution); SnapTrade's id."""

    async def run() -> str:
        return await (await _connector()).register_user(user_id)

    return _runtime.run(run())


def create_connection_portal_url(
    user_id: str, institution: str, redirect_uri: str | None = None
) -> str:
    """The SnapTrade connection-portal URL for `institution` (a name, alias or slug).

    Trade access is asked for only where the coverage map allows trading.
    """

    async def run() -> str:
        entry = load_coverage().match(institution)
        if entry is None or entry.snaptrade_slug is None:
            raise ValidationError(
                f"{institution!r} is not a SnapTrade institution in the coverage map",
                field="institution",
            )
        connector = await _connector()
        # The institution only: the portfolio app's user ids need not be rows of this store.
        with call_context(institution=entry.slug):
            return await connector.connection_link(
                user_id,
                broker=entry.snaptrade_slug,
                connection_type=connection_type_for(entry),
                custom_redirect=redirect_uri,
            )

    return _runtime.run(run())


def get_snaptrade_connections(user_id: str) -> list[Connection]:
    async def run() -> list[Connection]:
        return await (await _connector()).list_connections(user_id)

    return _runtime.run(run())


def get_snaptrade_accounts(user_id: str) -> list[AccountSummary]:
    async def run() -> list[AccountSummary]:
        return await (await _connector()).list_accounts(user_id)

    return _runtime.run(run())


def get_snaptrade_positions(user_id: str, account_id: str | None = None) -> list[Position]:
    """Positions (cash as `CUR:<ISO>`) of one account, or of every account of the user."""

    async def run() -> list[Position]:
        connector = await _connector()
        if account_id is not None:
            return await connector.get_holdings(user_id, account_id)
        accounts = await connector.list_accounts(user_id)
        per_account = await asyncio.gather(
            *(connector.get_holdings(user_id, a.account_id) for a in accounts)
        )
        return [p for rows in per_account for p in rows]

    return _runtime.run(run())


def get_snaptrade_balances(user_id: str, account_id: str | None = None) -> list[Balance]:
    async def run() -> list[Balance]:
        connector = await _connector()
        if account_id is not None:
            return await connector.get_balances(user_id, account_id)
        accounts = await connector.list_accounts(user_id)
        per_account = await asyncio.gather(
            *(connector.get_balances(user_id, a.account_id) for a in accounts)
        )
        return [b for rows in per_account for b in rows]

    return _runtime.run(run())


def refresh_snaptrade_connection(user_id: str, connection_id: str) -> RefreshResult:
    """Ask SnapTrade to re-sync one connection (billed by SnapTrade per call).

    This is the provider call alone; the HTTP API and the CLI refresh through the cost guard,
    which also writes the ledger entry.
    """

    async def run() -> RefreshResult:
        return await (await _connector()).refresh(user_id, connection_id)

    return _runtime.run(run())


# -- shaping for the portfolio code --------------------------------------------------------


def _institutions(accounts: Iterable[AccountSummary] | None) -> Mapping[str, str]:
    return {a.account_id: a.institution_name for a in accounts or ()}


def _ticker(position: Position) -> str:
    instrument = position.instrument
    return (
        instrument.symbol
        or (f"CUSIP:{instrument.cusip}" if instrument.cusip else None)
        or (f"ISIN:{instrument.isin}" if instrument.isin else None)
        or (instrument.name or "UNKNOWN")
    )


def normalize_snaptrade_holdings(
    positions: Iterable[Position], accounts: Iterable[AccountSummary] | None = None
) -> pd.DataFrame:
    """One row per position: ticker, quantity, value, currency, type, account_id, cost_basis,
    institution, last_updated. Needs the `pandas` extra; numbers stay `Decimal` (object)."""
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            "normalize_snaptrade_holdings needs pandas: pip install 'brokerlink[pandas]'"
        ) from error
    institutions = _institutions(accounts)
    rows = [
        {
            "ticker": _ticker(p),
            "quantity": p.quantity,
            "value": p.market_value,
            "currency": p.currency,
            "type": p.instrument.kind.value,
            "account_id": p.account_id,
            "cost_basis": p.cost_basis,
            "institution": institutions.get(p.account_id),
            "last_updated": p.as_of,
        }
        for p in positions
    ]
    return pd.DataFrame(rows, columns=list(HOLDINGS_COLUMNS))


def convert_snaptrade_holdings_to_portfolio_data(
    holdings: Iterable[Position] | pd.DataFrame,
    *,
    cash_proxies: Mapping[str, str] = DEFAULT_CASH_PROXIES,
) -> dict[str, dict[str, Any]]:
    """The analysis input: ticker → {shares, currency, type, account_id}.

    A ticker held in several accounts has its quantities summed, never overwritten; cash maps to
    its currency's proxy ticker (USD → SGOV by default).
    """
    sources = [_source(row) for row in _rows(holdings)]
    view = analysis_view(consolidate(sources), cash_proxies=cash_proxies)
    return {ticker: line.as_portfolio_data() for ticker, line in view.items()}


def _rows(holdings: Iterable[Position] | pd.DataFrame) -> list[dict[str, Any]]:
    if hasattr(holdings, "to_dict") and hasattr(holdings, "columns"):
        return [{str(k): v for k, v in r.items()} for r in holdings.to_dict("records")]
    return [
        {
            "ticker": _ticker(p),
            "quantity": p.quantity,
            "currency": p.currency,
            "type": p.instrument.kind.value,
            "account_id": p.account_id,
            "cost_basis": p.cost_basis,
            "value": p.market_value,
            "last_updated": p.as_of,
        }
        for p in holdings
    ]


def _source(row: Mapping[str, Any]) -> SourcePosition:
    def dec(value: Any) -> Decimal | None:
        if value is None or (isinstance(value, float) and value != value):
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))

    quantity = dec(row.get("quantity"))
    if quantity is None:
        raise ValidationError(f"holding {row.get('ticker')!r} has no quantity", field="quantity")
    updated = row.get("last_updated")
    return SourcePosition(
        ticker=str(row["ticker"]),
        quantity=quantity,
        currency=str(row.get("currency") or "USD"),
        kind=str(row.get("type") or "other"),
        account=str(row.get("account_id")),
        provider=Provider.SNAPTRADE,
        cost_basis=dec(row.get("cost_basis")),
        market_value=dec(row.get("value")),
        as_of=updated if isinstance(updated, datetime) else None,
    )
