"""`PlaidConnector`: the neutral investments contract over Plaid Items (read only, never trades).

Each Item's access token lives in the secret store under
`plaid/access_token/{user_id}/{institution-slug}` as

    {access_token, item_id, institution_id, institution_name, created_at, login_required}

Tokens are always found by `item_id` (scanning the user's records), never by institution name or
slug: a user can link two logins at one institution, and a slug is only where the record sits.
A second Item at the same slug goes to `{slug}-2`, `{slug}-3`, … so no token is ever overwritten
(an overwritten token is an Item nobody can remove, billed monthly for ever).

Re-login state: `ITEM_LOGIN_REQUIRED`, from any call or from an `ITEM: ERROR` webhook, sets
`login_required` on the Item's record. While it is set every call for that Item raises
`LoginRequired` without calling Plaid (removal excepted: it must always be possible to stop
billing). It is cleared by an `ITEM: LOGIN_REPAIRED` webhook, by `complete_update` (a successful
`/item/get` after update-mode Link) or by `complete_link` returning the same Item.
`PENDING_EXPIRATION` / `PENDING_DISCONNECT` only record `reconnect_by`: the Item keeps working
until then, and blocking it early would cut data the user still has.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
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
from brokerlink.secrets.store import SecretNotFound, SecretStore, plaid_access_token_name

from . import wire
from .client import PlaidClient
from .errors import InvalidAccessToken, ItemNotFound, LoginRequired
from .linking import LinkProducts
from .normalize import (
    cash_by_account,
    from_plaid_account,
    from_plaid_balance,
    from_plaid_holdings,
)

__all__ = ["ItemRecord", "PlaidConnector", "WebhookOutcome", "slugify"]

_PREFIX = "plaid/access_token/"
_log = get_logger("brokerlink.providers.plaid")
T = TypeVar("T")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def slugify(name: str) -> str:
    """`First Platypus Bank` -> `first-platypus-bank`."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "institution"


@dataclass(frozen=True)
class ItemRecord:
    """One stored Item. `name` is the secret's name; the token is never in `repr`."""

    name: str
    user_id: str
    slug: str
    item_id: str
    access_token: str
    institution_id: str | None
    institution_name: str
    created_at: str | None
    login_required: bool
    reconnect_by: str | None = None

    def __repr__(self) -> str:
        return (
            f"ItemRecord(name={self.name!r}, item_id={self.item_id!r}, "
            f"login_required={self.login_required})"
        )

    def to_secret(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "access_token": self.access_token,
            "item_id": self.item_id,
            "institution_id": self.institution_id,
            "institution_name": self.institution_name,
            "created_at": self.created_at,
            "login_required": self.login_required,
        }
        if self.reconnect_by is not None:
            value["reconnect_by"] = self.reconnect_by
        return value


@dataclass(frozen=True)
class WebhookOutcome:
    """What `handle_webhook` did: `action` is `login_required`, `login_repaired`,
    `pending_expiration` or `ignored`."""

    action: str
    item_id: str | None = None
    user_id: str | None = None


