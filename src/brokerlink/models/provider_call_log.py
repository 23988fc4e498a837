from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, Money, StrEnumType, UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin
from brokerlink.models.enums import sql_in

__all__ = ["ProviderCall"]


class ProviderCall(IdMixin, Base):
    """One call to a provider (all its attempts): what, for which institution, how long, how it
    ended and what it cost; the same call as the `provider.call` log event of `call_id`."""

    __tablename__ = "provider_call_log"
    __table_args__ = (
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        Index("ix_provider_call_log_provider_occurred_at", "provider", "occurred_at"),
    )

    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    institution: Mapped[str | None] = mapped_column(String(128))
    operation: Mapped[str] = mapped_column(String(64))
    # Ours, one per call: the `request_id` of the call's `provider.call` log event. None only
    # on rows written before it was kept.
    call_id: Mapped[str | None] = mapped_column(String(64))
    # The provider's id for the call (what its support can look up), when its answer had one.
    provider_request_id: Mapped[str | None] = mapped_column(String(128))
    latency_ms: Mapped[int] = mapped_column(Integer)
    # "ok", or the typed error's class ("RateLimited", "ProviderUnavailable", ...).
    result: Mapped[str] = mapped_column(String(64))
    # A failed call's code: the provider's ("ITEM_LOGIN_REQUIRED"), or the network failure's
    # class ("ConnectTimeout").
    error_code: Mapped[str | None] = mapped_column(String(64))
    # A billed call's cost tag: the priced operation (the cost ledger's name for it) and USD,
    # the amount None when no price is configured for it.
    cost_type: Mapped[str | None] = mapped_column(String(32))
    cost_amount: Mapped[Decimal | None] = mapped_column(Money())
    status_code: Mapped[int | None] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("users.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
