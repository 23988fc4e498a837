"""Connections know their items: the provider's institution id and the re-link deadline.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 13:00:00 UTC

A Plaid item's metadata (item id, institution, status) lives in the connection's row; the secret
store keeps only its access token. `reconnect_by` is when the provider will stop serving the
link unless the user re-authenticates (Plaid's PENDING_EXPIRATION / PENDING_DISCONNECT).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("provider_institution_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("reconnect_by", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch:
        batch.drop_column("reconnect_by")
        batch.drop_column("provider_institution_id")
