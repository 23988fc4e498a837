"""In-memory state of the Plaid sandbox: link tokens, Link sessions, Items, rate windows.

One `PlaidSandboxState` per app (`app.state.sandbox`). Tests build one directly, inject a clock
and reach for the hooks: `product_ready_delay`, `rate_limits` (an empty dict turns them off),
`faults`, `items`, `webhooks` (the outbox of queued bodies) and `signer` (the webhook key).

Plaid's own state changes are modelled here: investments answer PRODUCT_NOT_READY until
`product_ready_delay` (times the institution's `ready_delay_factor`) has passed since the Item
was created; `reset_login` leaves ITEM_LOGIN_REQUIRED on the Item until update-mode Link
repairs it; each `/investments/refresh` moves every non-cash price by up to ±2%.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from brokerlink.sandbox._counts import RequestCounts
from brokerlink.sandbox._faults import FaultInjector
from brokerlink.sandbox.plaid import errors
from brokerlink.sandbox.plaid.errors import PlaidError
from brokerlink.sandbox.plaid.seed import (
    SECURITIES,
    AccountTemplate,
    HoldingTemplate,
    InstitutionSeed,
    SecuritySeed,
    stable_id,
)
from brokerlink.sandbox.plaid.seed_brokerages import SEEDED_INSTITUTIONS
from brokerlink.sandbox.plaid.webhooks import WebhookSigner

__all__ = [
    "DEFAULT_RATE_LIMITS",
    "SANDBOX_PASSWORD",
    "SANDBOX_USERNAME",
    "Account",
    "Item",
    "LinkSession",
    "LinkToken",
    "PlaidSandboxState",
    "RateLimit",
]

Clock = Callable[[], float]
SANDBOX_USERNAME = "user_good"
SANDBOX_PASSWORD = "pass_good"
PUBLIC_TOKEN_TTL = 30 * 60.0
LINK_TOKEN_TTL = 4 * 3600.0
UPDATE_LINK_TOKEN_TTL = 30 * 60.0
# "In the Sandbox, Items will transition to an ITEM_LOGIN_REQUIRED error state automatically
# after 30 days" ([SPEC] /sandbox/item/reset_login).
LOGIN_EXPIRY = 30 * 86400.0
# PENDING_EXPIRATION is sent "7 days before" the Item's consent expires.
EXPIRY_NOTICE = 7 * 86400.0
HOSTED_LINK_TTL = 30 * 60.0
# Plaid checks an Item's institution for new transactions "at least once a day, typically
# several times"; the sandbox does it every six hours from the Item's creation.
TRANSACTIONS_UPDATE_EVERY = 6 * 3600.0
INVESTMENT_ENDPOINTS = frozenset(
    {"/investments/holdings/get", "/investments/transactions/get", "/investments/refresh"}
)
# The account types a product needs among the Item's accounts to be added when it was asked for
# as `required_if_supported_products` or `optional_products` (no entry: any account will do).
PRODUCT_ACCOUNT_TYPES: dict[str, frozenset[str]] = {
    "investments": frozenset({"investment"}),
    "liabilities": frozenset({"credit", "loan"}),
    "auth": frozenset({"depository"}),
}


@dataclass(frozen=True)
class RateLimit:
    """Requests per rolling minute per Item and per client (None: no limit at that scope)."""

    per_item: int | None
    per_client: int | None
    code: str


# plaid.com/docs/errors/rate-limit-exceeded/ (production table; /accounts/get uses the Sandbox row).
DEFAULT_RATE_LIMITS: dict[str, RateLimit] = {
    "/accounts/get": RateLimit(100, 5000, "ACCOUNTS_LIMIT"),
    "/accounts/balance/get": RateLimit(5, 1200, "BALANCE_LIMIT"),
    "/institutions/get_by_id": RateLimit(None, 400, "INSTITUTIONS_GET_BY_ID_LIMIT"),
    "/investments/holdings/get": RateLimit(15, 2000, "INVESTMENT_HOLDINGS_GET_LIMIT"),
    "/investments/transactions/get": RateLimit(30, 20000, "INVESTMENT_TRANSACTIONS_LIMIT"),
    "/item/get": RateLimit(15, 5000, "ITEM_GET_LIMIT"),
    "/item/remove": RateLimit(30, 2000, "RATE_LIMIT"),
}


def _token(kind: str) -> str:
    return f"{kind}-sandbox-{uuid.uuid4()}"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Account:
    account_id: str
    template: AccountTemplate


@dataclass
class Item:
    """A linked login at one institution; `error` holds a persistent ITEM_LOGIN_REQUIRED."""

    item_id: str
    access_token: str
    institution: InstitutionSeed
    products: list[str]
    webhook: str | None
    created_at: float
    accounts: list[Account]
    investments_ready_at: float
    login_expires_at: float
    error: PlaidError | None = None
    refresh_epoch: int = 0
    last_investments_update: float | None = None
    last_webhook: tuple[float, str] | None = None
    expiry_announced: bool = False

    @property
    def login_deadline(self) -> float | None:
        """When the Item's login state next changes by itself: the expiry notice, then expiry."""
        if self.error is not None:
            return None
        if self.expiry_announced:
            return self.login_expires_at
        return self.login_expires_at - EXPIRY_NOTICE

    def account(self, account_id: str) -> Account | None:
        return next((a for a in self.accounts if a.account_id == account_id), None)


