"""`PlaidConnector`: the neutral investments contract over Plaid Items (read only, never trades).

What the connector knows of an Item comes from two places (`items.py`): the application's
`ItemDirectory` (the user's Items, the Item of an account, the Item of a webhook, and whether it
needs a new login: the connection's status) and the secret store, which holds exactly one secret
per Item, its access token, at `plaid/access_token/{user_id}/{item_id}`. Every call for one Item
reads that one secret once; nothing lists or scans the store (but the one-time move of a record
an older version wrote under its institution's slug).

Re-login state: `ITEM_LOGIN_REQUIRED`, from any call or from an `ITEM: ERROR` webhook, marks the
Item's connection in the directory. While marked, every call for that Item raises
`LoginRequired` without calling Plaid (removal excepted: it must always be possible to stop
billing). The mark is cleared by an `ITEM: LOGIN_REPAIRED` webhook, by `complete_update` (a
successful `/item/get` after update-mode Link) or by `complete_link` returning the same Item.
`PENDING_EXPIRATION` / `PENDING_DISCONNECT` only record `reconnect_by`: the Item keeps working
until then, and blocking it early would cut data the user still has.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from brokerlink.domain.enums import ConnectionAccess, Provider
from brokerlink.domain.errors import NotFound, ProviderError
from brokerlink.domain.models import (
    AccountSummary,
    Balance,
    Connection,
    Position,
    RefreshResult,
)
from brokerlink.log import get_logger
from brokerlink.providers.observe import call_context
from brokerlink.secrets.store import SecretStore

from . import wire
from .client import PlaidClient
from .errors import InvalidAccessToken, ItemNotFound, LoginRequired
from .item_events import WebhookOutcome, apply_item_webhook
from .items import ItemDirectory, ItemTokens, PlaidItem, adopt_legacy
from .linking import LinkProducts
from .normalize import (
    cash_by_account,
    from_plaid_account,
    from_plaid_balance,
    from_plaid_holdings,
)

__all__ = ["PlaidConnector", "WebhookOutcome", "slugify"]

_log = get_logger("brokerlink.providers.plaid")
T = TypeVar("T")
_INVESTMENT_TYPES = ("investment", "brokerage")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def slugify(name: str) -> str:
    """`First Platypus Bank` -> `first-platypus-bank`."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "institution"


