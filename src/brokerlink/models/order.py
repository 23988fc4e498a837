from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, JSONType, StrEnumType, UTCDateTime
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin, TimestampMixin
from brokerlink.models.enums import OrderRecordState, sql_in

__all__ = ["OrderRecord"]


class OrderRecord(IdMixin, TimestampMixin, Base):
    """One order request by its idempotency key: the same key never places twice.

    The row is committed as `sending` before the provider is called, so a retry with the same
    key finds it and gets the stored result (or a refusal while the outcome is unknown) instead
    of a second order. `fingerprint` binds the key to what was asked for
    (`orders.fingerprint`): the key reused for a different order is refused.
    """

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(sql_in("state", OrderRecordState), name="state"),
    )

    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    state: Mapped[OrderRecordState] = mapped_column(
        StrEnumType(OrderRecordState), default=OrderRecordState.SENDING
    )
    request: Mapped[dict[str, Any]] = mapped_column(JSONType)
    fingerprint: Mapped[str] = mapped_column(String(64))
    provider_order_id: Mapped[str | None] = mapped_column(String(128))
    # The provider's answer as `domain.Order` dumps it (JSON mode).
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    error: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
