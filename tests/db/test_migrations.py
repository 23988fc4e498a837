"""Migrations: from empty, from the portfolio app's legacy tables, down to base, and the order of
the provider CHECK against its backfill."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy.pool import NullPool

import brokerlink.models  # noqa: F401
from brokerlink.db import migrate
from brokerlink.db.base import Base
from brokerlink.db.session import create_engine
from brokerlink.db.types import IdType, Quantity, UTCDateTime

ALL_TABLES = {
    "auth_tokens",
    "accounts",
    "alembic_version",
    "connections",
    "cost_ledger",
    "orders",
    "portfolios",
    "positions",
    "provider_call_log",
    "refresh_log",
    "sign_in_attempts",
    "user_secrets_envelope",
    "users",
    "webhook_events",
}
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

users = sa.table(
    "users",
    sa.column("id", IdType),
    sa.column("email", sa.String),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
portfolios = sa.table(
    "portfolios",
    sa.column("id", IdType),
    sa.column("user_id", IdType),
    sa.column("name", sa.String),
    sa.column("base_currency", sa.String),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
legacy_positions = sa.table(
    "positions",
    sa.column("id", IdType),
    sa.column("portfolio_id", IdType),
    sa.column("user_id", IdType),
    sa.column("ticker", sa.String),
    sa.column("quantity", Quantity()),
    sa.column("currency", sa.String),
    sa.column("type", sa.String),
    sa.column("account_id", sa.String),
    sa.column("position_source", sa.String),
    sa.column("position_status", sa.String),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)

LEGACY_ROWS = [
    # id, user, ticker, quantity, account_id, position_source, position_status
    (1, 1, "AAPL", "10.12345678", "plaid-acc-1", "plaid", "active"),
    (2, 1, "MSFT", "3", "plaid-acc-1", "plaid", "active"),
    (3, 1, "VTI", "0.5", "plaid-acc-2", "plaid", "closed"),
    (4, 1, "HOUSE", "1", None, "manual", "active"),
    (5, 1, "SHOP", "7.25", "st-acc-9", "snaptrade", "active"),
    (6, 2, "BTC", "0.00000001", None, "manual", "active"),
]


async def _run_sync(url: str, fn, *args):
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            return await connection.run_sync(fn, *args)
    finally:
        await engine.dispose()


def _tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _seed_legacy(connection: sa.Connection, extra_rows=()) -> None:
    connection.execute(
        sa.insert(users),
        [
            {"id": 1, "email": "a@example.com", "created_at": NOW, "updated_at": NOW},
            {"id": 2, "email": "b@example.com", "created_at": NOW, "updated_at": NOW},
        ],
    )
    connection.execute(
        sa.insert(portfolios),
        [
            {"id": uid, "user_id": uid, "name": "Main", "base_currency": "USD"}
            | {"created_at": NOW, "updated_at": NOW}
            for uid in (1, 2)
        ],
    )
    connection.execute(
        sa.insert(legacy_positions),
        [
            {
                "id": pid,
                "portfolio_id": uid,
                "user_id": uid,
                "ticker": ticker,
                "quantity": Decimal(quantity),
                "currency": "USD",
                "type": "equity",
                "account_id": account,
                "position_source": source,
                "position_status": status,
                "created_at": NOW,
                "updated_at": NOW,
            }
            for pid, uid, ticker, quantity, account, source, status in [
                *LEGACY_ROWS,
                *extra_rows,
            ]
        ],
    )


def _backfilled(connection: sa.Connection) -> dict[int, tuple]:
    positions = Base.metadata.tables["positions"]
    accounts = Base.metadata.tables["accounts"]
    connections = Base.metadata.tables["connections"]
    query = (
        sa.select(
            positions.c.id,
            positions.c.provider,
            positions.c.quantity,
            positions.c.position_status,
            accounts.c.provider_account_id,
            accounts.c.capabilities,
            connections.c.provider_connection_id,
            connections.c.status,
            connections.c.user_id,
        )
        .join(accounts, accounts.c.id == positions.c.account_id)
        .join(connections, connections.c.id == accounts.c.connection_id)
    )
    return {row[0]: tuple(row[1:]) for row in connection.execute(query)}


def _legacy_positions(connection: sa.Connection) -> dict[int, tuple]:
    rows = connection.execute(
        sa.select(legacy_positions.c.id, legacy_positions.c.account_id, legacy_positions.c.quantity)
    )
    return {row[0]: (row[1], row[2]) for row in rows}


class TestUpgrade:
    @pytest.mark.asyncio
    async def test_from_empty_reaches_head_with_every_table(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url)

        assert await migrate.current_async(fresh_db_url) == tuple(migrate.heads())
        assert await _run_sync(fresh_db_url, _tables) == ALL_TABLES

    @pytest.mark.asyncio
    async def test_schema_matches_the_models(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url)

        def diff(connection):
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)

        assert await _run_sync(fresh_db_url, diff) == []

    @pytest.mark.asyncio
    async def test_from_legacy_positions_backfills_provider_and_accounts(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url, "0001")
        await _run_sync(fresh_db_url, _seed_legacy)

        await migrate.upgrade_async(fresh_db_url)

        rows = await _run_sync(fresh_db_url, _backfilled)
        no_caps = {"trading": False, "realtime": False}
        assert rows == {
            1: ("plaid", Decimal("10.12345678"), "active", "plaid-acc-1", no_caps)
            + ("legacy-1", "disabled", 1),
            2: ("plaid", Decimal("3.00000000"), "active", "plaid-acc-1", no_caps)
            + ("legacy-1", "disabled", 1),
            3: ("plaid", Decimal("0.50000000"), "inactive", "plaid-acc-2", no_caps)
            + ("legacy-1", "disabled", 1),
            4: ("manual", Decimal("1.00000000"), "active", "manual", no_caps)
            + ("manual-1", "active", 1),
            5: ("snaptrade", Decimal("7.25000000"), "active", "st-acc-9", no_caps)
            + ("legacy-1", "disabled", 1),
            6: ("manual", Decimal("0.00000001"), "active", "manual", no_caps)
            + ("manual-2", "active", 2),
        }

    @pytest.mark.asyncio
    async def test_legacy_duplicates_of_the_new_key_are_merged(self, fresh_db_url):
        duplicates = [
            (7, 1, "HOUSE", "2.5", None, "manual", "active"),  # sums into row 4
            (8, 1, "HOUSE", "9", None, "manual", "inactive"),  # dropped
            (9, 1, "OLD", "1", "plaid-acc-1", "plaid", "inactive"),
            (10, 1, "OLD", "2", "plaid-acc-1", "plaid", "inactive"),  # newest: kept
        ]
        await migrate.upgrade_async(fresh_db_url, "0001")
        await _run_sync(fresh_db_url, _seed_legacy, duplicates)

        await migrate.upgrade_async(fresh_db_url)

        rows = await _run_sync(fresh_db_url, _backfilled)
        assert sorted(rows) == [1, 2, 3, 4, 5, 6, 10]
        assert rows[4][1:3] == (Decimal("3.5"), "active")
        assert rows[10][1:3] == (Decimal("2"), "inactive")


class TestDowngrade:
    @pytest.mark.asyncio
    async def test_to_base_drops_every_table(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url)

        await migrate.downgrade_async(fresh_db_url, "base")

        assert await migrate.current_async(fresh_db_url) == ()
        assert await _run_sync(fresh_db_url, _tables) == {"alembic_version"}

    @pytest.mark.asyncio
    async def test_to_legacy_restores_account_ids_as_text(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url, "0001")
        await _run_sync(fresh_db_url, _seed_legacy)
        await migrate.upgrade_async(fresh_db_url)

        await migrate.downgrade_async(fresh_db_url, "0001")

        assert await _run_sync(fresh_db_url, _legacy_positions) == {
            1: ("plaid-acc-1", Decimal("10.12345678")),
            2: ("plaid-acc-1", Decimal("3.00000000")),
            3: ("plaid-acc-2", Decimal("0.50000000")),
            4: (None, Decimal("1.00000000")),
            5: ("st-acc-9", Decimal("7.25000000")),
            6: (None, Decimal("0.00000001")),
        }
        # ...and the round trip goes up again.
        await migrate.upgrade_async(fresh_db_url)
        assert len(await _run_sync(fresh_db_url, _backfilled)) == len(LEGACY_ROWS)


def _naive_provider_column(connection: sa.Connection) -> None:
    """The tempting order: add the column, constrain it to the two vendors, then backfill."""
    op = Operations(MigrationContext.configure(connection))
    op.add_column("positions", sa.Column("provider", sa.String(16), nullable=True))
    op.create_check_constraint(
        "ck_positions_provider", "positions", "provider IN ('snaptrade', 'plaid')"
    )
    positions = sa.table("positions", sa.column("provider"), sa.column("position_source"))
    connection.execute(sa.update(positions).values(provider=positions.c.position_source))


class TestProviderCheckOrder:
    @pytest.mark.asyncio
    async def test_naive_check_then_backfill_fails_on_postgresql_and_ours_passes(
        self, new_database
    ):
        url = new_database("postgresql")
        await migrate.upgrade_async(url, "0001")
        await _run_sync(url, _seed_legacy)

        with pytest.raises(sa.exc.IntegrityError, match="ck_positions_provider"):
            await _run_sync(url, _naive_provider_column)

        # The failed attempt rolled back; the real migration passes on the same data.
        await migrate.upgrade_async(url)
        providers = {pid: row[0] for pid, row in (await _run_sync(url, _backfilled)).items()}
        assert providers == {1: "plaid", 2: "plaid", 3: "plaid", 4: "manual"} | {
            5: "snaptrade",
            6: "manual",
        }


webhook_events = sa.table(
    "webhook_events",
    sa.column("id", IdType),
    sa.column("provider", sa.String),
    sa.column("event_id", sa.String),
    sa.column("event_type", sa.String),
    sa.column("received_at", UTCDateTime()),
    sa.column("result", sa.String),
)
BODY_HASH = "ab" * 32
OTHER_HASH = "cd" * 32


def _seed_webhook_events(connection: sa.Connection) -> None:
    rows = [
        ("plaid", f"sha256:{BODY_HASH}", "unverified", "refused:stale"),
        ("plaid", f"{OTHER_HASH}:1795500000", "HOLDINGS:DEFAULT_UPDATE", "handled"),
        ("snaptrade", "0b6e1cd2-wh", "ACCOUNT_HOLDINGS_UPDATED", "handled"),
    ]
    connection.execute(
        sa.insert(webhook_events),
        [
            {"provider": p, "event_id": e, "event_type": t, "received_at": NOW, "result": r}
            for p, e, t, r in rows
        ],
    )


def _webhook_rows(connection: sa.Connection) -> dict[str, tuple[Any, ...]]:
    columns = {c["name"] for c in sa.inspect(connection).get_columns("webhook_events")}
    hashed = "body_sha256" in columns
    query = "SELECT event_id, result" + (", body_sha256" if hashed else "") + " FROM webhook_events"
    return {row[0]: tuple(row[1:]) for row in connection.execute(sa.text(query))}


def _add_ignored(connection: sa.Connection, event_id: str) -> None:
    connection.execute(
        sa.insert(webhook_events).values(
            provider="snaptrade",
            event_id=event_id,
            event_type="SOMETHING_NEW",
            received_at=NOW,
            result="ignored",
        )
    )


class TestWebhookBodyHash:
    @pytest.mark.asyncio
    async def test_upgrade_keeps_the_hashes_the_ids_hold(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url, "0015")
        await _run_sync(fresh_db_url, _seed_webhook_events)
        with pytest.raises(sa.exc.IntegrityError):
            await _run_sync(fresh_db_url, _add_ignored, "future-wh")

        await migrate.upgrade_async(fresh_db_url, "0016")

        assert await _run_sync(fresh_db_url, _webhook_rows) == {
            f"sha256:{BODY_HASH}": ("refused:stale", BODY_HASH),
            f"{OTHER_HASH}:1795500000": ("handled", OTHER_HASH),
            "0b6e1cd2-wh": ("handled", None),
        }
        await _run_sync(fresh_db_url, _add_ignored, "future-wh")

    @pytest.mark.asyncio
    async def test_downgrade_records_ignored_as_handled_and_goes_up_again(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url, "0016")
        await _run_sync(fresh_db_url, _seed_webhook_events)
        await _run_sync(fresh_db_url, _add_ignored, "future-wh")

        await migrate.downgrade_async(fresh_db_url, "0015")

        rows = await _run_sync(fresh_db_url, _webhook_rows)
        assert rows["future-wh"] == ("handled",)
        assert rows[f"sha256:{BODY_HASH}"] == ("refused:stale",)
        with pytest.raises(sa.exc.IntegrityError):
            await _run_sync(fresh_db_url, _add_ignored, "future-wh-2")
        await migrate.upgrade_async(fresh_db_url)
        assert (await _run_sync(fresh_db_url, _webhook_rows))["future-wh"] == ("handled", None)


def _seed_call(connection: sa.Connection) -> None:
    """A call log row as 0015 kept it: `request_id` was the provider's id."""
    connection.execute(
        sa.text(
            "INSERT INTO provider_call_log (provider, institution, operation, request_id,"
            " latency_ms, result, status_code, occurred_at)"
            " VALUES ('plaid', 'chase', '/accounts/get', 'theirs-1', 12, 'ok', 200, :at)"
        ),
        {"at": NOW.replace(tzinfo=None)},
    )


