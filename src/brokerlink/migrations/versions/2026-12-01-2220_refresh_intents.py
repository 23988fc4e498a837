"""Billed refreshes as intents: in flight and in doubt, a ledger that settles, and sync leases.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 22:20:00 UTC

A billed refresh is committed as `sending` (refresh log) with a `pending` ledger row before the
provider is called, and settled afterwards: `accepted` + `billed`, `failed`/`rejected` + `void`,
or `in_doubt` when the answer was lost. A partial unique index admits one `sending` refresh per
connection, so two processes can never both have one in flight. Connections get a sync lease:
the process that holds an unexpired lease is the only one syncing that connection.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import IdType, UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REFRESH = ("requested", "accepted", "rejected", "failed", "completed")
NEW_REFRESH = (*OLD_REFRESH, "sending", "in_doubt")
LEDGER = ("pending", "billed", "in_doubt", "void")


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    with op.batch_alter_table("refresh_log") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _in("status", NEW_REFRESH))
    op.create_index(
        "uq_refresh_log_in_flight",
        "refresh_log",
        ["connection_id"],
        unique=True,
        postgresql_where=sa.text("status = 'sending'"),
        sqlite_where=sa.text("status = 'sending'"),
    )
    with op.batch_alter_table("cost_ledger") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="billed")
        )
        batch.add_column(sa.Column("refresh_id", IdType, nullable=True))
        batch.add_column(sa.Column("settled_at", UTCDateTime(), nullable=True))
        batch.create_check_constraint("status", _in("status", LEDGER))
        batch.create_foreign_key(
            "fk_cost_ledger_refresh_id_refresh_log",
            "refresh_log",
            ["refresh_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_index("ix_cost_ledger_refresh_id", ["refresh_id"])
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("sync_lease_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sync_lease_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("sync_lease_until")
        batch.drop_column("sync_lease_id")
    with op.batch_alter_table("cost_ledger") as batch:
        batch.drop_index("ix_cost_ledger_refresh_id")
        batch.drop_constraint("fk_cost_ledger_refresh_id_refresh_log", type_="foreignkey")
        batch.drop_constraint("status", type_="check")
        batch.drop_column("settled_at")
        batch.drop_column("refresh_id")
        batch.drop_column("status")
    op.drop_index("uq_refresh_log_in_flight", table_name="refresh_log")
    op.execute(
        "UPDATE refresh_log SET status = 'requested' WHERE status IN ('sending', 'in_doubt')"
    )
    with op.batch_alter_table("refresh_log") as batch:
        batch.drop_constraint("status", type_="check")
        batch.create_check_constraint("status", _in("status", OLD_REFRESH))
