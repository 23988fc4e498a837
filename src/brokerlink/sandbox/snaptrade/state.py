"""In-memory state of the SnapTrade sandbox: users, connections, accounts, orders.

One `SandboxState` per app (`app.state.sandbox`). Tests build one directly, inject a clock and
use the hooks: `expire_user_secret`, `lost_reset_replies`, `disable_authorization`, the
mutable `brokerages` flags, `request_counts`, `faults`.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from brokerlink.sandbox._counts import RequestCounts
from brokerlink.sandbox._faults import FaultInjector
from brokerlink.sandbox.snaptrade import seed
from brokerlink.sandbox.snaptrade.seed import OptionContract, SymbolInfo, sandbox_uuid

__all__ = [
    "Account",
    "Activity",
    "ApiError",
    "Authorization",
    "Brokerage",
    "Holding",
    "LostReply",
    "Order",
    "PendingTrade",
    "PortalSession",
    "RateLimitStatus",
    "SandboxState",
    "User",
]

Clock = Callable[[], float]
# (eventType, userId, the event's own fields): what `webhook_listener` hears of a state change.
WebhookListener = Callable[[str, str, dict[str, Any]], None]
ConnectionType = Literal["read", "trade", "trade-if-available"]
OPEN_STATUSES = frozenset({"PENDING", "ACCEPTED", "PARTIAL", "CANCEL_PENDING", "QUEUED"})
DAY = 86400.0


class ApiError(Exception):
    """A refusal the app renders as SnapTrade's `{detail, status_code, code}` body."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def not_found(what: str = "The requested resource does not exist.") -> ApiError:
    return ApiError(404, "1011", what)


def invalid(detail: str) -> ApiError:
    return ApiError(400, "1012", detail)


def forbidden(detail: str = "User does not have permission to access this resource") -> ApiError:
    return ApiError(403, "1066", detail)


def connection_disabled(auth_id: str) -> ApiError:
    return ApiError(
        402,
        "3003",
        f"Unable to sync with brokerage account because the connection {auth_id} is disabled.",
    )


@dataclass
class Brokerage:
    """A brokerage and its flags; tests change the flags directly."""

    id: str
    slug: str
    name: str
    display_name: str
    allows_trading: bool
    is_real_time_connection: bool
    auth_type: str
    url: str
    enabled: bool = True
    maintenance_mode: bool = False
    is_degraded: bool = False

    @property
    def available(self) -> bool:
        return self.enabled and not self.maintenance_mode


@dataclass
class User:
    user_id: str
    secret: str
    created_at: float
    secret_expired: bool = False


@dataclass(frozen=True)
class LostReply:
    """How the next `resetUserSecret` of a user loses its answer after rotating."""

    mode: str  # "502" | "hang"
    seconds: float = 3600.0


@dataclass
class Authorization:
    id: str
    user_id: str
    slug: str
    type: str  # read | trade
    name: str
    created_at: float
    updated_at: float
    disabled: bool = False
    disabled_at: float | None = None
    last_refresh: float | None = None


@dataclass
class Holding:
    symbol: SymbolInfo | None
    units: Decimal
    cost_basis: Decimal
    option: OptionContract | None = None
    cash_equivalent: bool = False

    @property
    def currency(self) -> str:
        return self.symbol.currency if self.symbol else "USD"

    @property
    def price(self) -> Decimal:
        if self.option is not None:
            return self.option.price
        assert self.symbol is not None
        return self.symbol.price

    @property
    def market_value(self) -> Decimal:
        multiplier = self.option.multiplier if self.option else Decimal(1)
        return self.units * self.price * multiplier


@dataclass
class Account:
    id: str
    authorization_id: str
    user_id: str
    slug: str
    name: str
    number: str
    raw_type: str
    margin: bool
    base_currency: str
    cash: dict[str, Decimal]
    holdings: list[Holding]
    created_at: float
    is_paper: bool
    institution_account_id: str
    # A fill changes the holdings at once, as a sync of the account would: when it last did.
    holdings_changed_at: float | None = None

    def total_value(self) -> Decimal:
        """Cash plus positions, in the base currency at the seed's fixed FX rates."""
        total = Decimal(0)
        base_rate = seed.FX_TO_USD[self.base_currency]
        for currency, amount in self.cash.items():
            total += amount * seed.FX_TO_USD[currency] / base_rate
        for h in self.holdings:
            total += h.market_value * seed.FX_TO_USD[h.currency] / base_rate
        return total.quantize(Decimal("0.01"), ROUND_HALF_UP)

    def buying_power(self, currency: str) -> Decimal:
        cash = self.cash.get(currency, Decimal(0))
        return cash * 2 if self.margin and cash > 0 else cash

    def holding_for(self, symbol: SymbolInfo) -> Holding | None:
        for h in self.holdings:
            if h.symbol is not None and h.symbol.symbol == symbol.symbol and h.option is None:
                return h
        return None