@dataclass
class LinkSession:
    link_session_id: str
    started_at: float
    finished_at: float | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    public_token: str | None = None
    item_id: str | None = None
    # Set when the user left Link without linking: Plaid's `exit` object (error, metadata).
    exit: dict[str, Any] | None = None


@dataclass
class LinkToken:
    link_token: str
    created_at: float
    expires_at: float
    client_name: str
    language: str
    country_codes: list[str]
    products: list[str]
    webhook: str | None
    redirect_uri: str | None
    hosted_link: dict[str, Any] | None
    user_id: str | None
    client_user_id: str | None
    update_item_id: str | None = None
    institution_id: str | None = None
    # Added to the Item only where the institution and the user's accounts support them.
    required_if_supported: list[str] = field(default_factory=list)
    optional: list[str] = field(default_factory=list)
    sessions: list[LinkSession] = field(default_factory=list)

    @property
    def completion_redirect_uri(self) -> str | None:
        value = (self.hosted_link or {}).get("completion_redirect_uri")
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class PriceDrift:
    """Holdings' prices move by up to ±max_pct per refresh, deterministically per epoch."""

    max_pct: float = 2.0

    def factor(self, security_id: str, item_id: str, epoch: int) -> float:
        if epoch == 0:
            return 1.0
        h = int.from_bytes(stable_id(security_id, item_id, str(epoch), length=8).encode(), "big")
        # Never exactly zero, so every refresh visibly moves every non-cash price.
        step = (h % 200 + 1) / 200.0 * self.max_pct / 100.0
        return 1.0 + (step if h % 2 else -step)


