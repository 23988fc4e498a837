"""Positions carry the instrument's name as the provider gave it.

Revision ID: 0012
Revises: 0009
Create Date: 2026-12-02 12:00:00 UTC

A holding without a ticker is keyed by its CUSIP or ISIN (`29249Y551`): the name is what a
person reads beside it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.add_column(sa.Column("name", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("positions") as batch:
        batch.drop_column("name")
