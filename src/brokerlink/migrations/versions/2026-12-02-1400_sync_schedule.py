"""One schedule for every process: when each connection is next due, how often it failed, and
whether a sync job for it is queued.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 14:00:00 UTC

`next_sync_at` replaces "every connection older than the interval, checked by every process":
a claim (`FOR UPDATE SKIP LOCKED` on PostgreSQL) advances it in the transaction that takes the
connection, so two schedulers never enqueue it twice. `sync_queued_at` marks a job waiting or
running (a second request adds nothing); `sync_attempted_at` makes a redelivered job a no-op.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("next_sync_at", UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("sync_failures", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("sync_queued_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("sync_attempted_at", UTCDateTime(), nullable=True))
        batch.create_index("ix_connections_next_sync_at", ["next_sync_at"])


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_index("ix_connections_next_sync_at")
        batch.drop_column("sync_attempted_at")
        batch.drop_column("sync_queued_at")
        batch.drop_column("sync_failures")
        batch.drop_column("next_sync_at")
