from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, JSONType, StrEnumType, UTCDateTime
from brokerlink.domain.enums import AccountType
from brokerlink.domain.models import Capabilities
from brokerlink.models._mixins import IdMixin, TimestampMixin
from brokerlink.models.enums import AccountSyncStatus, sql_in

__all__ = ["Account"]


def _no_capabilities() -> dict[str, Any]:
    return Capabilities().model_dump()


class Account(IdMixin, TimestampMixin, Base):
    """One account at an institution, under one connection."""

    __tablename__ = "accounts"
    __table_args__ = (
        UniqueConstraint("connection_id", "provider_account_id"),
        CheckConstraint(sql_in("type", AccountType), name="type"),
        CheckConstraint(sql_in("sync_status", AccountSyncStatus), name="sync_status"),
    )

    connection_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    provider_account_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(String(200))
    type: Mapped[AccountType] = mapped_column(
        StrEnumType(AccountType), default=AccountType.BROKERAGE
    )
    currency: Mapped[str | None] = mapped_column(String(8))
    number_mask: Mapped[str | None] = mapped_column(String(16))
    # {"trading": bool, "realtime": bool}, as `domain.Capabilities` dumps it.
    capabilities_json: Mapped[dict[str, Any]] = mapped_column(
        "capabilities", JSONType, default=_no_capabilities
    )

    # Freshness: when we last synced it, the provider's own as-of time, the last failure.
    sync_status: Mapped[AccountSyncStatus] = mapped_column(
        StrEnumType(AccountSyncStatus),
        default=AccountSyncStatus.PENDING,
        server_default=AccountSyncStatus.PENDING.value,
    )
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    data_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities.model_validate(self.capabilities_json)

    @capabilities.setter
    def capabilities(self, value: Capabilities) -> None:
        self.capabilities_json = value.model_dump()
