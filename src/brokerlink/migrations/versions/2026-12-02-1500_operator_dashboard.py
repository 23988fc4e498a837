"""Operators and webhook events: an admin flag on users, and every webhook a provider sent.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 15:00:00 UTC

`users.is_admin` (false for everyone; `brokerlink users admin EMAIL` sets it) opens the
operator dashboard. `webhook_events` keeps each webhook once per provider and event id (the
replay guard), with the provider's event time and when it arrived (the webhook lag) and how it
ended.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import IdType, UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = ("snaptrade", "plaid", "manual")
RESULT_CHECK = "result IN ('accepted', 'handled', 'failed') OR result LIKE 'refused:%'"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "webhook_events",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("event_at", UTCDateTime(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("result", sa.String(64), nullable=False),
        sa.Column(
            "connection_id",
            IdType,
            sa.ForeignKey("connections.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column(
            "account_id", IdType, sa.ForeignKey("accounts.id", ondelete="SET NULL"), nullable=True
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.UniqueConstraint("provider", "event_id"),
        sa.CheckConstraint(
            "provider IN (" + ", ".join(f"'{p}'" for p in PROVIDERS) + ")", name="provider"
        ),
        sa.CheckConstraint(RESULT_CHECK, name="result"),
    )
    op.create_index(
        "ix_webhook_events_provider_received_at", "webhook_events", ["provider", "received_at"]
    )
    op.create_index(
        "ix_webhook_events_account_id_event_type", "webhook_events", ["account_id", "event_type"]
    )
    op.create_index(
        "ix_webhook_events_connection_id_event_type",
        "webhook_events",
        ["connection_id", "event_type"],
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_events_connection_id_event_type", table_name="webhook_events")
    op.drop_index("ix_webhook_events_account_id_event_type", table_name="webhook_events")
    op.drop_index("ix_webhook_events_provider_received_at", table_name="webhook_events")
    op.drop_table("webhook_events")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_admin")
