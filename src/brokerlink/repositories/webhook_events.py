"""Webhook events: recorded once per provider and event id, then marked with their outcome.

`record` is the replay guard: an `INSERT … ON CONFLICT DO NOTHING` on the unique
(provider, event_id), so of two deliveries of one event racing in two processes exactly one
inserts; the other learns it was seen. An event with no id of its own (Plaid's) is known by its
body instead: `copies` finds the deliveries of the same body, and `lock_body` serialises the
transactions that look for them and record one (so two copies racing cannot both be recorded).
The reads are what the operator dashboard shows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from brokerlink.db.types import UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models import Account, Connection, ConnectionStatus, WebhookEvent
from brokerlink.repositories._base import Repository

__all__ = [
    "HOLDINGS_EVENT_TYPES",
    "SilentAccount",
    "WebhookEventRepository",
    "epoch_seconds",
    "silent_accounts_query",
    "silent_connection_ids",
]

# The events that say an account's holdings changed: SnapTrade's per account, Plaid's per item.
HOLDINGS_EVENT_TYPES: Mapping[Provider, str] = {
    Provider.SNAPTRADE: "ACCOUNT_HOLDINGS_UPDATED",
    Provider.PLAID: "HOLDINGS:DEFAULT_UPDATE",
}


def epoch_seconds(session: AsyncSession, column: Any) -> ColumnElement[Any]:
    """Seconds since 1970 of a UTC timestamp column, in SQL, on either backend (SQLite keeps
    the timestamp as text; julianday reads it)."""
    if session.get_bind().dialect.name == "sqlite":
        return (func.julianday(column) - 2440587.5) * 86400.0
    return func.extract("epoch", column)


def _insert_ignoring_duplicates(
    session: AsyncSession, values: dict[str, Any], conflict: tuple[str, ...]
) -> Any:
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return (
            postgresql.insert(WebhookEvent)
            .values(values)
            .on_conflict_do_nothing(index_elements=list(conflict))
        )
    if dialect == "sqlite":
        return (
            sqlite.insert(WebhookEvent)
            .values(values)
            .on_conflict_do_nothing(index_elements=list(conflict))
        )
    raise NotImplementedError(f"no insert-or-ignore for dialect {dialect!r}")


# -- missing webhooks: one query for the operator dashboard and the schedule -----------------


def silent_accounts_query(
    older_than: datetime, providers: Collection[Provider] | None = None
) -> Select[Any]:
    """(Account, Connection, last_webhook, since) of every silent account: at an active
    connection of `providers` (default: every webhook-capable one), its last holdings webhook
    (naming the account, or its whole connection: Plaid's item-level updates) or, lacking
    any, its last sync (else its link) older than `older_than`. The connection is an alias,
    so the query can sit inside another over `connections` without being correlated to it."""
    wanted = [p for p in HOLDINGS_EVENT_TYPES if providers is None or p in providers]
    types = [HOLDINGS_EVENT_TYPES[p] for p in wanted]
    at = func.max(WebhookEvent.received_at, type_=UTCDateTime())
    by_account = (
        select(WebhookEvent.account_id.label("account_id"), at.label("at"))
        .where(WebhookEvent.event_type.in_(types), WebhookEvent.account_id.is_not(None))
        .group_by(WebhookEvent.account_id)
        .subquery()
    )
    by_connection = (
        select(WebhookEvent.connection_id.label("connection_id"), at.label("at"))
        .where(
            WebhookEvent.event_type.in_(types),
            WebhookEvent.account_id.is_(None),
            WebhookEvent.connection_id.is_not(None),
        )
        .group_by(WebhookEvent.connection_id)
        .subquery()
    )
    # The later of the two; NULL-safe on both backends (SQLite has no GREATEST).
    last_webhook = case(
        (by_account.c.at.is_(None), by_connection.c.at),
        (by_connection.c.at.is_(None), by_account.c.at),
        (by_account.c.at > by_connection.c.at, by_account.c.at),
        else_=by_connection.c.at,
    )
    since = func.coalesce(last_webhook, Account.last_synced_at, Account.created_at)
    connection = aliased(Connection, name="silent_connection")
    return (
        select(
            Account,
            connection,
            last_webhook.label("last_webhook"),
            since.label("since"),
        )
        .join(connection, Account.connection_id == connection.id)
        .outerjoin(by_account, by_account.c.account_id == Account.id)
        .outerjoin(by_connection, by_connection.c.connection_id == connection.id)
        .where(
            connection.provider.in_(wanted),
            connection.status == ConnectionStatus.ACTIVE,
            since < older_than,
        )
    )


def silent_connection_ids(
    older_than: datetime, providers: Collection[Provider] | None = None
) -> Select[Any]:
    """The connections that hold at least one silent account (`silent_accounts_query`)."""
    return (
        silent_accounts_query(older_than, providers)
        .with_only_columns(Account.connection_id)
        .distinct()
    )


# -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SilentAccount:
    """An account whose holdings no webhook has mentioned for a while."""

    account_id: int
    connection_id: int
    provider: Provider
    institution: str
    name: str | None
    last_webhook_at: datetime | None
    last_synced_at: datetime | None
    since: datetime  # the last webhook, else the last sync, else when it was linked


class WebhookEventRepository(Repository):
    """Every webhook a provider sent, once per event id."""

    async def record(
        self,
        *,
        provider: Provider,
        event_id: str,
        event_type: str,
        event_at: datetime | None,
        received_at: datetime | None = None,
        result: str = "accepted",
        connection_id: int | None = None,
        account_id: int | None = None,
        error: str | None = None,
        body_sha256: str | None = None,
    ) -> bool:
        """Keep the event; False (and nothing written) when this provider's event id was seen."""
        values = {
            "provider": provider.value,
            "event_id": event_id,
            "event_type": event_type,
            "event_at": event_at,
            "received_at": received_at or utcnow(),
            "result": result,
            "connection_id": connection_id,
            "account_id": account_id,
            "error": error,
            "body_sha256": body_sha256,
        }
        statement = _insert_ignoring_duplicates(self.session, values, ("provider", "event_id"))
        outcome = await self.session.execute(statement.returning(WebhookEvent.id))
        return outcome.scalar_one_or_none() is not None

    async def mark(
        self,
        *,
        provider: Provider,
        event_id: str,
        result: str,
        error: str | None = None,
        connection_id: int | None = None,
        account_id: int | None = None,
    ) -> bool:
        """Set how the event ended (and what it turned out to concern); False when unknown."""
        changes: dict[str, Any] = {"result": result, "error": error}
        if connection_id is not None:
            changes["connection_id"] = connection_id
        if account_id is not None:
            changes["account_id"] = account_id
        outcome = await self.session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.provider == provider, WebhookEvent.event_id == event_id)
            .values(**changes)
            .returning(WebhookEvent.id)
        )
        return outcome.scalar_one_or_none() is not None

    async def retake(
        self, *, provider: Provider, event_id: str, received_at: datetime | None = None
    ) -> bool:
        """Take a `failed` event back to `accepted` for another delivery of it; True for exactly
        one of any number of racing deliveries (one conditional UPDATE)."""
        outcome = await self.session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.provider == provider,
                WebhookEvent.event_id == event_id,
                WebhookEvent.result == "failed",
            )
            .values(result="accepted", error=None, received_at=received_at or utcnow())
            .returning(WebhookEvent.id)
        )
        return outcome.scalar_one_or_none() is not None

    async def lock_body(self, provider: Provider, body_sha256: str) -> None:
        """Serialise, until the transaction ends, the transactions about this provider's body.

        PostgreSQL: a transaction-level advisory lock on a key drawn from the provider and the
        hash. SQLite needs none: every write transaction begins IMMEDIATE, which holds the
        database's write lock until it ends.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        digest = hashlib.blake2b(
            f"brokerlink:webhook-body:{provider.value}:{body_sha256}".encode(), digest_size=8
        ).digest()
        key = int.from_bytes(digest, "big", signed=True)
        await self.session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    async def copies(
        self, provider: Provider, body_sha256: str, *, signed_since: datetime
    ) -> list[WebhookEvent]:
        """This provider's verified events (accepted, in any outcome: refusals are not events)
        with this body, signed (`event_at`) at or after `signed_since`; oldest first."""
        rows = await self.session.scalars(
            select(WebhookEvent)
            .where(
                WebhookEvent.provider == provider,
                WebhookEvent.body_sha256 == body_sha256,
                WebhookEvent.event_at >= signed_since,
                WebhookEvent.result.not_like("refused:%"),
            )
            .order_by(WebhookEvent.id)
        )
        return list(rows)

    async def get(self, provider: Provider, event_id: str) -> WebhookEvent | None:
        return await self.session.scalar(
            select(WebhookEvent).where(
                WebhookEvent.provider == provider, WebhookEvent.event_id == event_id
            )
        )

    def _lag(self) -> ColumnElement[Any]:
        return epoch_seconds(self.session, WebhookEvent.received_at) - epoch_seconds(
            self.session, WebhookEvent.event_at
        )

    async def lag_stats(
        self, since: datetime, until: datetime
    ) -> dict[Provider, tuple[int, float, float]]:
        """Per provider, over events received in [since, until] that carry the provider's time:
        (events, p50 lag, worst lag) in seconds. The p50 is the nearest-rank median (the
        ⌈n/2⌉-th smallest), found by the database on both backends."""
        window = and_(
            WebhookEvent.received_at >= since,
            WebhookEvent.received_at <= until,
            WebhookEvent.event_at.is_not(None),
        )
        lag = self._lag()
        rows = await self.session.execute(
            select(WebhookEvent.provider, func.count(), func.max(lag))
            .where(window)
            .group_by(WebhookEvent.provider)
        )
        stats: dict[Provider, tuple[int, float, float]] = {}
        for provider, count, worst in rows.all():
            median = await self.session.scalar(
                select(lag)
                .where(window, WebhookEvent.provider == provider)
                .order_by(lag)
                .offset((count + 1) // 2 - 1)
                .limit(1)
            )
            stats[Provider(provider)] = (int(count), float(median or 0.0), float(worst or 0.0))
        return stats

    async def silent_accounts(
        self,
        older_than: datetime,
        *,
        providers: Collection[Provider] | None = None,
        limit: int = 50,
    ) -> tuple[int, list[SilentAccount]]:
        """Accounts of active connections at a webhook-capable provider (or at `providers`)
        whose last holdings webhook (for the account, or for its whole connection: Plaid's
        item-level updates) or, lacking any, whose last sync is older than `older_than`: how
        many, and the `limit` oldest. The schedule claims from the same query
        (`silent_connection_ids`)."""
        query = silent_accounts_query(older_than, providers)
        since = query.selected_columns.since
        silent = query.add_columns(
            # Every match, counted before the limit applies (one query, not two).
            func.count().over().label("total"),
        )
        rows = (await self.session.execute(silent.order_by(since, Account.id).limit(limit))).all()
        found = [
            SilentAccount(
                account_id=account.id,
                connection_id=connection.id,
                provider=connection.provider,
                institution=connection.institution_name,
                name=account.name,
                last_webhook_at=last,
                last_synced_at=account.last_synced_at,
                since=when,
            )
            for account, connection, last, when, _ in rows
        ]
        return (int(rows[0].total) if rows else 0), found
