"""Provider store: connections, accounts, logs, cost ledger, secret envelopes; positions upgraded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 13:00:00 UTC

Legacy positions (see 0001) become provider positions:

* `provider` is backfilled from `position_source`: 'snaptrade' -> snaptrade, 'plaid' -> plaid,
  anything else (the app wrote 'manual') -> manual. The CHECK on `provider` admits all three
  and is created only after the backfill: a CHECK of snaptrade/plaid alone would reject the
  backfilled manual rows (tests/db/test_migrations.py shows that order failing on PostgreSQL).
* `account_id` (free text, NULL for manual entries) becomes a foreign key to `accounts`: each
  (user, provider) gets one connection and each legacy account id one account under it. Manual
  rows go to the user's manual connection (`manual-<user id>`) and its account 'manual'; imported
  provider connections (`legacy-<user id>`) are `disabled` until the user links them again.
* Any `position_status` other than 'active' becomes 'inactive'.
* Legacy rows sharing the new unique key (portfolio, ticker, account, provider), e.g. two manual
  entries of one ticker, are merged: the active rows' quantities are summed into the oldest active
  row (if none is active, the newest row is kept) and the others are deleted.

Downgrade restores the legacy shape (account ids back to text; manual rows get NULL).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import IdType, JSONType, Money, Quantity, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = ("snaptrade", "plaid", "manual")
CONNECTION_STATUSES = ("active", "broken", "disabled")
ACCOUNT_TYPES = ("brokerage", "bank", "retirement", "other")
POSITION_STATUSES = ("active", "inactive")
REFRESH_TRIGGERS = ("manual", "scheduled", "webhook")
REFRESH_STATUSES = ("requested", "accepted", "rejected", "failed", "completed")
NO_CAPABILITIES = {"trading": False, "realtime": False}


def sql_in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _timestamps() -> list[sa.Column[Any]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def _id() -> sa.Column[Any]:
    return sa.Column("id", IdType, primary_key=True, autoincrement=True)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"), ondelete=ondelete
    )


def _create_tables() -> None:
    op.create_table(
        "connections",
        _id(),
        sa.Column("user_id", IdType, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_connection_id", sa.String(128), nullable=False),
        sa.Column("institution_slug", sa.String(128), nullable=True),
        sa.Column("institution_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("last_synced_at", UTCDateTime(), nullable=True),
        sa.Column("last_manual_refresh_at", UTCDateTime(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        _fk("connections", "user_id", "users", "CASCADE"),
        sa.UniqueConstraint(
            "provider",
            "provider_connection_id",
            name=op.f("uq_connections_provider_provider_connection_id"),
        ),
        sa.CheckConstraint(sql_in("provider", PROVIDERS), name=op.f("ck_connections_provider")),
        sa.CheckConstraint(
            sql_in("status", CONNECTION_STATUSES), name=op.f("ck_connections_status")
        ),
    )
    op.create_index(op.f("ix_connections_user_id"), "connections", ["user_id"])

    op.create_table(
        "accounts",
        _id(),
        sa.Column("connection_id", IdType, nullable=False),
        sa.Column("provider_account_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(8), nullable=True),
        sa.Column("number_mask", sa.String(16), nullable=True),
        sa.Column("capabilities", JSONType, nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        _fk("accounts", "connection_id", "connections", "CASCADE"),
        sa.UniqueConstraint(
            "connection_id",
            "provider_account_id",
            name=op.f("uq_accounts_connection_id_provider_account_id"),
        ),
        sa.CheckConstraint(sql_in("type", ACCOUNT_TYPES), name=op.f("ck_accounts_type")),
    )
    op.create_index(op.f("ix_accounts_connection_id"), "accounts", ["connection_id"])

    op.create_table(
        "refresh_log",
        _id(),
        sa.Column("connection_id", IdType, nullable=False),
        sa.Column("user_id", IdType, nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("requested_at", UTCDateTime(), nullable=False),
        sa.Column("completed_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_log")),
        _fk("refresh_log", "connection_id", "connections", "CASCADE"),
        _fk("refresh_log", "user_id", "users", "CASCADE"),
        sa.CheckConstraint(sql_in("provider", PROVIDERS), name=op.f("ck_refresh_log_provider")),
        sa.CheckConstraint(
            sql_in("trigger", REFRESH_TRIGGERS), name=op.f("ck_refresh_log_trigger")
        ),
        sa.CheckConstraint(sql_in("status", REFRESH_STATUSES), name=op.f("ck_refresh_log_status")),
    )
    op.create_index(op.f("ix_refresh_log_user_id"), "refresh_log", ["user_id"])
    op.create_index(
        "ix_refresh_log_connection_id_requested_at",
        "refresh_log",
        ["connection_id", "requested_at"],
    )

    op.create_table(
        "cost_ledger",
        _id(),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("user_id", IdType, nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_ledger")),
        _fk("cost_ledger", "user_id", "users", "SET NULL"),
        sa.CheckConstraint(sql_in("provider", PROVIDERS), name=op.f("ck_cost_ledger_provider")),
    )
    op.create_index(
        "ix_cost_ledger_provider_occurred_at", "cost_ledger", ["provider", "occurred_at"]
    )
    op.create_index("ix_cost_ledger_user_id_occurred_at", "cost_ledger", ["user_id", "occurred_at"])

    op.create_table(
        "provider_call_log",
        _id(),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("institution", sa.String(128), nullable=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("user_id", IdType, nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_call_log")),
        _fk("provider_call_log", "user_id", "users", "SET NULL"),
        sa.CheckConstraint(
            sql_in("provider", PROVIDERS), name=op.f("ck_provider_call_log_provider")
        ),
    )
    op.create_index(
        "ix_provider_call_log_provider_occurred_at",
        "provider_call_log",
        ["provider", "occurred_at"],
    )

    op.create_table(
        "user_secrets_envelope",
        _id(),
        sa.Column("user_id", IdType, nullable=True),
        sa.Column("name", sa.String(512), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(256), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_secrets_envelope")),
        _fk("user_secrets_envelope", "user_id", "users", "CASCADE"),
        sa.UniqueConstraint("name", name=op.f("uq_user_secrets_envelope_name")),
    )
    op.create_index(op.f("ix_user_secrets_envelope_user_id"), "user_secrets_envelope", ["user_id"])


_positions = sa.table(
    "positions",
    sa.column("id", IdType),
    sa.column("portfolio_id", IdType),
    sa.column("ticker", sa.String()),
    sa.column("quantity", Quantity()),
    sa.column("user_id", IdType),
    sa.column("account_id", sa.String()),
    sa.column("account_ref", IdType),
    sa.column("position_source", sa.String()),
    sa.column("position_status", sa.String()),
    sa.column("provider", sa.String()),
)
_connections = sa.table(
    "connections",
    sa.column("id", IdType),
    sa.column("user_id", IdType),
    sa.column("provider", sa.String()),
    sa.column("provider_connection_id", sa.String()),
    sa.column("institution_name", sa.String()),
    sa.column("status", sa.String()),
    sa.column("status_reason", sa.Text()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
_accounts = sa.table(
    "accounts",
    sa.column("id", IdType),
    sa.column("connection_id", IdType),
    sa.column("provider_account_id", sa.String()),
    sa.column("name", sa.String()),
    sa.column("type", sa.String()),
    sa.column("capabilities", JSONType),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)


def _backfill_accounts(bind: sa.Connection, now: datetime) -> None:
    """One connection per (user, provider), one account per legacy account id under it."""
    groups = bind.execute(
        sa.select(_positions.c.user_id, _positions.c.provider, _positions.c.account_id).distinct()
    ).all()
    connection_ids: dict[tuple[int, str], int] = {}
    account_ids: dict[tuple[int, str], int] = {}
    for user_id, provider, legacy_account in groups:
        manual = provider == "manual"
        if (user_id, provider) not in connection_ids:
            connection_ids[user_id, provider] = bind.execute(
                sa.insert(_connections)
                .values(
                    user_id=user_id,
                    provider=provider,
                    provider_connection_id=f"{'manual' if manual else 'legacy'}-{user_id}",
                    institution_name="Manual" if manual else f"Imported ({provider})",
                    status="active" if manual else "disabled",
                    status_reason=None
                    if manual
                    else "imported from the portfolio app; link the institution again to sync",
                    created_at=now,
                    updated_at=now,
                )
                .returning(_connections.c.id)
            ).scalar_one()
        connection_id = connection_ids[user_id, provider]
        provider_account_id = legacy_account or ("manual" if manual else "default")
        if (connection_id, provider_account_id) not in account_ids:
            account_ids[connection_id, provider_account_id] = bind.execute(
                sa.insert(_accounts)
                .values(
                    connection_id=connection_id,
                    provider_account_id=provider_account_id,
                    name="Manual" if manual else provider_account_id,
                    type="other",
                    capabilities=NO_CAPABILITIES,
                    created_at=now,
                    updated_at=now,
                )
                .returning(_accounts.c.id)
            ).scalar_one()
        same_account = (
            _positions.c.account_id.is_(None)
            if legacy_account is None
            else _positions.c.account_id == legacy_account
        )
        bind.execute(
            sa.update(_positions)
            .where(_positions.c.user_id == user_id, _positions.c.provider == provider, same_account)
            .values(account_ref=account_ids[connection_id, provider_account_id])
        )


def _merge_duplicates(bind: sa.Connection) -> None:
    """Legacy rows that share the new unique key become one row (the key had no constraint)."""
    p = _positions.c
    key = (p.portfolio_id, p.ticker, p.account_ref, p.provider)
    duplicated = bind.execute(sa.select(*key).group_by(*key).having(sa.func.count() > 1)).all()
    for portfolio_id, ticker, account_ref, provider in duplicated:
        rows = bind.execute(
            sa.select(p.id, p.quantity, p.position_status)
            .where(
                p.portfolio_id == portfolio_id,
                p.ticker == ticker,
                p.account_ref == account_ref,
                p.provider == provider,
            )
            .order_by(p.id)
        ).all()
        active = [row for row in rows if row.position_status == "active"]
        if active:
            keeper = active[0].id
            quantity = sum((row.quantity for row in active), Decimal(0))
        else:
            keeper, quantity = rows[-1].id, rows[-1].quantity
        bind.execute(sa.update(_positions).where(p.id == keeper).values(quantity=quantity))
        bind.execute(
            sa.delete(_positions).where(p.id.in_([row.id for row in rows if row.id != keeper]))
        )


def upgrade() -> None:
    _create_tables()
    bind = op.get_bind()

    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("provider", sa.String(16), nullable=True))
        batch.add_column(sa.Column("account_ref", IdType, nullable=True))
        batch.add_column(sa.Column("cost_basis", Money(), nullable=True))
        batch.add_column(sa.Column("price", Money(), nullable=True))
        batch.add_column(sa.Column("market_value", Money(), nullable=True))
        batch.add_column(sa.Column("as_of", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_consolidation_at", UTCDateTime(), nullable=True))

    # Backfill first; the CHECK constraints come after, and they admit every value written here.
    source = _positions.c.position_source
    bind.execute(
        sa.update(_positions).values(
            provider=sa.case(
                (source == "snaptrade", "snaptrade"), (source == "plaid", "plaid"), else_="manual"
            )
        )
    )
    bind.execute(
        sa.update(_positions)
        .where(_positions.c.position_status != "active")
        .values(position_status="inactive")
    )
    _backfill_accounts(bind, datetime.now(UTC))
    _merge_duplicates(bind)

    with op.batch_alter_table("positions") as batch:
        batch.drop_column("account_id")
        batch.alter_column(
            "account_ref", new_column_name="account_id", existing_type=IdType, nullable=False
        )
        batch.alter_column("provider", existing_type=sa.String(16), nullable=False)
    # A second batch: in the same SQLite rebuild, constraints on the renamed column are dropped.
    with op.batch_alter_table("positions") as batch:
        batch.create_foreign_key(
            op.f("fk_positions_account_id_accounts"),
            "accounts",
            ["account_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_unique_constraint(
            op.f("uq_positions_portfolio_id_ticker_account_id_provider"),
            ["portfolio_id", "ticker", "account_id", "provider"],
        )
        batch.create_check_constraint(op.f("ck_positions_provider"), sql_in("provider", PROVIDERS))
        batch.create_check_constraint(
            op.f("ck_positions_position_status"), sql_in("position_status", POSITION_STATUSES)
        )
    # Outside the batch: on SQLite an index on a renamed column trips the table rebuild.
    op.create_index("ix_positions_account_id_provider", "positions", ["account_id", "provider"])


def downgrade() -> None:
    op.drop_index("ix_positions_account_id_provider", "positions")
    with op.batch_alter_table("positions") as batch:
        batch.drop_constraint(op.f("ck_positions_position_status"), type_="check")
        batch.drop_constraint(op.f("ck_positions_provider"), type_="check")
        batch.drop_constraint(
            op.f("uq_positions_portfolio_id_ticker_account_id_provider"), type_="unique"
        )
        batch.drop_constraint(op.f("fk_positions_account_id_accounts"), type_="foreignkey")
        batch.add_column(sa.Column("legacy_account_id", sa.String(64), nullable=True))

    positions = sa.table(
        "positions",
        sa.column("account_id", IdType),
        sa.column("legacy_account_id", sa.String()),
        sa.column("provider", sa.String()),
    )
    op.get_bind().execute(
        sa.update(positions)
        .where(positions.c.provider != "manual")
        .values(
            legacy_account_id=sa.select(_accounts.c.provider_account_id)
            .where(_accounts.c.id == positions.c.account_id)
            .scalar_subquery()
        )
    )

    with op.batch_alter_table("positions") as batch:
        batch.drop_column("account_id")
        batch.alter_column(
            "legacy_account_id", new_column_name="account_id", existing_type=sa.String(64)
        )
        for column in ("provider", "cost_basis", "price", "market_value", "as_of"):
            batch.drop_column(column)
        batch.drop_column("last_consolidation_at")

    for table in (
        "user_secrets_envelope",
        "provider_call_log",
        "cost_ledger",
        "refresh_log",
        "accounts",
        "connections",
    ):
        op.drop_table(table)
