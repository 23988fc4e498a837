"""Webhook events: the body's SHA-256 (how a Plaid retry is known) and the `ignored` result.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 16:00:00 UTC

Plaid's webhooks carry no id and each retry is signed afresh, so a retry is known by its body:
`webhook_events.body_sha256` (indexed) keeps the hex SHA-256 of every body received. Rows
already there get it where their id holds it: a refused one's `sha256:<hex>`, a Plaid event's
`<hex>:<iat>`; a SnapTrade event's body was never kept, so it stays NULL. `ignored` is the result
of a verified event of a type this product does not know. Downgrade records those as `handled`
(left alone, as the old schema did with events it had nothing to do for).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_RESULT_CHECK = "result IN ('accepted', 'handled', 'failed') OR result LIKE 'refused:%'"
NEW_RESULT_CHECK = (
    "result IN ('accepted', 'handled', 'ignored', 'failed') OR result LIKE 'refused:%'"
)

events = sa.table(
    "webhook_events",
    sa.column("provider", sa.String),
    sa.column("event_id", sa.String),
    sa.column("result", sa.String),
    sa.column("body_sha256", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("webhook_events") as batch:
        batch.add_column(sa.Column("body_sha256", sa.String(64), nullable=True))
        batch.drop_constraint("result", type_="check")
        batch.create_check_constraint("result", NEW_RESULT_CHECK)
        batch.create_index("ix_webhook_events_body_sha256", ["body_sha256"])
    refused = events.c.event_id.like("sha256:%")
    op.execute(
        events.update().where(refused).values(body_sha256=sa.func.substr(events.c.event_id, 8, 64))
    )
    op.execute(
        events.update()
        .where(events.c.provider == "plaid", ~refused, events.c.event_id.like("%:%"))
        .values(body_sha256=sa.func.substr(events.c.event_id, 1, 64))
    )


def downgrade() -> None:
    op.execute(events.update().where(events.c.result == "ignored").values(result="handled"))
    with op.batch_alter_table("webhook_events") as batch:
        batch.drop_index("ix_webhook_events_body_sha256")
        batch.drop_constraint("result", type_="check")
        batch.create_check_constraint("result", OLD_RESULT_CHECK)
        batch.drop_column("body_sha256")
