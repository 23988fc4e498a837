"""Legacy baseline: the portfolio app's tables as they were before brokerlink.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 12:00:00 UTC

A database created by the portfolio app already has these tables; stamp it with
`brokerlink db stamp 0001` and upgrade from there. An empty
database gets them from this revision. The legacy shape:

    users       (id, email UNIQUE, name, created_at, updated_at)
    portfolios  (id, user_id -> users, name, base_currency, created_at, updated_at,
                 UNIQUE (user_id, name))
    positions   (id, portfolio_id -> portfolios, user_id -> users, ticker, quantity
                 NUMERIC(20,8), currency, type, account_id VARCHAR(64) NULL (the provider's
                 account id, NULL for manual entries), position_source ('snaptrade' | 'plaid' |
                 'manual'), position_status ('active' | 'inactive'), created_at, updated_at)

There is no `provider` column and no accounts/connections table: revision 0002 adds them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import IdType, Quantity, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "portfolios",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("user_id", IdType, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("base_currency", sa.String(8), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolios")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_portfolios_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("user_id", "name", name=op.f("uq_portfolios_user_id_name")),
    )
    op.create_index(op.f("ix_portfolios_user_id"), "portfolios", ["user_id"])
    op.create_table(
        "positions",
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("portfolio_id", IdType, nullable=False),
        sa.Column("user_id", IdType, nullable=False),
        sa.Column("ticker", sa.String(64), nullable=False),
        sa.Column("quantity", Quantity(), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=True),
        sa.Column("position_source", sa.String(16), nullable=False),
        sa.Column("position_status", sa.String(16), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
        sa.ForeignKeyConstraint(
            ["portfolio_id"],
            ["portfolios.id"],
            name=op.f("fk_positions_portfolio_id_portfolios"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_positions_user_id_users"), ondelete="CASCADE"
        ),
    )
    op.create_index(op.f("ix_positions_portfolio_id"), "positions", ["portfolio_id"])
    op.create_index(op.f("ix_positions_user_id"), "positions", ["user_id"])


def downgrade() -> None:
    op.drop_table("positions")
    op.drop_table("portfolios")
    op.drop_table("users")
