from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import UTCDateTime
from brokerlink.models._mixins import IdMixin

__all__ = ["SignInAttempt"]


class SignInAttempt(IdMixin, Base):
    """A password sign-in that failed or is being checked, kept for the throttling window.

    A row is written before the password is checked (`pending`) and becomes `failed` when it
    was wrong; a successful sign-in deletes its own row and the account's failures. The email
    is kept as its SHA-256 (people type passwords into the email field), the address as text.
    """

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        CheckConstraint("outcome IN ('pending', 'failed')", name="outcome"),
        Index("ix_sign_in_attempts_email_key_started_at", "email_key", "started_at"),
        Index("ix_sign_in_attempts_address_started_at", "address", "started_at"),
    )

    email_key: Mapped[str] = mapped_column(String(64))
    address: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16), default="pending")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