class PlaidConnector:
    """`InvestmentsConnector` over Plaid for the app's own user ids. Capabilities: read only."""

    def __init__(
        self,
        client: PlaidClient,
        secrets: SecretStore,
        *,
        items: ItemDirectory,
        client_name: str = "brokerlink",
        country_codes: tuple[str, ...] = ("US",),
        products: tuple[str, ...] = ("investments",),
        webhook: str | None = None,
        completion_redirect_uri: str | None = None,
        realtime_balances: bool = False,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._items = items
        self._tokens = ItemTokens(
            secrets, on_migrated=lambda item_id, record: adopt_legacy(items, item_id, record)
        )
        self._client_name = client_name
        self._country_codes = country_codes
        self._products = products
        self._webhook = webhook
        self._completion_redirect_uri = completion_redirect_uri
        self._realtime_balances = realtime_balances
        self._clock = clock
        # (user_id, account_id) -> (item_id, plaid account type); filled by account listings.
        self._accounts: dict[tuple[str, str], tuple[str, str | None]] = {}

    @property
    def provider(self) -> Provider:
        return Provider.PLAID

    @property
    def client(self) -> PlaidClient:
        """The client it calls through (webhook verification asks it for Plaid's keys)."""
        return self._client

    # -- Items ------------------------------------------------------------------------------------

    async def _item(self, user_id: str, item_id: str, operation: str) -> PlaidItem:
        item = await self._items.item(item_id)
        if item is None or item.user_id != user_id:
            raise NotFound(
                f"{operation}: no Plaid item {item_id} for this user",
                provider=Provider.PLAID,
                operation=operation,
            )
        return item

    def _blocked(self, item: PlaidItem, operation: str) -> LoginRequired:
        err = LoginRequired(
            f"{operation}: ITEM_LOGIN_REQUIRED (item {item.item_id} needs Link update mode)",
            operation=operation,
            code="ITEM_LOGIN_REQUIRED",
        )
        err.item_id = err.connection_id = item.item_id
        return err

    async def _token(self, item: PlaidItem, operation: str) -> str:
        """The Item's access token (its one secret read), unless it needs a new login."""
        if item.login_required:
            raise self._blocked(item, operation)
        return await self._tokens.get(item.user_id, item.item_id, operation)

    async def _send(self, item: PlaidItem, call: Awaitable[T]) -> T:
        """Await a Plaid call for the Item, marking its connection when Plaid wants a login. The
        call is recorded with the Item's institution (a listing of several Items has none)."""
        try:
            with call_context(institution=item.institution_slug):
                return await call
        except LoginRequired as err:
            err.item_id = err.connection_id = item.item_id
            await self._items.set_login_required(item.item_id, True, str(err))
            _log.info("plaid.item.login_required", item_id=item.item_id)
            raise

    async def _set_login_required(self, item: PlaidItem, required: bool) -> PlaidItem:
        if item.login_required != required:
            await self._items.set_login_required(item.item_id, required)
            _log.info(
                "plaid.item.login_required" if required else "plaid.item.login_repaired",
                item_id=item.item_id,
            )
        return replace(item, login_required=required)

    # -- Link -------------------------------------------------------------------------------------

    async def create_link(
        self,
        user_id: str,
        *,
        institution_id: str | None = None,
        redirect_uri: str | None = None,
        webhook: str | None = None,
        update_item_id: str | None = None,
        completion_redirect_uri: str | None = None,
        products: LinkProducts | None = None,
    ) -> tuple[str, str | None]:
        """A Link token and its Hosted Link URL, asking for `products` (the connector's own
        products when None; `linking.products_for` gives them per kind of institution). With
        `update_item_id`, update mode for that Item (the way out of ITEM_LOGIN_REQUIRED), using
        the Item's own access token, and no products."""
        access_token = None
        if update_item_id is not None:
            item = await self._item(user_id, update_item_id, "create_link")
            access_token = await self._tokens.get(user_id, item.item_id, "create_link")
        completion = completion_redirect_uri or self._completion_redirect_uri
        wanted = products or LinkProducts(self._products)
        response = await self._client.link_token_create(
            client_user_id=user_id,
            client_name=self._client_name,
            products=wanted.products,
            required_if_supported_products=wanted.required_if_supported,
            optional_products=wanted.optional,
            country_codes=self._country_codes,
            webhook=webhook or self._webhook,
            redirect_uri=redirect_uri,
            institution_id=institution_id,
            access_token=access_token,
            hosted_link={"completion_redirect_uri": completion} if completion else {},
        )
        return response["link_token"], response.get("hosted_link_url")

    async def complete_link(
        self, user_id: str, public_token: str, institution_slug: str
    ) -> Connection:
        """Exchange Link's public token and store the Item's access token (its only secret).

        The connection the caller records from the answer is the Item's directory entry; until
        then `accounts_of_item` reads the new Item by its id."""
        # The slug names the connection in the store and in URLs.
        if not institution_slug or "/" in institution_slug:
            raise ValueError(
                f"institution_slug must be a non-empty name without '/': {institution_slug!r}"
            )
        exchanged = await self._client.item_public_token_exchange(public_token)
        access_token, item_id = exchanged["access_token"], exchanged["item_id"]
        # Stored before anything else can fail: a lost token is an Item billed for ever. The
        # name is the Item's, so the same Item linked again replaces its own token only.
        await self._tokens.put(user_id, item_id, access_token)
        institution_id: str | None = None
        institution_name = institution_slug
        try:
            item = (await self._client.item_get(access_token))["item"]
        except ProviderError as exc:
            _log.warning("plaid.item.details_unavailable", item_id=item_id, error_code=exc.code)
        else:
            institution_id = item.get("institution_id")
            institution_name = item.get("institution_name") or institution_name
        known = await self._items.item(item_id)
        if known is not None and known.user_id == user_id:
            await self._set_login_required(known, False)
        _log.info("plaid.item.linked", item_id=item_id, institution_id=institution_id)
        return Connection(
            provider=Provider.PLAID,
            connection_id=item_id,
            institution_name=institution_name,
            institution_slug=institution_slug,
            institution_id=institution_id,
            access=ConnectionAccess.READ,
            created_at=known.created_at if known is not None else self._clock(),
        )

    async def complete_hosted_link(
        self, user_id: str, link_token: str, institution_slug: str | None = None
    ) -> list[Connection]:
        """Read a finished Hosted Link session (`/link/token/get`) and store every Item it made."""
        response = await self._client.link_token_get(link_token)
        connections: list[Connection] = []
        for session in response.get("link_sessions") or []:
            results = session.get("results") or {}
            for added in results.get("item_add_results") or []:
                public_token = added.get("public_token")
                if not public_token:
                    continue
                institution = added.get("institution") or {}
                slug = institution_slug or slugify(str(institution.get("name") or "institution"))
                with call_context(institution=slug):
                    connections.append(await self.complete_link(user_id, public_token, slug))
        return connections

    async def complete_update(self, user_id: str, item_id: str) -> Connection:
        """After update-mode Link: confirm with `/item/get` and clear the re-login mark."""
        item = await self._item(user_id, item_id, "complete_update")
        token = await self._tokens.get(user_id, item_id, "complete_update")
        response = await self._client.item_get(token)
        error = response["item"].get("error") or {}
        if error.get("error_code") == "ITEM_LOGIN_REQUIRED":
            item = await self._set_login_required(item, True)
            raise self._blocked(item, "/item/get")
        item = await self._set_login_required(item, False)
        return self._connection(item)

    # -- InvestmentsConnector ---------------------------------------------------------------------

    def _connection(self, item: PlaidItem) -> Connection:
        return Connection(
            provider=Provider.PLAID,
            connection_id=item.item_id,
            institution_name=item.institution_name,
            institution_slug=item.institution_slug,
            institution_id=item.institution_id,
            access=ConnectionAccess.READ,
            disabled=item.login_required,
            created_at=item.created_at,
        )

    async def list_connections(self, user_id: str) -> list[Connection]:
        """The user's Items from the directory (no Plaid call, no secret read); those needing
        a new login are `disabled`."""
        return [self._connection(item) for item in await self._items.items(user_id)]

    async def _summaries(self, item: PlaidItem) -> list[AccountSummary]:
        token = await self._token(item, "/accounts/get")
        response = await self._send(item, self._client.accounts_get(token))
        # When Plaid last read the institution: the accounts' `data_as_of`.
        item_response = await self._send(item, self._client.item_get(token))
        reported = item_response.get("item") or {}
        institution_id = reported.get("institution_id")
        if isinstance(institution_id, str) and institution_id != item.institution_id:
            await self._items.set_institution_id(item.item_id, institution_id)
        name = item.institution_name or str(reported.get("institution_name") or "")
        accounts = response.get("accounts") or []
        for account in accounts:
            self._accounts[(item.user_id, account["account_id"])] = (
                item.item_id,
                account.get("type"),
            )
        return [
            from_plaid_account(
                account,
                connection_id=item.item_id,
                institution_name=name,
                index=i,
                item_status=item_response.get("status"),
            )
            for i, account in enumerate(accounts)
        ]

    async def list_accounts(self, user_id: str) -> list[AccountSummary]:
        """Every account of every Item, one token read per Item. An Item needing re-login
        raises `LoginRequired` rather than silently leaving its accounts out."""
        summaries: list[AccountSummary] = []
        for item in await self._items.items(user_id):
            summaries.extend(await self._summaries(item))
        return summaries

    async def accounts_of_item(self, user_id: str, item_id: str) -> list[AccountSummary]:
        """The accounts of one of the user's Items, also one the directory does not know yet
        (just linked: its token, under the user's name, is what proves it is theirs)."""
        item = await self._items.item(item_id)
        if item is not None and item.user_id != user_id:
            raise NotFound(
                f"/accounts/get: no Plaid item {item_id} for this user",
                provider=Provider.PLAID,
                operation="/accounts/get",
            )
        return await self._summaries(item or PlaidItem(user_id, item_id, institution_name=""))

    async def _account(
        self, user_id: str, account_id: str, operation: str
    ) -> tuple[PlaidItem, str | None]:
        """The Item holding the account, and the account's Plaid type when already known."""
        known = self._accounts.get((user_id, account_id))
        item = (
            await self._items.item(known[0])
            if known is not None
            else await self._items.item_of_account(user_id, account_id)
        )
        if item is None or item.user_id != user_id:
            raise NotFound(
                f"{operation}: no Plaid account {account_id} for this user",
                provider=Provider.PLAID,
                operation=operation,
            )
        return item, known[1] if known is not None else None

    async def _one_account(
        self, item: PlaidItem, token: str, account_id: str, operation: str
    ) -> Mapping[str, Any]:
        """`/accounts/get` for one account (which also says its type)."""
        response = await self._send(
            item, self._client.accounts_get(token, account_ids=[account_id])
        )
        for account in response.get("accounts") or []:
            if account.get("account_id") == account_id:
                self._accounts[(item.user_id, account_id)] = (item.item_id, account.get("type"))
                return account
        raise NotFound(
            f"{operation}: Plaid returned no account {account_id}",
            provider=Provider.PLAID,
            operation=operation,
        )

    async def get_holdings(self, user_id: str, account_id: str) -> list[Position]:
        item, plaid_type = await self._account(user_id, account_id, "get_holdings")
        token = await self._token(item, "get_holdings")
        if plaid_type not in _INVESTMENT_TYPES:
            # A bank account's only position is its cash (and an account not listed in this
            # process is asked for first: that answer says whether it is a bank account).
            account = await self._one_account(item, token, account_id, "get_holdings")
            if account.get("type") not in _INVESTMENT_TYPES:
                return from_plaid_holdings(
                    {"accounts": [account], "holdings": [], "securities": []},
                    account_id=account_id,
                )
        holdings = await self._send(
            item, self._client.investments_holdings_get(token, account_ids=[account_id])
        )
        return from_plaid_holdings(holdings, account_id=account_id)

    async def get_balances(self, user_id: str, account_id: str) -> list[Balance]:
        """Cash per currency. For investment accounts the cash is what the holdings hold (the
        balance only when they hold none), so it matches the cash positions exactly."""
        item, plaid_type = await self._account(user_id, account_id, "get_balances")
        token = await self._token(item, "get_balances")
        if plaid_type is None:
            plaid_type = (await self._one_account(item, token, account_id, "get_balances")).get(
                "type"
            )
        if plaid_type in _INVESTMENT_TYPES:
            holdings = await self._send(
                item, self._client.investments_holdings_get(token, account_ids=[account_id])
            )
            cash = cash_by_account(from_plaid_holdings(holdings, account_id=account_id))
            accounts: list[Any] = list(holdings.get("accounts") or [])
            operation = "/investments/holdings/get"
        else:
            fetch = (
                self._client.accounts_balance_get
                if self._realtime_balances
                else self._client.accounts_get
            )
            operation = "/accounts/balance/get" if self._realtime_balances else "/accounts/get"
            response = await self._send(item, fetch(token, account_ids=[account_id]))
            cash = {}
            accounts = list(response.get("accounts") or [])
        for i, account in enumerate(accounts):
            if account.get("account_id") == account_id:
                return from_plaid_balance(
                    account,
                    holdings_cash=cash.get(account_id, {}) or None,
                    index=i,
                    operation=operation,
                )
        raise NotFound(
            f"get_balances: Plaid returned no account {account_id}",
            provider=Provider.PLAID,
            operation=operation,
        )

    async def refresh(self, user_id: str, connection_id: str) -> RefreshResult:
        """`/investments/refresh`: billed per successful call by Plaid."""
        item = await self._item(user_id, connection_id, "refresh")
        token = await self._token(item, "/investments/refresh")
        response = await self._send(item, self._client.investments_refresh(token))
        return RefreshResult(
            provider=Provider.PLAID,
            connection_id=item.item_id,
            accepted=True,
            detail=f"request_id={response.get('request_id')}",
        )

    async def remove(self, user_id: str, connection_id: str) -> None:
        """`/item/remove` (ends Plaid's monthly billing), then forget the token. Works even while
        the Item needs re-login, and for an Item whose connection already took another Item's
        place (the token's name is the user's and the Item's: no directory entry is needed);
        an Item Plaid no longer knows is simply forgotten."""
        token = await self._tokens.get(user_id, connection_id, "remove")
        try:
            await self._client.item_remove(token)
        except (ItemNotFound, InvalidAccessToken):
            _log.info("plaid.item.already_gone", item_id=connection_id)
        await self._tokens.delete(user_id, connection_id)
        for key in [k for k, v in self._accounts.items() if v[0] == connection_id]:
            del self._accounts[key]

    # -- webhooks ---------------------------------------------------------------------------------

    async def handle_webhook(self, payload: wire.Webhook | Mapping[str, Any]) -> WebhookOutcome:
        """Apply an `ITEM` webhook to the Item's connection (`webhooks.apply_item_webhook`: found
        by its id in the directory, no secret read). The payload must already be verified
        (Plaid-Verification JWT) by the caller."""
        return await apply_item_webhook(self._items, payload)