class PlaidConnector:
    """`InvestmentsConnector` over Plaid for the app's own user ids. Capabilities: read only."""

    def __init__(
        self,
        client: PlaidClient,
        secrets: SecretStore,
        *,
        client_name: str = "brokerlink",
        country_codes: tuple[str, ...] = ("US",),
        products: tuple[str, ...] = ("investments",),
        webhook: str | None = None,
        completion_redirect_uri: str | None = None,
        realtime_balances: bool = False,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._secrets = secrets
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

    # -- records ----------------------------------------------------------------------------------

    @staticmethod
    def _parse_record(name: str, value: Mapping[str, Any]) -> ItemRecord | None:
        parts = name[len(_PREFIX) :].split("/")
        token, item_id = value.get("access_token"), value.get("item_id")
        if len(parts) != 2 or not isinstance(token, str) or not isinstance(item_id, str):
            return None
        return ItemRecord(
            name=name,
            user_id=parts[0],
            slug=parts[1],
            item_id=item_id,
            access_token=token,
            institution_id=value.get("institution_id"),
            institution_name=str(value.get("institution_name") or parts[1]),
            created_at=value.get("created_at"),
            login_required=bool(value.get("login_required", False)),
            reconnect_by=value.get("reconnect_by"),
        )

    async def _records(self, prefix: str) -> list[ItemRecord]:
        records: list[ItemRecord] = []
        for name in await self._secrets.list(prefix):
            try:
                value = await self._secrets.get(name)
            except SecretNotFound:
                continue  # removed between list and get
            record = self._parse_record(name, value)
            if record is None:
                _log.warning("plaid.item_record.invalid", secret_name=name)
                continue
            records.append(record)
        return records

    async def items(self, user_id: str) -> list[ItemRecord]:
        """The user's stored Items."""
        return await self._records(f"{_PREFIX}{user_id}/")

    async def _item(self, user_id: str, item_id: str, operation: str) -> ItemRecord:
        for record in await self.items(user_id):
            if record.item_id == item_id:
                return record
        raise NotFound(
            f"{operation}: no Plaid item {item_id} for this user",
            provider=Provider.PLAID,
            operation=operation,
        )

    async def _save(self, record: ItemRecord) -> None:
        await self._secrets.put(record.name, record.to_secret())

    async def _set_login_required(self, record: ItemRecord, required: bool) -> ItemRecord:
        if record.login_required == required:
            return record
        # Re-read so a concurrent update of other fields is not lost.
        try:
            value = dict(await self._secrets.get(record.name))
        except SecretNotFound:
            return record
        value["login_required"] = required
        await self._secrets.put(record.name, value)
        _log.info(
            "plaid.item.login_required" if required else "plaid.item.login_repaired",
            item_id=record.item_id,
        )
        return self._parse_record(record.name, value) or record

    def _blocked(self, record: ItemRecord, operation: str) -> LoginRequired:
        err = LoginRequired(
            f"{operation}: ITEM_LOGIN_REQUIRED (item {record.item_id} needs Link update mode)",
            operation=operation,
            code="ITEM_LOGIN_REQUIRED",
        )
        err.item_id = record.item_id
        return err

    async def _call(
        self, record: ItemRecord, operation: str, call: Callable[[str], Awaitable[T]]
    ) -> T:
        """Run `call(access_token)` for an Item, honouring and maintaining its re-login state."""
        if record.login_required:
            raise self._blocked(record, operation)
        try:
            return await call(record.access_token)
        except LoginRequired as err:
            err.item_id = record.item_id
            await self._set_login_required(record, True)
            raise

    async def _free_name(self, user_id: str, slug: str) -> str:
        taken = set(await self._secrets.list(f"{_PREFIX}{user_id}/"))
        base = plaid_access_token_name(user_id, slug)
        if base not in taken:
            return base
        n = 2
        while plaid_access_token_name(user_id, f"{slug}-{n}") in taken:
            n += 1
        return plaid_access_token_name(user_id, f"{slug}-{n}")

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
            access_token = (await self._item(user_id, update_item_id, "create_link")).access_token
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
        """Exchange Link's public token and store the Item's access token."""
        # Checked before the exchange: a token we then could not store would be lost.
        if not institution_slug or "/" in institution_slug:
            raise ValueError(
                f"institution_slug must be a non-empty name without '/': {institution_slug!r}"
            )
        exchanged = await self._client.item_public_token_exchange(public_token)
        access_token, item_id = exchanged["access_token"], exchanged["item_id"]
        existing = next((r for r in await self.items(user_id) if r.item_id == item_id), None)
        if existing is not None:
            record = replace(existing, access_token=access_token, login_required=False)
        else:
            record = ItemRecord(
                name=await self._free_name(user_id, institution_slug),
                user_id=user_id,
                slug=institution_slug,
                item_id=item_id,
                access_token=access_token,
                institution_id=None,
                institution_name=institution_slug,
                created_at=self._clock().isoformat(),
                login_required=False,
            )
        # Stored before anything else can fail: a lost token is an Item billed for ever.
        await self._save(record)
        try:
            item = (await self._client.item_get(access_token))["item"]
        except ProviderError as exc:
            _log.warning("plaid.item.details_unavailable", item_id=item_id, error_code=exc.code)
        else:
            record = replace(
                record,
                institution_id=item.get("institution_id") or record.institution_id,
                institution_name=item.get("institution_name") or record.institution_name,
            )
            await self._save(record)
        _log.info("plaid.item.linked", item_id=item_id, institution_id=record.institution_id)
        return self._connection(record)

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
                connections.append(await self.complete_link(user_id, public_token, slug))
        return connections

    async def complete_update(self, user_id: str, item_id: str) -> Connection:
        """After update-mode Link: confirm with `/item/get` and clear the re-login mark."""
        record = await self._item(user_id, item_id, "complete_update")
        response = await self._client.item_get(record.access_token)
        error = response["item"].get("error") or {}
        if error.get("error_code") == "ITEM_LOGIN_REQUIRED":
            record = await self._set_login_required(record, True)
            raise self._blocked(record, "/item/get")
        record = await self._set_login_required(record, False)
        return self._connection(record)

    # -- InvestmentsConnector ---------------------------------------------------------------------

    def _connection(self, record: ItemRecord) -> Connection:
        created = None
        if record.created_at:
            try:
                created = datetime.fromisoformat(record.created_at)
            except ValueError:
                created = None
        return Connection(
            provider=Provider.PLAID,
            connection_id=record.item_id,
            institution_name=record.institution_name,
            institution_slug=record.slug,
            access=ConnectionAccess.READ,
            disabled=record.login_required,
            created_at=created,
        )

    async def list_connections(self, user_id: str) -> list[Connection]:
        """The user's Items from the store (no Plaid call); re-login ones are `disabled`."""
        return [self._connection(r) for r in await self.items(user_id)]

    async def _accounts_of(self, record: ItemRecord) -> wire.AccountsGetResponse:
        response = await self._call(record, "/accounts/get", self._client.accounts_get)
        for account in response.get("accounts") or []:
            self._accounts[(record.user_id, account["account_id"])] = (
                record.item_id,
                account.get("type"),
            )
        return response

    async def list_accounts(self, user_id: str) -> list[AccountSummary]:
        """Every account of every Item. An Item needing re-login raises `LoginRequired`
        rather than silently leaving its accounts out."""
        summaries: list[AccountSummary] = []
        for record in await self.items(user_id):
            response = await self._accounts_of(record)
            # When Plaid last read the institution: the accounts' `data_as_of`.
            item = await self._call(record, "/item/get", self._client.item_get)
            summaries.extend(
                from_plaid_account(
                    account,
                    connection_id=record.item_id,
                    institution_name=record.institution_name,
                    index=i,
                    item_status=item.get("status"),
                )
                for i, account in enumerate(response.get("accounts") or [])
            )
        return summaries

    async def _record_for_account(
        self, user_id: str, account_id: str, operation: str
    ) -> tuple[ItemRecord, str | None]:
        records = await self.items(user_id)
        known = self._accounts.get((user_id, account_id))
        if known is not None:
            for record in records:
                if record.item_id == known[0]:
                    return record, known[1]
        blocked = None
        for record in records:
            if record.login_required:
                blocked = record
                continue
            await self._accounts_of(record)
            if (user_id, account_id) in self._accounts:
                return record, self._accounts[(user_id, account_id)][1]
        if blocked is not None:
            # The account may well belong to the Item we cannot read.
            raise self._blocked(blocked, operation)
        raise NotFound(
            f"{operation}: no Plaid account {account_id} for this user",
            provider=Provider.PLAID,
            operation=operation,
        )

    async def get_holdings(self, user_id: str, account_id: str) -> list[Position]:
        record, plaid_type = await self._record_for_account(user_id, account_id, "get_holdings")
        if plaid_type not in ("investment", "brokerage"):
            # A bank account's only position is its cash.
            accounts = await self._call(
                record,
                "/accounts/get",
                lambda token: self._client.accounts_get(token, account_ids=[account_id]),
            )
            return from_plaid_holdings(
                {"accounts": accounts.get("accounts") or [], "holdings": [], "securities": []},
                account_id=account_id,
            )
        holdings = await self._call(
            record,
            "/investments/holdings/get",
            lambda token: self._client.investments_holdings_get(token, account_ids=[account_id]),
        )
        return from_plaid_holdings(holdings, account_id=account_id)

    async def get_balances(self, user_id: str, account_id: str) -> list[Balance]:
        """Cash per currency. For investment accounts the cash is what the holdings hold (the
        balance only when they hold none), so it matches the cash positions exactly."""
        record, plaid_type = await self._record_for_account(user_id, account_id, "get_balances")
        if plaid_type in ("investment", "brokerage"):
            holdings = await self._call(
                record,
                "/investments/holdings/get",
                lambda token: self._client.investments_holdings_get(
                    token, account_ids=[account_id]
                ),
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
            response = await self._call(
                record, operation, lambda token: fetch(token, account_ids=[account_id])
            )
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
        record = await self._item(user_id, connection_id, "refresh")
        response = await self._call(
            record, "/investments/refresh", self._client.investments_refresh
        )
        return RefreshResult(
            provider=Provider.PLAID,
            connection_id=record.item_id,
            accepted=True,
            detail=f"request_id={response.get('request_id')}",
        )

    async def remove(self, user_id: str, connection_id: str) -> None:
        """`/item/remove` (ends Plaid's monthly billing), then forget the token. Works even while
        the Item needs re-login; an Item Plaid no longer knows is simply forgotten."""
        record = await self._item(user_id, connection_id, "remove")
        try:
            await self._client.item_remove(record.access_token)
        except (ItemNotFound, InvalidAccessToken):
            _log.info("plaid.item.already_gone", item_id=record.item_id)
        await self._secrets.delete(record.name)
        for key in [k for k, v in self._accounts.items() if v[0] == record.item_id]:
            del self._accounts[key]

    # -- webhooks ---------------------------------------------------------------------------------

    async def handle_webhook(self, payload: wire.Webhook | Mapping[str, Any]) -> WebhookOutcome:
        """Apply an `ITEM` webhook to the Item's re-login state. The payload must already be
        verified (Plaid-Verification JWT) by the caller."""
        webhook_type = payload.get("webhook_type")
        code = payload.get("webhook_code")
        item_id = payload.get("item_id")
        if webhook_type != "ITEM" or not isinstance(item_id, str):
            return WebhookOutcome("ignored", item_id if isinstance(item_id, str) else None)
        record = next((r for r in await self._records(_PREFIX) if r.item_id == item_id), None)
        if record is None:
            return WebhookOutcome("ignored", item_id)
        error = payload.get("error") or {}
        if (code == "ERROR" and error.get("error_code") == "ITEM_LOGIN_REQUIRED") or code in (
            "USER_PERMISSION_REVOKED",
        ):
            await self._set_login_required(record, True)
            return WebhookOutcome("login_required", item_id, record.user_id)
        if code == "LOGIN_REPAIRED":
            await self._set_login_required(record, False)
            return WebhookOutcome("login_repaired", item_id, record.user_id)
        if code in ("PENDING_EXPIRATION", "PENDING_DISCONNECT"):
            when = payload.get("consent_expiration_time") or payload.get("disconnect_time")
            value = record.to_secret()
            value["reconnect_by"] = when if isinstance(when, str) else ""
            await self._secrets.put(record.name, value)
            return WebhookOutcome("pending_expiration", item_id, record.user_id)
        return WebhookOutcome("ignored", item_id, record.user_id)
