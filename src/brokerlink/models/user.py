from typing import Any

from sqlalchemy import Boolean, String, false
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import JSONType
from brokerlink.models._mixins import IdMixin, TimestampMixin

__all__ = ["User"]


class User(IdMixin, TimestampMixin, Base):
    """A person using the app (shape unchanged from the portfolio app's `users`)."""

    __tablename__ = "users"

    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # $argon2id$… (older rows: scrypt$N$r$p$salt$hash, replaced at the next sign-in);
    # None: the user signs in with API tokens only.
    password_hash: Mapped[str | None] = mapped_column(String(256))
    # The user's choices, e.g. which connection wins a duplicated account.
    preferences: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Operators: sees the operator dashboard. Set only by `brokerlink users admin EMAIL`.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
