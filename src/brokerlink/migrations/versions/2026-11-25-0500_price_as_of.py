"""Positions carry the provider's as-of time for their price as well as for the holding.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 05:00:00 UTC

SnapTrade prices can lag a trading session and Plaid reports `institution_price_as_of`; the
price's own time is kept beside the holding's so an answer can say how old each is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import UTCDateTime

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("price_as_of", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("price_as_of")