def _call_columns(connection: sa.Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(connection).get_columns("provider_call_log")}


def _select_calls(columns: str):
    def read(connection: sa.Connection) -> list[tuple]:
        query = f"SELECT {columns} FROM provider_call_log ORDER BY id"  # noqa: S608 - constants
        return [tuple(row) for row in connection.execute(sa.text(query))]

    return read


def _insert_unknown_provider(connection: sa.Connection) -> None:
    connection.execute(
        sa.text(
            "INSERT INTO provider_call_log (provider, operation, latency_ms, result, occurred_at)"
            " VALUES ('nobody', 'x', 1, 'ok', :at)"
        ),
        {"at": NOW.replace(tzinfo=None)},
    )


class TestCallLogIds:
    """0017: the provider's request id keeps its values under its new name, beside our call id,
    the error code and the cost tag; and back."""

    NEW = {"call_id", "provider_request_id", "error_code", "cost_type", "cost_amount"}

    @pytest.mark.asyncio
    async def test_up_keeps_the_providers_ids_and_down_restores_them(self, fresh_db_url):
        await migrate.upgrade_async(fresh_db_url, "0015")
        await _run_sync(fresh_db_url, _seed_call)

        await migrate.upgrade_async(fresh_db_url)

        columns = await _run_sync(fresh_db_url, _call_columns)
        assert self.NEW <= columns
        assert "request_id" not in columns
        read = _select_calls(
            "provider_request_id, call_id, error_code, cost_type, cost_amount, institution"
        )
        assert await _run_sync(fresh_db_url, read) == [
            ("theirs-1", None, None, None, None, "chase")
        ]
        # The table was rebuilt on SQLite: its provider CHECK is still there.
        with pytest.raises(sa.exc.IntegrityError, match="provider"):
            await _run_sync(fresh_db_url, _insert_unknown_provider)

        await migrate.downgrade_async(fresh_db_url, "0015")

        columns = await _run_sync(fresh_db_url, _call_columns)
        assert not self.NEW & columns
        assert await _run_sync(fresh_db_url, _select_calls("request_id, operation")) == [
            ("theirs-1", "/accounts/get")
        ]
        with pytest.raises(sa.exc.IntegrityError, match="provider"):
            await _run_sync(fresh_db_url, _insert_unknown_provider)
        # ...and up again.
        await migrate.upgrade_async(fresh_db_url)
        assert await _run_sync(fresh_db_url, _select_calls("provider_request_id")) == [
            ("theirs-1",)
        ]
