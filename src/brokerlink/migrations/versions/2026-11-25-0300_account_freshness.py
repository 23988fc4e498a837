"""Account freshness: sync status, last sync, the provider's as-of time and the last error.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 03:00:00 UTC

Every read of an account answers with when it was synced, how old the provider's data is, and
whether the last attempt failed (`stale` keeps the last good positions; `broken` needs the user to
reconnect). Existing accounts start as `pending`: nothing has been synced under these rules yet.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SYNC_STATUSES = ("pending", "fresh", "stale", "broken")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(
            sa.Column("sync_status", sa.String(16), nullable=False, server_default="pending")
        )
        batch.add_column(sa.Column("last_synced_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("data_as_of", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_error_at", UTCDateTime(), nullable=True))
        batch.create_check_constraint(
            "sync_status",
            "sync_status IN (" + ", ".join(f"'{s}'" for s in SYNC_STATUSES) + ")",
        )


def downgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint("sync_status", type_="check")
        for column in (
            "last_error_at",
            "last_error",
            "data_as_of",
            "last_synced_at",
            "sync_status",
        ):
            batch.drop_column(column)