class PlaidSandboxState:
    """Everything the sandbox remembers; safe to share between requests of one event loop."""

    def __init__(
        self,
        *,
        client_id: str,
        secret: str,
        clock: Clock | None = None,
        product_ready_delay: float = 0.5,
        rate_limits: Mapping[str, RateLimit] | None = None,
        institutions: Mapping[str, InstitutionSeed] | None = None,
        faults: FaultInjector | None = None,
    ) -> None:
        self.client_id = client_id
        self.secret = secret
        self.clock: Clock = clock or time.time
        self.product_ready_delay = product_ready_delay
        self.rate_limits: dict[str, RateLimit] = dict(
            DEFAULT_RATE_LIMITS if rate_limits is None else rate_limits
        )
        self.institutions: dict[str, InstitutionSeed] = dict(institutions or SEEDED_INSTITUTIONS)
        self.securities: dict[str, SecuritySeed] = dict(SECURITIES)
        self.faults = faults or FaultInjector()
        # Every API request that reached the sandbox, per "METHOD /path" (admin routes read it).
        self.requests = RequestCounts()
        self.drift = PriceDrift()
        self.items: dict[str, Item] = {}
        self._by_access_token: dict[str, str] = {}
        self._public_tokens: dict[str, tuple[str, float]] = {}
        self.link_tokens: dict[str, LinkToken] = {}
        self.webhooks: list[tuple[str, dict[str, Any]]] = []
        # Told of every webhook queued (app.py hands them to the delivery).
        self.webhook_listener: Callable[[str, dict[str, Any]], None] | None = None
        self._next_login_check = float("inf")
        self.signer = WebhookSigner(self.now())
        self._windows: defaultdict[tuple[str, str, str], deque[float]] = defaultdict(deque)

    # -- basics -------------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock()

    def today(self) -> date:
        return datetime.fromtimestamp(self.now(), UTC).date()

    @staticmethod
    def new_request_id() -> str:
        return stable_id(secrets.token_hex(8), length=15)

    def check_credentials(self, client_id: str, secret: str) -> None:
        ok_id = secrets.compare_digest(client_id.encode(), self.client_id.encode())
        ok_secret = secrets.compare_digest(secret.encode(), self.secret.encode())
        if not (ok_id and ok_secret):
            raise errors.invalid_api_keys()

    # -- rate limits ----------------------------------------------------------------------------
    def hit_rate_limit(self, endpoint: str, item_id: str | None) -> None:
        """Count one request; raise RATE_LIMIT_EXCEEDED (429) once a window is full."""
        limit = self.rate_limits.get(endpoint)
        if limit is None:
            return
        now = self.now()
        scopes: list[tuple[str, int, str]] = []
        if limit.per_item is not None and item_id is not None:
            scopes.append(("item", limit.per_item, item_id))
        if limit.per_client is not None:
            scopes.append(("client", limit.per_client, self.client_id))
        for scope, allowed, key in scopes:
            window = self._windows[(endpoint, scope, key)]
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= allowed:
                target = "this item" if scope == "item" else "this client"
                self.requests.limited()
                raise PlaidError(
                    "RATE_LIMIT_EXCEEDED",
                    limit.code,
                    f"rate limit exceeded for attempts to access {target}. please try again later",
                    status=429,
                )
        for scope, _, key in scopes:
            self._windows[(endpoint, scope, key)].append(now)

    def reset_rate_limits(self) -> None:
        self._windows.clear()

    # -- institutions ---------------------------------------------------------------------------
    def institution(self, institution_id: str) -> InstitutionSeed:
        inst = self.institutions.get(institution_id)
        if inst is None:
            raise PlaidError(
                "INVALID_INPUT",
                "INVALID_INSTITUTION",
                "invalid institution_id provided",
            )
        return inst

    def search_institutions(
        self, query: str, products: Iterable[str] | None, country_codes: Iterable[str]
    ) -> list[InstitutionSeed]:
        wanted = set(products or ())
        countries = set(country_codes)
        q = query.strip().lower()
        found = [
            inst
            for inst in self.institutions.values()
            if q in inst.name.lower()
            and wanted <= set(inst.products)
            and countries & set(inst.country_codes)
        ]
        return found[:10]

    # -- items ----------------------------------------------------------------------------------
    def create_item(
        self,
        institution_id: str,
        products: Iterable[str],
        webhook: str | None,
        *,
        username: str = SANDBOX_USERNAME,
        password: str = SANDBOX_PASSWORD,
        required_if_supported: Iterable[str] = (),
        optional: Iterable[str] = (),
    ) -> Item:
        """A new Item. Every one of `products` must be supported, or PRODUCTS_NOT_SUPPORTED;
        `required_if_supported` and `optional` products are added only where the institution
        supports them and it holds an account they apply to (Plaid's Link does the same)."""
        inst = self.institution(institution_id)
        products = list(dict.fromkeys(products))
        missing = [p for p in products if p not in inst.products and p != "balance"]
        if missing:
            raise errors.products_not_supported(
                f"{inst.name} does not support the requested products: {', '.join(missing)}"
            )
        check_login(username, password)
        kinds = {t.type for t in inst.accounts}
        for product in (*required_if_supported, *optional):
            applies = PRODUCT_ACCOUNT_TYPES.get(product)
            if (
                product in inst.products
                and product not in products
                and (applies is None or applies & kinds)
            ):
                products.append(product)
        now = self.now()
        item_id = stable_id("item", secrets.token_hex(16))
        item = Item(
            item_id=item_id,
            access_token=_token("access"),
            institution=inst,
            products=products,
            webhook=webhook,
            created_at=now,
            accounts=[Account(stable_id("account", item_id, t.key), t) for t in inst.accounts],
            investments_ready_at=now + self.product_ready_delay * inst.ready_delay_factor,
            login_expires_at=now + LOGIN_EXPIRY,
            last_investments_update=now if "investments" in products else None,
        )
        self.items[item_id] = item
        self._by_access_token[item.access_token] = item_id
        self._watch_login(item)
        return item

    def issue_public_token(self, item: Item) -> str:
        token = _token("public")
        self._public_tokens[token] = (item.item_id, self.now() + PUBLIC_TOKEN_TTL)
        return token

    def exchange_public_token(self, public_token: str) -> Item:
        entry = self._public_tokens.pop(public_token, None)
        if entry is None or entry[1] < self.now() or entry[0] not in self.items:
            raise PlaidError(
                "INVALID_INPUT",
                "INVALID_PUBLIC_TOKEN",
                "could not find matching public token",
            )
        return self.items[entry[0]]

    def item_for(self, access_token: str) -> Item:
        item_id = self._by_access_token.get(access_token)
        if item_id is None or item_id not in self.items:
            raise errors.invalid_access_token()
        return self.items[item_id]

    def remove_item(self, item: Item) -> None:
        self.items.pop(item.item_id, None)
        self._by_access_token.pop(item.access_token, None)

    def usable(self, item: Item) -> Item:
        """Raise the Item's persistent error (ITEM_LOGIN_REQUIRED) before reading its data."""
        self.expire_login(item)
        if item.error is not None:
            raise item.error
        return item

    def investments_ready(self, item: Item) -> Item:
        """PRODUCT_NOT_READY until the first extraction ends; adds the product on first use."""
        self.usable(item)
        if "investments" not in item.institution.products:
            raise errors.products_not_supported(
                f"{item.institution.name} does not support investments"
            )
        if "investments" not in item.products:
            # Plaid adds the product on first call (and starts billing it); extraction follows.
            item.products.append("investments")
            item.investments_ready_at = self.now() + self.product_ready_delay
        if self.now() < item.investments_ready_at:
            raise errors.product_not_ready()
        if not self.investment_accounts(item):
            raise PlaidError(
                "ITEM_ERROR",
                "NO_INVESTMENT_ACCOUNTS",
                "There are no valid investment account(s) associated with this Item. See "
                "https://plaid.com/docs/api/#item-errors for more information.",
            )
        return item

    @staticmethod
    def investment_accounts(item: Item) -> list[Account]:
        return [a for a in item.accounts if a.template.type == "investment"]

    def reset_login(self, item: Item) -> None:
        if item.error is None:
            self._login_required(item)
        item.error = errors.item_login_required()

    def _login_required(self, item: Item) -> None:
        item.error = errors.item_login_required()
        self.record_webhook(item, "ITEM", "ERROR", error=item.error.webhook_body())

    def expire_login(self, item: Item) -> None:
        """Apply the passage of time to the Item's login: PENDING_EXPIRATION in the week
        before it expires, then ITEM_LOGIN_REQUIRED (ITEM ERROR) once it has."""
        now = self.now()
        if item.error is not None:
            return
        if now >= item.login_expires_at:
            self._login_required(item)
        elif not item.expiry_announced and now >= item.login_expires_at - EXPIRY_NOTICE:
            item.expiry_announced = True
            # Plaid documents PENDING_EXPIRATION for European Items and PENDING_DISCONNECT for
            # US/CA ones; the sandbox sends PENDING_EXPIRATION for every Item.
            self.record_webhook(
                item,
                "ITEM",
                "PENDING_EXPIRATION",
                consent_expiration_time=timestamp(item.login_expires_at),
            )

    def check_logins(self) -> None:
        """Expire what time has expired, across Items, once the next deadline has passed (so a
        request costs O(1) until then)."""
        if self.now() < self._next_login_check:
            return
        self._next_login_check = float("inf")
        for item in list(self.items.values()):
            self.expire_login(item)
            self._watch_login(item)

    def _watch_login(self, item: Item) -> None:
        deadline = item.login_deadline
        if deadline is not None:
            self._next_login_check = min(self._next_login_check, deadline)

    def set_login_expiry(self, item: Item, expires_at: float) -> None:
        """Move the Item's login expiry (admin); its notice and expiry follow from there."""
        item.login_expires_at = expires_at
        item.expiry_announced = False
        self.expire_login(item)
        self._watch_login(item)

    def transactions_updated_at(self, item: Item) -> float:
        """When Plaid last read the Item's accounts and balances: every
        `TRANSACTIONS_UPDATE_EVERY` since it was created, and never past the login expiring."""
        until = min(self.now(), item.login_expires_at)
        return item.created_at + (until - item.created_at) // TRANSACTIONS_UPDATE_EVERY * (
            TRANSACTIONS_UPDATE_EVERY
        )

    def repair(self, item: Item) -> None:
        item.error = None
        item.login_expires_at = self.now() + LOGIN_EXPIRY
        item.expiry_announced = False
        self._watch_login(item)

    def refresh_investments(self, item: Item) -> None:
        self.investments_ready(item)
        if not item.institution.supports_investments_refresh:
            raise errors.products_not_supported(
                f"{item.institution.name} does not support investments refresh"
            )
        self.move_holdings(item)

    def move_holdings(self, item: Item) -> None:
        """A new extraction: every non-cash price moves, then HOLDINGS DEFAULT_UPDATE."""
        item.refresh_epoch += 1
        item.last_investments_update = self.now()
        self.record_webhook(item, "HOLDINGS", "DEFAULT_UPDATE")

    # -- prices ---------------------------------------------------------------------------------
    def price(self, item: Item, security: SecuritySeed) -> float:
        if security.type == "cash":
            return security.close_price
        factor = self.drift.factor(security.security_id, item.item_id, item.refresh_epoch)
        return round(security.close_price * factor, 4)

    def holdings(
        self, item: Item, account: Account
    ) -> list[tuple[HoldingTemplate, SecuritySeed, float]]:
        return [
            (h, self.securities[h.security], self.price(item, self.securities[h.security]))
            for h in account.template.holdings
        ]

    def account_value(self, item: Item, account: Account) -> float:
        return round(sum(h.quantity * price for h, _, price in self.holdings(item, account)), 2)

    # -- webhooks -------------------------------------------------------------------------------
    def record_webhook(
        self, item: Item, webhook_type: str, webhook_code: str, **fields: Any
    ) -> dict[str, Any] | None:
        """Queue a webhook body for the Item's URL (`webhooks` is the outbox tests read)."""
        item.last_webhook = (self.now(), webhook_code)
        if not item.webhook:
            return None
        body: dict[str, Any] = {
            "webhook_type": webhook_type,
            "webhook_code": webhook_code,
            "item_id": item.item_id,
            "environment": "sandbox",
        }
        if webhook_type == "HOLDINGS":
            body.update(error=None, new_holdings=0, updated_holdings=self._holding_count(item))
        elif webhook_type == "INVESTMENTS_TRANSACTIONS":
            body.update(
                error=None, new_investments_transactions=0, cancelled_investments_transactions=0
            )
        body.update(fields)
        self._queue(item.webhook, body)
        return body

    def _queue(self, url: str, body: dict[str, Any]) -> None:
        self.webhooks.append((url, body))
        if self.webhook_listener is not None:
            self.webhook_listener(url, body)

    def record_link_webhook(self, token: LinkToken, session: LinkSession) -> None:
        """LINK / SESSION_FINISHED, sent by default for Hosted Link sessions."""
        if not token.webhook or token.hosted_link is None:
            return
        public = [session.public_token] if session.public_token else []
        body: dict[str, Any] = {
            "webhook_type": "LINK",
            "webhook_code": "SESSION_FINISHED",
            "status": "SUCCESS",
            "link_session_id": session.link_session_id,
            "link_token": token.link_token,
            "public_tokens": public,
            "environment": "sandbox",
        }
        if public:
            body["public_token"] = public[0]
            # Hosted Link also announces each added Item on its own.
            self._queue(
                token.webhook,
                {
                    "webhook_type": "LINK",
                    "webhook_code": "ITEM_ADD_RESULT",
                    "link_session_id": session.link_session_id,
                    "link_token": token.link_token,
                    "public_token": public[0],
                    "environment": "sandbox",
                },
            )
        if token.user_id is not None:
            body["user_id"] = token.user_id
        self._queue(token.webhook, body)

    def _holding_count(self, item: Item) -> int:
        return sum(len(a.template.holdings) for a in item.accounts)

    # -- link -----------------------------------------------------------------------------------
    def create_link_token(
        self,
        *,
        client_name: str,
        language: str,
        country_codes: list[str],
        products: list[str],
        webhook: str | None,
        redirect_uri: str | None,
        hosted_link: dict[str, Any] | None,
        user_id: str | None,
        client_user_id: str | None,
        access_token: str | None,
        institution_id: str | None,
        required_if_supported: list[str] | None = None,
        optional: list[str] | None = None,
    ) -> LinkToken:
        now = self.now()
        update_item_id = None
        if access_token is not None:
            update_item_id = self.item_for(access_token).item_id
            ttl = UPDATE_LINK_TOKEN_TTL
        else:
            ttl = LINK_TOKEN_TTL
        if hosted_link is not None:
            lifetime = hosted_link.get("url_lifetime_seconds")
            ttl = float(lifetime) if isinstance(lifetime, int) and lifetime > 0 else HOSTED_LINK_TTL
        token = LinkToken(
            link_token=_token("link"),
            created_at=now,
            expires_at=now + ttl,
            client_name=client_name,
            language=language,
            country_codes=country_codes,
            products=products,
            webhook=webhook,
            redirect_uri=redirect_uri,
            hosted_link=hosted_link,
            user_id=user_id,
            client_user_id=client_user_id,
            update_item_id=update_item_id,
            institution_id=institution_id,
            required_if_supported=list(required_if_supported or ()),
            optional=list(optional or ()),
        )
        self.link_tokens[token.link_token] = token
        return token

    def link_token(self, link_token: str, *, live: bool = False) -> LinkToken:
        token = self.link_tokens.get(link_token)
        if token is None or (live and token.expires_at < self.now()):
            raise PlaidError(
                "INVALID_INPUT",
                "INVALID_LINK_TOKEN",
                "provided link token is expired or invalid",
            )
        return token

    def link_institutions(self, token: LinkToken) -> list[InstitutionSeed]:
        """What the Link page offers: institutions that support every product in `products`
        (required-if-supported and optional products never hide an institution)."""
        if token.update_item_id is not None:
            return [self.items[token.update_item_id].institution]
        if token.institution_id is not None:
            return [self.institution(token.institution_id)]
        wanted = set(token.products)
        return [i for i in self.institutions.values() if wanted <= set(i.products)]

    def open_session(self, token: LinkToken) -> LinkSession:
        """The page's current session: reuse the unfinished one, else start another."""
        for session in token.sessions:
            if session.finished_at is None:
                return session
        session = LinkSession(str(uuid.uuid4()), self.now())
        self._event(session, "OPEN", {})
        token.sessions.append(session)
        return session

    def _event(self, session: LinkSession, name: str, metadata: dict[str, Any]) -> None:
        session.events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_name": name,
                "timestamp": _iso(self.now()),
                "event_metadata": {"request_id": self.new_request_id(), **metadata},
            }
        )

    def complete_link(
        self, token: LinkToken, institution_id: str, username: str, password: str
    ) -> LinkSession:
        """The user submitted the Link form: log in, create or repair the Item, finish."""
        self.link_token(token.link_token, live=True)
        session = self.open_session(token)
        inst = self.institution(institution_id)
        if inst not in self.link_institutions(token):
            raise errors.products_not_supported(f"{inst.name} does not offer those products")
        meta = {"institution_id": inst.institution_id, "institution_name": inst.name}
        self._event(session, "SELECT_INSTITUTION", meta)
        self._event(session, "SUBMIT_CREDENTIALS", meta)
        try:
            check_login(username, password)
            if token.update_item_id is not None:
                item = self.items.get(token.update_item_id)
                if item is None:
                    raise errors.invalid_access_token()
                self.repair(item)
                self.record_webhook(item, "ITEM", "LOGIN_REPAIRED")
            else:
                item = self.create_item(
                    inst.institution_id,
                    token.products,
                    token.webhook,
                    required_if_supported=token.required_if_supported,
                    optional=token.optional,
                )
                session.public_token = self.issue_public_token(item)
        except PlaidError as e:
            error_meta = {**meta, "error_code": e.error_code, "error_type": e.error_type}
            self._event(session, "ERROR", error_meta)
            raise
        session.item_id = item.item_id
        self._event(session, "HANDOFF", meta)
        session.finished_at = self.now()
        self.record_link_webhook(token, session)
        return session

    def exit_link(self, token: LinkToken, error: PlaidError | None) -> LinkSession:
        """The user left Link (Cancel, or Exit after an error it cannot get past)."""
        session = self.open_session(token)
        status = "requires_credentials" if error is None else "institution_not_supported"
        self._event(
            session,
            "EXIT",
            {"exit_status": status, **({"error_code": error.error_code} if error else {})},
        )
        session.exit = {
            "error": error.body(self.new_request_id()) if error else None,
            "metadata": {
                "status": status,
                "link_session_id": session.link_session_id,
                "request_id": self.new_request_id(),
            },
        }
        session.finished_at = self.now()
        return session


def check_login(username: str, password: str) -> None:
    """user_good / pass_good logs in; `error_<CODE>` passwords simulate that Item error."""
    if username == SANDBOX_USERNAME and password.startswith("error_") and len(password) > 6:
        code = password.removeprefix("error_")
        if code == "INSTITUTION_DOWN":
            raise PlaidError(
                "INSTITUTION_ERROR",
                code,
                "this institution is not currently responding to this request. please try "
                "again soon",
                display_message="This financial institution is not currently responding to "
                "requests. We apologize for the inconvenience.",
            )
        raise PlaidError("ITEM_ERROR", code, f"simulated {code} from the sandbox credentials")
    if (username, password) != (SANDBOX_USERNAME, SANDBOX_PASSWORD):
        raise errors.invalid_credentials()


def timestamp(ts: float | None) -> str | None:
    return None if ts is None else _iso(ts)


def days_before(today: date, days: int) -> date:
    return today - timedelta(days=days)