@dataclass
class Order:
    brokerage_order_id: str
    account_id: str
    symbol: SymbolInfo
    action: str
    order_type: str
    time_in_force: str
    units: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    status: str
    placed_at: float
    updated_at: float
    executed_at: float | None = None
    execution_price: Decimal | None = None
    client_order_id: str | None = None
    filled_units: Decimal = Decimal(0)
    canceled_units: Decimal = Decimal(0)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass
class Activity:
    id: str
    account_id: str
    type: str
    symbol: SymbolInfo | None
    units: Decimal
    price: Decimal
    amount: Decimal
    currency: str
    trade_date: float
    description: str
    fee: Decimal = Decimal(0)
    external_reference_id: str | None = None


@dataclass
class PendingTrade:
    """A checked trade from POST /trade/impact, placed later with POST /trade/{tradeId}."""

    id: str
    user_id: str
    account_id: str
    symbol: SymbolInfo
    action: str
    order_type: str
    time_in_force: str
    units: Decimal
    price: Decimal | None
    stop: Decimal | None
    created_at: float
    used: bool = False


@dataclass
class PortalSession:
    id: str
    token: str
    user_id: str
    broker: str | None
    custom_redirect: str | None
    immediate_redirect: bool
    reconnect: str | None
    connection_type: str
    created_at: float
    used: bool = False


@dataclass(frozen=True)
class RateLimitStatus:
    limit: int
    remaining: int
    reset: int
    allowed: bool


@dataclass
class _Window:
    hits: deque[float] = field(default_factory=deque)


