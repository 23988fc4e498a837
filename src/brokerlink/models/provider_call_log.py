from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, StrEnumType, UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin
from brokerlink.models.enums import sql_in

__all__ = ["ProviderCall"]


class ProviderCall(IdMixin, Base):
    """One HTTP call to a provider: what, for which institution, how long, and how it ended."""

    __tablename__ = "provider_call_log"
    __table_args__ = (
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        Index("ix_provider_call_log_provider_occurred_at", "provider", "occurred_at"),
    )

    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    institution: Mapped[str | None] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    latency_ms: Mapped[int] = mapped_column(Integer)
    # "ok", or the error's code/class ("rate_limited", "ProviderUnavailable", ...).
    result: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
