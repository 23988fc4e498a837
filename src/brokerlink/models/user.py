from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.models._mixins import IdMixin, TimestampMixin

__all__ = ["User"]


class User(IdMixin, TimestampMixin, Base):
    """A person using the app (shape unchanged from the portfolio app's `users`)."""

    __tablename__ = "users"

    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
