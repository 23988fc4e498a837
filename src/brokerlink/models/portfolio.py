from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType
from brokerlink.models._mixins import IdMixin, TimestampMixin

__all__ = ["Portfolio"]


class Portfolio(IdMixin, TimestampMixin, Base):
    """A user's named portfolio (shape unchanged from the portfolio app's `portfolios`)."""

    __tablename__ = "portfolios"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    base_currency: Mapped[str] = mapped_column(String(8), default="USD")
