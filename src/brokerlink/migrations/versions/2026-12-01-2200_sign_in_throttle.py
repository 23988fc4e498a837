"""Sign-in throttling: the attempts of the current window, by email key and by client address.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 22:00:00 UTC
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import IdType, UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_attempts",
        sa.Column("id", IdType, autoincrement=True, nullable=False),
        sa.Column("email_key", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempts")),
        sa.CheckConstraint(
            "outcome IN ('pending', 'failed')", name=op.f("ck_sign_in_attempts_outcome")
        ),
    )
    op.create_index(
        "ix_sign_in_attempts_email_key_started_at",
        "sign_in_attempts",
        ["email_key", "started_at"],
    )
    op.create_index(
        "ix_sign_in_attempts_address_started_at", "sign_in_attempts", ["address", "started_at"]
    )
    op.create_index(op.f("ix_sign_in_attempts_started_at"), "sign_in_attempts", ["started_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_attempts_started_at"), table_name="sign_in_attempts")
    op.drop_index("ix_sign_in_attempts_address_started_at", table_name="sign_in_attempts")
    op.drop_index("ix_sign_in_attempts_email_key_started_at", table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
