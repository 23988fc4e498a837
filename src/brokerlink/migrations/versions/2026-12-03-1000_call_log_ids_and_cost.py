"""The provider call log holds both request ids, the provider's error code and the cost tag.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00 UTC

`provider_call_log.request_id` was the provider's id; it is renamed `provider_request_id` (its
values kept) beside `call_id`, our own id for the call, the one the `provider.call` log event
carries. `error_code` is the provider's code (or the network failure's class) of a failed call;
`cost_type` and `cost_amount` are the cost tag of a billed call (the cost ledger's name for the
operation, and USD at the configured price). Rows written before this revision have no call id,
error code or cost: none was recorded then.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import Money

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite the table is rebuilt (batch mode): the rows are copied, the rename keeps them.
    with op.batch_alter_table("provider_call_log") as batch:
        batch.alter_column(
            "request_id", new_column_name="provider_request_id", existing_type=sa.String(128)
        )
        batch.add_column(sa.Column("call_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("error_code", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cost_type", sa.String(32), nullable=True))
        batch.add_column(sa.Column("cost_amount", Money(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_call_log") as batch:
        batch.drop_column("cost_amount")
        batch.drop_column("cost_type")
        batch.drop_column("error_code")
        batch.drop_column("call_id")
        batch.alter_column(
            "provider_request_id", new_column_name="request_id", existing_type=sa.String(128)
        )
