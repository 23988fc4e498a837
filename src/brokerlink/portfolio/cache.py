"""A per-process cache of the consolidated portfolio, keyed by a data version read from the store.

Why: `GET /api/portfolio` consolidated every stored position on every request (loading
~300 rows, the user's accounts and connections, one refresh-log query per connection, then
building a ~300-holding response). The answer only changes when the data it is computed from
changes, so it is kept per (user, portfolio) and served again while a cheap fingerprint of that
data is unchanged.

What the fingerprint covers (`data_version`, one aggregate query, three result rows):

* the portfolio's positions, active and inactive: count, max(id), max(updated_at) and the sum
  of every row's updated_at in microseconds. The sum moves whenever any row is written (every
  writer stamps `updated_at`: bulk upserts, the deactivation pass of a sync, ORM edits of manual
  entries), even when transactions commit out of the order of their timestamps, which a
  max(updated_at) alone would miss;
* the user's accounts and connections (labels, duplicate detection, staleness, disabled
  connections): the same four aggregates;
* what the caller adds: the portfolio's name and the user's duplicate preferences (both already
  loaded by the request, so they cost no query).

Time also changes the answer: an account becomes stale `max_age` after its last sync. An entry
is therefore only served until the first fresh account would turn stale (and never to a clock
that went backwards). There is no TTL otherwise: after any committed write the next request
sees a different version and recomputes.

The version is read *before* the portfolio is computed, so a write landing in between can only
make the stored entry look older than its content (a harmless extra miss), never newer.

Invariants this relies on: every write to positions, accounts and connections that changes what
the portfolio shows stamps `updated_at` (the ORM's onupdate and the repositories' bulk
statements do; `mark_consolidated` does not, and changes nothing shown). The stored
`PortfolioOut` is handed to every hit: callers read it, never mutate it.

Entries are bounded (least recently used go first; DEFAULT_MAX_ENTRIES bounds the memory). Each
process has its own cache; since the version comes from the store, writes from other processes
(sync workers, the CLI) invalidate it too.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.models import Account, Connection
from brokerlink.models import Position as PositionRow
from brokerlink.portfolio.schemas import PortfolioOut

__all__ = ["DataVersion", "PortfolioCache", "data_version", "fresh_until", "preferences_key"]

#: Everything the cached answer was computed from, as comparable values.
DataVersion = tuple[Hashable, ...]

# A 300-position portfolio (110 holdings) holds ~0.4 MB as models: ~100 MB at most per process.
DEFAULT_MAX_ENTRIES = 256


def _stamp_sums(column: Any, dialect: str) -> list[ColumnElement[Any]]:
    """Exact sums of `column` (a UTCDateTime) over the rows, as integers."""
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC). Seconds and microseconds are summed apart:
        # SQLite's sum() raises on 64-bit overflow, which epoch microseconds reach at ~5,000 rows.
        seconds = cast(func.strftime("%s", column), Integer)
        fraction = cast(func.substr(column, 21, 6), Integer)
        return [func.sum(seconds), func.sum(fraction)]
    # PostgreSQL sums BIGINT into NUMERIC: exact, no overflow.
    return [func.sum(cast(func.extract("epoch", column) * 1_000_000, BigInteger)), literal(0)]


def _version_statement(dialect: str) -> Any:
    """The aggregate query, three rows (positions, accounts, connections): built once."""

    def aggregates(tag: str, table: Any) -> list[Any]:
        return [
            literal(tag, String).label("part"),
            func.count().label("rows"),
            func.max(table.id).label("max_id"),
            func.max(table.updated_at).label("last"),
            *_stamp_sums(table.updated_at, dialect),
        ]

    user_id = bindparam("user_id", type_=BigInteger)
    positions = select(*aggregates("positions", PositionRow)).where(
        PositionRow.portfolio_id == bindparam("portfolio_id", type_=BigInteger)
    )
    accounts = (
        select(*aggregates("accounts", Account))
        .join(Connection, Connection.id == Account.connection_id)
        .where(Connection.user_id == user_id)
    )
    connections = select(*aggregates("connections", Connection)).where(
        Connection.user_id == user_id
    )
    return union_all(positions, accounts, connections)


_STATEMENTS: dict[str, Any] = {}


async def data_version(
    session: AsyncSession, *, user_id: int, portfolio_id: int, extra: Iterable[Hashable] = ()
) -> DataVersion:
    """The fingerprint of what the user's consolidated portfolio is computed from (one query)."""
    dialect = session.get_bind().dialect.name
    statement = _STATEMENTS.get(dialect)
    if statement is None:
        statement = _STATEMENTS[dialect] = _version_statement(dialect)
    result = await session.execute(statement, {"user_id": user_id, "portfolio_id": portfolio_id})
    parts = sorted(tuple(row) for row in result.all())
    return (user_id, portfolio_id, *parts, *extra)


def fresh_until(
    accounts: Iterable[tuple[str, bool, datetime | None]], max_age: timedelta
) -> datetime | None:
    """When the first account that is fresh now turns stale by age alone (None: never).

    `accounts` are (provider, stale, last_synced_at) as `AccountsView` reports them; manual
    accounts are never stale.
    """
    limits = [
        synced + max_age
        for provider, stale, synced in accounts
        if provider != "manual" and not stale and synced is not None
    ]
    return min(limits) if limits else None


@dataclass(frozen=True, slots=True)
class _Entry:
    version: DataVersion
    value: PortfolioOut
    built_at: datetime
    valid_until: datetime | None


class PortfolioCache:
    """Consolidated portfolios per (user id, portfolio id), served while their version holds."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, int], _Entry] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(
        self, user_id: int, portfolio_id: int, version: DataVersion, *, now: datetime
    ) -> PortfolioOut | None:
        """The stored answer if it was computed from exactly `version` and is still in time."""
        key = (user_id, portfolio_id)
        entry = self._entries.get(key)
        if (
            entry is None
            or entry.version != version
            or now < entry.built_at
            or (entry.valid_until is not None and now > entry.valid_until)
        ):
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry.value

    def put(
        self,
        user_id: int,
        portfolio_id: int,
        version: DataVersion,
        value: PortfolioOut,
        *,
        now: datetime,
        valid_until: datetime | None,
    ) -> None:
        key = (user_id, portfolio_id)
        self._entries[key] = _Entry(version, value, now, valid_until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


def preferences_key(prefer: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The user's duplicate choices as part of a version."""
    return tuple(sorted(prefer.items()))
