from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, Money, StrEnumType, UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin
from brokerlink.models.enums import sql_in

__all__ = ["CostEntry"]


class CostEntry(IdMixin, Base):
    """One billable provider operation (a SnapTrade manual refresh, a Plaid item, ...)."""

    __tablename__ = "cost_ledger"
    __table_args__ = (
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        Index("ix_cost_ledger_provider_occurred_at", "provider", "occurred_at"),
        Index("ix_cost_ledger_user_id_occurred_at", "user_id", "occurred_at"),
    )

    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    operation: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