class SandboxState:
    """Everything the sandbox remembers. All times come from `clock` (unix seconds)."""

    def __init__(
        self,
        client_id: str,
        consumer_key: str,
        *,
        clock: Clock = time.time,
        refresh_interval: float = 60.0,
        rate_limit: int = 250,
        rate_window: float = 60.0,
        account_rate_limit: int | None = None,
        timestamp_window: float = 300.0,
        session_ttl: float = 300.0,
        disabled_data_error: bool = True,
        instance: str | None = None,
    ) -> None:
        self.client_id = client_id
        # Ids are unique per sandbox instance, as the real service's are unique over time: a
        # restarted sandbox must not hand out ids that a persistent store already holds. Pass
        # `instance` for ids that repeat from run to run.
        self.instance = instance if instance is not None else secrets.token_hex(8)
        self.consumer_key = consumer_key
        self.clock = clock
        self.refresh_interval = refresh_interval
        self.rate_limit = rate_limit
        self.rate_window = rate_window
        self.account_rate_limit = account_rate_limit
        self.timestamp_window = timestamp_window
        self.session_ttl = session_ttl
        # The contract answers 402 for data of a disabled connection; the real service documents
        # returning the last cached state instead. Set False to mimic that.
        self.disabled_data_error = disabled_data_error
        self.brokerages: dict[str, Brokerage] = {
            b.slug: Brokerage(
                id=sandbox_uuid("brokerage", b.slug),
                slug=b.slug,
                name=b.name,
                display_name=b.display_name,
                allows_trading=b.allows_trading,
                is_real_time_connection=b.is_real_time_connection,
                auth_type=b.auth_type,
                url=b.url,
            )
            for b in seed.BROKERAGES
        }
        self.users: dict[str, User] = {}
        self.authorizations: dict[str, Authorization] = {}
        self.accounts: dict[str, Account] = {}
        self.orders: dict[str, Order] = {}
        self.activities: dict[str, list[Activity]] = {}
        self.trades: dict[str, PendingTrade] = {}
        self.sessions: dict[str, PortalSession] = {}
        self.lost_reset_replies: dict[str, LostReply] = {}
        self.request_counts: Counter[str] = Counter()
        self.faults = FaultInjector()
        # Every API request that reached the sandbox, per "METHOD /path" (admin routes read it).
        self.requests = RequestCounts()
        self._seq = 0
        self._client_windows: dict[str, _Window] = {}
        self._account_windows: dict[tuple[str, str], _Window] = {}
        # Told of every state change a SnapTrade webhook announces (`events.py` sends them).
        self.webhook_listener: WebhookListener | None = None

    # -- helpers ---------------------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def emit(self, event_type: str, user_id: str, **fields: Any) -> None:
        if self.webhook_listener is not None:
            self.webhook_listener(event_type, user_id, fields)

    def new_id(self, kind: str) -> str:
        self._seq += 1
        return sandbox_uuid(kind, self.client_id, self.instance, str(self._seq))

    # -- rate limits -----------------------------------------------------------------------

    def _hit(self, window: _Window, limit: int) -> RateLimitStatus:
        now = self.now()
        hits = window.hits
        while hits and hits[0] <= now - self.rate_window:
            hits.popleft()
        allowed = len(hits) < limit
        if allowed:
            hits.append(now)
        reset = math.ceil(hits[0] + self.rate_window - now) if hits else 0
        return RateLimitStatus(limit, max(limit - len(hits), 0), max(reset, 0), allowed)

    def peek_client_limit(self, client_id: str) -> RateLimitStatus:
        """The per-clientId window as it stands, without counting a request."""
        window = self._client_windows.setdefault(client_id, _Window())
        now = self.now()
        hits = window.hits
        while hits and hits[0] <= now - self.rate_window:
            hits.popleft()
        reset = math.ceil(hits[0] + self.rate_window - now) if hits else 0
        limit = self.rate_limit
        return RateLimitStatus(limit, max(limit - len(hits), 0), max(reset, 0), len(hits) < limit)

    def hit_client_limit(self, client_id: str) -> RateLimitStatus:
        """Count one request against the per-clientId rolling window."""
        window = self._client_windows.setdefault(client_id, _Window())
        return self._hit(window, self.rate_limit)

    def hit_account_limit(self, client_id: str, account_id: str) -> RateLimitStatus | None:
        if self.account_rate_limit is None:
            return None
        window = self._account_windows.setdefault((client_id, account_id), _Window())
        return self._hit(window, self.account_rate_limit)

    # -- users -----------------------------------------------------------------------------

    def register_user(self, user_id: str) -> User:
        if user_id in self.users:
            raise invalid(f"User {user_id} already exists")
        user = User(user_id, secrets.token_hex(16), self.now())
        self.users[user_id] = user
        self.emit("USER_REGISTERED", user_id)
        return user

    def delete_user(self, user_id: str) -> None:
        if user_id not in self.users:
            raise not_found(f"User {user_id} not found")
        for auth in [a for a in self.authorizations.values() if a.user_id == user_id]:
            self._remove_authorization(auth.id, announce=False)
        del self.users[user_id]
        self.emit("USER_DELETED", user_id)

    def authenticate(self, user_id: str, secret: str, *, allow_expired: bool = False) -> User:
        user = self.users.get(user_id)
        if (
            user is None
            or not secrets.compare_digest(user.secret.encode(), secret.encode())
            or (user.secret_expired and not allow_expired)
        ):
            raise ApiError(401, "1083", "Invalid userID or userSecret provided")
        return user

    def reset_user_secret(self, user_id: str, secret: str) -> User:
        user = self.authenticate(user_id, secret, allow_expired=True)
        user.secret = secrets.token_hex(16)
        user.secret_expired = False
        return user

    def expire_user_secret(self, user_id: str) -> None:
        """Test hook: user-scoped calls with the current secret now answer 401 1083."""
        self.users[user_id].secret_expired = True

    # -- connections -----------------------------------------------------------------------

    def brokerage(self, slug: str) -> Brokerage:
        try:
            return self.brokerages[slug.upper()]
        except KeyError:
            raise not_found(f"Brokerage {slug} not found") from None

    def _ensure_available(self, brokerage: Brokerage) -> None:
        if not brokerage.enabled:
            raise invalid(f"Brokerage {brokerage.slug} is disabled for new connections")
        if brokerage.maintenance_mode:
            raise invalid(f"Brokerage {brokerage.slug} is under maintenance")

    def _resolve_type(self, brokerage: Brokerage, connection_type: str) -> str:
        if connection_type == "trade-if-available":
            return "trade" if brokerage.allows_trading else "read"
        if connection_type not in ("read", "trade"):
            raise invalid(f"connectionType: invalid value {connection_type!r}")
        return connection_type

    def create_connection(self, user_id: str, slug: str, connection_type: str) -> Authorization:
        """Connect `user_id` to brokerage `slug`; the brokerage's seeded accounts appear."""
        if user_id not in self.users:
            raise not_found(f"User {user_id} not found")
        brokerage = self.brokerage(slug)
        self._ensure_available(brokerage)
        now = self.now()
        count = sum(1 for a in self.authorizations.values() if a.user_id == user_id)
        auth = Authorization(
            id=self.new_id("authorization"),
            user_id=user_id,
            slug=brokerage.slug,
            type=self._resolve_type(brokerage, connection_type),
            name=f"Connection-{count + 1}",
            created_at=now,
            updated_at=now,
            last_refresh=None,
        )
        self.authorizations[auth.id] = auth
        accounts = [
            self._seed_account(auth, index, template)
            for index, template in enumerate(seed.account_templates(brokerage.slug))
        ]
        self.emit(
            "CONNECTION_ADDED", user_id, brokerageId=brokerage.id, brokerageAuthorizationId=auth.id
        )
        for account in accounts:
            self.emit(
                "NEW_ACCOUNT_AVAILABLE",
                user_id,
                accountId=account.id,
                brokerageAuthorizationId=auth.id,
            )
        return auth

    def reconnect(
        self, user_id: str, auth_id: str, connection_type: str, slug: str | None = None
    ) -> Authorization:
        """Fix (re-enable) a connection, possibly upgrading it to trade."""
        auth = self.get_authorization(user_id, auth_id)
        brokerage = self.brokerages[auth.slug]
        if slug is not None and slug.upper() != auth.slug:
            raise invalid(f"reconnect: connection {auth_id} belongs to {auth.slug}, not {slug}")
        self._ensure_available(brokerage)
        was_broken = auth.disabled
        auth.disabled = False
        auth.disabled_at = None
        wanted = self._resolve_type(brokerage, connection_type)
        if wanted == "trade":
            auth.type = "trade"
        auth.updated_at = self.now()
        event = "CONNECTION_FIXED" if was_broken else "CONNECTION_UPDATED"
        self.emit(event, user_id, brokerageAuthorizationId=auth.id)
        return auth

    def get_authorization(self, user_id: str, auth_id: str) -> Authorization:
        auth = self.authorizations.get(auth_id)
        if auth is None or auth.user_id != user_id:
            raise not_found()
        return auth

    def user_authorizations(self, user_id: str) -> list[Authorization]:
        return [a for a in self.authorizations.values() if a.user_id == user_id]

    def disable_authorization(self, auth_id: str) -> Authorization:
        """Test hook (and POST .../disable): the connection breaks like a real one would."""
        auth = self.authorizations[auth_id]
        was_broken = auth.disabled
        auth.disabled = True
        auth.disabled_at = self.now()
        auth.updated_at = auth.disabled_at
        if not was_broken:
            self.emit("CONNECTION_BROKEN", auth.user_id, brokerageAuthorizationId=auth.id)
        return auth

    def refresh_authorization(self, user_id: str, auth_id: str) -> Authorization:
        auth = self.get_authorization(user_id, auth_id)
        if auth.disabled:
            raise connection_disabled(auth_id)
        now = self.now()
        if auth.last_refresh is not None and now - auth.last_refresh < self.refresh_interval:
            raise ApiError(
                429, "throttled", "Connection refreshed too recently. Please try again later."
            )
        auth.last_refresh = now
        auth.updated_at = now
        # SnapTrade syncs each account, then announces it (sent even when a part failed).
        for account in [a for a in self.accounts.values() if a.authorization_id == auth_id]:
            self.holdings_updated(account)
        return auth

    def holdings_updated(self, account: Account) -> None:
        self.emit(
            "ACCOUNT_HOLDINGS_UPDATED",
            account.user_id,
            accountId=account.id,
            brokerageId=self.brokerages[account.slug].id,
            brokerageAuthorizationId=account.authorization_id,
        )

    def delete_authorization(self, user_id: str, auth_id: str) -> None:
        self.get_authorization(user_id, auth_id)
        self._remove_authorization(auth_id)

    def _remove_authorization(self, auth_id: str, *, announce: bool = True) -> None:
        auth = self.authorizations[auth_id]
        for account in [a for a in self.accounts.values() if a.authorization_id == auth_id]:
            del self.accounts[account.id]
            self.activities.pop(account.id, None)
            for order_id in [o for o, v in self.orders.items() if v.account_id == account.id]:
                del self.orders[order_id]
            if announce:
                self.emit(
                    "ACCOUNT_REMOVED",
                    auth.user_id,
                    accountId=account.id,
                    brokerageAuthorizationId=auth_id,
                )
        del self.authorizations[auth_id]
        if announce:
            brokerage_id = self.brokerages[auth.slug].id
            self.emit(
                "CONNECTION_DELETED",
                auth.user_id,
                brokerageId=brokerage_id,
                brokerageAuthorizationId=auth_id,
            )

    # -- accounts --------------------------------------------------------------------------

    def _seed_account(self, auth: Authorization, index: int, t: seed.AccountTemplate) -> Account:
        now = auth.created_at
        account_id = sandbox_uuid("account", auth.id, str(index))
        account = Account(
            id=account_id,
            authorization_id=auth.id,
            user_id=auth.user_id,
            slug=auth.slug,
            name=t.name,
            number=t.number,
            raw_type=t.raw_type,
            margin=t.margin,
            base_currency=t.base_currency,
            cash=dict(t.cash),
            holdings=[
                Holding(
                    seed.SYMBOLS[h.symbol] if h.symbol else None,
                    h.units,
                    h.cost_basis,
                    h.option,
                    h.cash_equivalent,
                )
                for h in t.holdings
            ],
            created_at=now,
            is_paper=t.is_paper,
            institution_account_id=str(40000000 + int(account_id[:6], 16) % 10000000),
        )
        self.accounts[account_id] = account
        self._seed_history(account)
        return account

    def _seed_history(self, account: Account) -> None:
        """A deposit, one BUY per security, a dividend and matching orders, in the past."""
        now = account.created_at
        acts: list[Activity] = []

        def act(kind: str, days: float, **kw: object) -> Activity:
            a = Activity(
                id=sandbox_uuid("activity", account.id, str(len(acts))),
                account_id=account.id,
                type=kind,
                trade_date=now - days * DAY,
                **kw,  # type: ignore[arg-type]
            )
            acts.append(a)
            return a

        deposit = sum(
            (h.market_value for h in account.holdings if h.currency == "USD"), Decimal(0)
        ) + account.cash.get("USD", Decimal(0))
        act(
            "CONTRIBUTION",
            45,
            symbol=None,
            units=Decimal(0),
            price=Decimal(0),
            amount=deposit.quantize(Decimal("0.01")),
            currency="USD",
            description="ACH DEPOSIT",
        )
        securities = [h for h in account.holdings if h.symbol is not None and h.option is None]
        for n, h in enumerate(securities):
            assert h.symbol is not None
            days = 40 - n
            ref = sandbox_uuid("order", account.id, "seed", str(n))
            act(
                "BUY",
                days,
                symbol=h.symbol,
                units=h.units,
                price=h.cost_basis,
                amount=-(h.units * h.cost_basis).quantize(Decimal("0.01")),
                currency=h.symbol.currency,
                description=f"BOUGHT {h.units} {h.symbol.symbol} @ {h.cost_basis}",
                external_reference_id=ref,
            )
            placed = now - days * DAY
            self.orders[ref] = Order(
                brokerage_order_id=ref,
                account_id=account.id,
                symbol=h.symbol,
                action="BUY",
                order_type="Market",
                time_in_force="Day",
                units=h.units,
                limit_price=None,
                stop_price=None,
                status="EXECUTED",
                placed_at=placed,
                updated_at=placed,
                executed_at=placed,
                execution_price=h.cost_basis,
                filled_units=h.units,
            )
        if securities:
            first = securities[0]
            assert first.symbol is not None
            per_unit = (first.price * Decimal("0.006")).quantize(Decimal("0.0001"))
            act(
                "DIVIDEND",
                5,
                symbol=first.symbol,
                units=Decimal(0),
                price=per_unit,
                amount=(per_unit * first.units).quantize(Decimal("0.01")),
                currency=first.symbol.currency,
                description=f"DIVIDEND {first.symbol.symbol}",
            )
            # One open limit order (well below market) so cancel has something to cancel.
            ref = sandbox_uuid("order", account.id, "open")
            placed = now - DAY
            self.orders[ref] = Order(
                brokerage_order_id=ref,
                account_id=account.id,
                symbol=first.symbol,
                action="BUY",
                order_type="Limit",
                time_in_force="GTC",
                units=Decimal(1),
                limit_price=(first.price * Decimal("0.8")).quantize(Decimal("0.01")),
                stop_price=None,
                status="ACCEPTED",
                placed_at=placed,
                updated_at=placed,
            )
        self.activities[account.id] = acts

    def user_accounts(self, user_id: str) -> list[Account]:
        return [a for a in self.accounts.values() if a.user_id == user_id]

    def get_account(self, user_id: str, account_id: str) -> Account:
        account = self.accounts.get(account_id)
        if account is None or account.user_id != user_id:
            raise not_found()
        return account

    def data_account(self, user_id: str, account_id: str) -> Account:
        """An account whose data is being read; a disabled connection answers 402."""
        account = self.get_account(user_id, account_id)
        if self.disabled_data_error and self.authorizations[account.authorization_id].disabled:
            raise connection_disabled(account.authorization_id)
        return account

    def account_orders(self, account_id: str) -> list[Order]:
        return sorted(
            (o for o in self.orders.values() if o.account_id == account_id),
            key=lambda o: o.placed_at,
            reverse=True,
        )

    # -- symbols ---------------------------------------------------------------------------

    @staticmethod
    def find_symbol(ticker: str) -> SymbolInfo | None:
        return seed.SYMBOLS.get(ticker.upper())

    @staticmethod
    def symbol_by_id(symbol_id: str) -> SymbolInfo | None:
        for s in seed.SYMBOLS.values():
            if s.id == symbol_id:
                return s
        return None

    @staticmethod
    def search_symbols(substring: str) -> list[SymbolInfo]:
        q = substring.strip().lower()
        return [
            s
            for s in seed.SYMBOLS.values()
            if not q or s.symbol.lower().startswith(q) or q in s.description.lower()
        ]

    # -- trading ---------------------------------------------------------------------------

    def trading_account(self, user_id: str, account_id: str) -> Account:
        """The account, if its connection may trade; otherwise 403 1066 (402 if disabled)."""
        account = self.get_account(user_id, account_id)
        auth = self.authorizations[account.authorization_id]
        brokerage = self.brokerages[account.slug]
        if auth.disabled:
            raise connection_disabled(auth.id)
        if auth.type != "trade":
            raise forbidden(
                "User does not have permission to access this resource: the connection is read-only"
            )
        if not brokerage.allows_trading:
            raise forbidden(
                "User does not have permission to access this resource: "
                f"{brokerage.display_name} does not allow trading"
            )
        if not brokerage.available:
            raise ApiError(503, "3002", f"Brokerage {brokerage.slug} is unavailable")
        return account

    def find_client_order(self, account_id: str, client_order_id: str) -> Order | None:
        for order in self.orders.values():
            if order.account_id == account_id and order.client_order_id == client_order_id:
                return order
        return None

    def place_order(
        self,
        account: Account,
        symbol: SymbolInfo,
        action: str,
        order_type: str,
        time_in_force: str,
        units: Decimal,
        limit_price: Decimal | None,
        stop_price: Decimal | None,
        client_order_id: str | None = None,
    ) -> Order:
        """Market orders fill at once at the seed price; others rest open (ACCEPTED)."""
        if units <= 0:
            raise invalid("units: must be greater than 0")
        if order_type in ("Limit", "StopLimit") and limit_price is None:
            raise invalid("price: required for Limit and StopLimit orders")
        if order_type in ("Stop", "StopLimit") and stop_price is None:
            raise invalid("stop: required for Stop and StopLimit orders")
        holding = account.holding_for(symbol)
        if action == "SELL" and (holding is None or holding.units < units):
            raise invalid("units: cannot sell more units than held")
        cost = units * (limit_price if limit_price is not None else symbol.price)
        if action == "BUY" and cost > account.buying_power(symbol.currency):
            raise invalid("Trade could not be placed: insufficient buying power")
        now = self.now()
        order = Order(
            brokerage_order_id=self.new_id("order"),
            account_id=account.id,
            symbol=symbol,
            action=action,
            order_type=order_type,
            time_in_force=time_in_force,
            units=units,
            limit_price=limit_price,
            stop_price=stop_price,
            status="ACCEPTED",
            placed_at=now,
            updated_at=now,
            client_order_id=client_order_id,
        )
        if order_type == "Market":
            self._fill(account, order)
        self.orders[order.brokerage_order_id] = order
        if order.status == "EXECUTED":
            self.trade_updated(account, order)
        return order

    def trade_updated(self, account: Account, order: Order) -> None:
        self.emit(
            "TRADE_UPDATE",
            account.user_id,
            accountId=account.id,
            brokerageAuthorizationId=account.authorization_id,
            order=order,
        )

    def _fill(self, account: Account, order: Order) -> None:
        price = order.symbol.price
        sign = Decimal(1) if order.action == "BUY" else Decimal(-1)
        holding = account.holding_for(order.symbol)
        if holding is None:
            holding = Holding(order.symbol, Decimal(0), price)
            account.holdings.append(holding)
        if sign > 0:
            total_cost = holding.units * holding.cost_basis + order.units * price
            holding.cost_basis = (total_cost / (holding.units + order.units)).quantize(
                Decimal("0.0001")
            )
        holding.units += sign * order.units
        if holding.units == 0:
            account.holdings.remove(holding)
        amount = (order.units * price).quantize(Decimal("0.01"))
        currency = order.symbol.currency
        account.cash[currency] = account.cash.get(currency, Decimal(0)) - sign * amount
        now = self.now()
        account.holdings_changed_at = now
        order.status = "EXECUTED"
        order.execution_price = price
        order.filled_units = order.units
        order.executed_at = now
        order.updated_at = now
        acts = self.activities.setdefault(account.id, [])
        acts.append(
            Activity(
                id=self.new_id("activity"),
                account_id=account.id,
                type=order.action,
                symbol=order.symbol,
                units=order.units,
                price=price,
                amount=-sign * amount,
                currency=currency,
                trade_date=now,
                description=f"{order.action} {order.units} {order.symbol.symbol} @ {price}",
                external_reference_id=order.brokerage_order_id,
            )
        )

    def cancel_order(self, account: Account, brokerage_order_id: str) -> Order:
        order = self.orders.get(brokerage_order_id)
        if order is None or order.account_id != account.id:
            # The spec lists only 200, 400 and 500 for cancel: an unknown order is a 400 there.
            raise invalid(f"Order {brokerage_order_id} not found")
        if not order.is_open:
            raise invalid(f"Order {brokerage_order_id} is {order.status} and cannot be cancelled")
        order.status = "CANCELED"
        order.canceled_units = order.units - order.filled_units
        order.updated_at = self.now()
        self.trade_updated(account, order)
        return order

    # -- connection portal -----------------------------------------------------------------

    def create_session(
        self,
        user_id: str,
        *,
        broker: str | None,
        custom_redirect: str | None,
        immediate_redirect: bool,
        reconnect: str | None,
        connection_type: str,
    ) -> PortalSession:
        session = PortalSession(
            id=self.new_id("portal-session"),
            token=secrets.token_urlsafe(24),
            user_id=user_id,
            broker=broker,
            custom_redirect=custom_redirect,
            immediate_redirect=immediate_redirect,
            reconnect=reconnect,
            connection_type=connection_type,
            created_at=self.now(),
        )
        self.sessions[session.id] = session
        return session

    def portal_session(self, token: str, session_id: str) -> PortalSession:
        """A live session; 404 unknown, 410 expired or already used."""
        session = self.sessions.get(session_id)
        if session is None or not secrets.compare_digest(session.token, token):
            raise not_found("Unknown connection portal session")
        if session.used:
            raise ApiError(410, "1011", "This connection portal link was already used")
        if self.now() - session.created_at > self.session_ttl:
            raise ApiError(410, "1011", "This connection portal link has expired")
        return session
