from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, StrEnumType, UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin
from brokerlink.models.enums import RefreshStatus, RefreshTrigger, sql_in

__all__ = ["RefreshLog"]


class RefreshLog(IdMixin, Base):
    """One refresh request sent to a provider for a connection, and how it ended."""

    __tablename__ = "refresh_log"
    __table_args__ = (
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(sql_in("trigger", RefreshTrigger), name="trigger"),
        CheckConstraint(sql_in("status", RefreshStatus), name="status"),
        Index("ix_refresh_log_connection_id_requested_at", "connection_id", "requested_at"),
        # One refresh in flight per connection, whichever process sends it: a second `sending`
        # row for the same connection violates this index instead of reaching the provider.
        Index(
            "uq_refresh_log_in_flight",
            "connection_id",
            unique=True,
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )

    connection_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("connections.id", ondelete="CASCADE")
    )
    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    trigger: Mapped[RefreshTrigger] = mapped_column(StrEnumType(RefreshTrigger))
    status: Mapped[RefreshStatus] = mapped_column(
        StrEnumType(RefreshStatus), default=RefreshStatus.REQUESTED
    )
    detail: Mapped[str | None] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
