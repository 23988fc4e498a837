from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, Money, StrEnumType, UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin
from brokerlink.models.enums import LedgerStatus, sql_in

__all__ = ["CostEntry"]


class CostEntry(IdMixin, Base):
    """One billable provider operation (a SnapTrade manual refresh, a Plaid item, ...)."""

    __tablename__ = "cost_ledger"
    __table_args__ = (
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(sql_in("status", LedgerStatus), name="status"),
        Index("ix_cost_ledger_provider_occurred_at", "provider", "occurred_at"),
        Index("ix_cost_ledger_user_id_occurred_at", "user_id", "occurred_at"),
    )

    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    operation: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money())
    currency: Mapped[str] = mapped_column(String(8), default="USD")
    user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status: Mapped[LedgerStatus] = mapped_column(
        StrEnumType(LedgerStatus), default=LedgerStatus.BILLED, server_default="billed"
    )
    # The refresh this charge belongs to (None for charges that are not refreshes).
    refresh_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("refresh_log.id", ondelete="SET NULL"), index=True
    )
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
