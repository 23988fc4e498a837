from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, Money, Quantity, StrEnumType, UTCDateTime
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin, TimestampMixin
from brokerlink.models.enums import PositionStatus, sql_in

__all__ = ["POSITION_KEY", "Position"]

#: The natural key of a position; bulk upserts conflict on it.
POSITION_KEY = ("portfolio_id", "ticker", "account_id", "provider")


class Position(IdMixin, TimestampMixin, Base):
    """A holding in a portfolio, from one account and one provider.

    Columns keep the portfolio app's names (`position_source`, `position_status`, `type`).
    Positions a provider stops reporting become `inactive` rather than being deleted.
    """

    __tablename__ = "positions"
    __table_args__ = (
        UniqueConstraint(*POSITION_KEY),
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(sql_in("position_status", PositionStatus), name="position_status"),
        Index("ix_positions_account_id_provider", "account_id", "provider"),
    )

    portfolio_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("portfolios.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[int] = mapped_column(IdType, ForeignKey("accounts.id", ondelete="CASCADE"))
    ticker: Mapped[str] = mapped_column(String(64))
    # The instrument's name as the provider gave it (what a person reads beside a CUSIP).
    name: Mapped[str | None] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Quantity())
    currency: Mapped[str] = mapped_column(String(8))
    # The instrument kind (`domain.InstrumentKind` values; legacy rows may hold other words).
    type: Mapped[str] = mapped_column(String(32))
    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    position_source: Mapped[str] = mapped_column(String(16))
    position_status: Mapped[PositionStatus] = mapped_column(
        StrEnumType(PositionStatus), default=PositionStatus.ACTIVE
    )
    cost_basis: Mapped[Decimal | None] = mapped_column(Money())
    price: Mapped[Decimal | None] = mapped_column(Money())
    market_value: Mapped[Decimal | None] = mapped_column(Money())
    # The provider's as-of time for the holding, and for its price (which can lag a session).
    as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    price_as_of: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_consolidation_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
