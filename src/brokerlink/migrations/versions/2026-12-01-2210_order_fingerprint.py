"""Order records: the fingerprint an idempotency key is bound to, and the `not_placed` state.

Existing rows get the fingerprint of their stored request, computed here with a frozen copy of
version 1 of `brokerlink.orders.fingerprint` (a migration must not change when that module
does; a test holds the two equal). The column is NOT NULL once every row has one.
Downgrading turns `not_placed` into `rejected`, the old state that also means "nothing placed".

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 22:10:00 UTC
"""

import hashlib
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

from brokerlink.db.types import IdType, JSONType

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATES = ("sending", "placed", "rejected", "unknown")
NEW_STATES = (*OLD_STATES, "not_placed")

orders = sa.table(
    "orders",
    sa.column("id", IdType),
    sa.column("account_id", IdType),
    sa.column("request", JSONType),
    sa.column("fingerprint", sa.String),
    sa.column("state", sa.String),
)


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _dec(value: Any) -> str | None:
    if value is None:
        return None
    text = format(Decimal(str(value)).normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _sym(value: Any) -> str | None:
    return str(value).strip().upper() if value is not None else None


def _fingerprint_v1(account_id: int, request: dict[str, Any]) -> str:
    if "preview" in request:
        p = request["preview"]
        content: dict[str, Any] = {
            "kind": "preview",
            "account": account_id,
            "provider": p.get("provider"),
            "provider_account": p.get("account_id"),
            "preview_id": p.get("preview_id"),
            "side": p.get("side"),
            "symbol": _sym(p.get("symbol")),
            "quantity": _dec(p.get("quantity")),
            "price": _dec(p.get("price")),
            "currency": p.get("currency"),
            "estimated_commission": _dec(p.get("estimated_commission")),
            "remaining_cash": _dec(p.get("remaining_cash")),
        }
    else:
        content = {
            "kind": "order",
            "account": account_id,
            "side": request.get("side"),
            "symbol": _sym(request.get("symbol")),
            "instrument": request.get("instrument_id"),
            "order_type": request.get("order_type", "market"),
            "time_in_force": request.get("time_in_force", "day"),
            "quantity": _dec(request.get("quantity")),
            "notional": _dec(request.get("notional")),
            "limit_price": _dec(request.get("limit_price")),
            "stop_price": _dec(request.get("stop_price")),
        }
    text = json.dumps({"v": 1, **content}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(sa.select(orders.c.id, orders.c.account_id, orders.c.request)).all()
    for row in rows:
        bind.execute(
            orders.update()
            .where(orders.c.id == row.id)
            .values(fingerprint=_fingerprint_v1(row.account_id, row.request or {}))
        )
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("fingerprint", existing_type=sa.String(length=64), nullable=False)
        batch.drop_constraint(op.f("ck_orders_state"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_state"), _in("state", NEW_STATES))


def downgrade() -> None:
    op.execute(orders.update().where(orders.c.state == "not_placed").values(state="rejected"))
    with op.batch_alter_table("orders") as batch:
        batch.drop_constraint(op.f("ck_orders_state"), type_="check")
        batch.create_check_constraint(op.f("ck_orders_state"), _in("state", OLD_STATES))
        batch.drop_column("fingerprint")
