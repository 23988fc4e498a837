from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType
from brokerlink.models._mixins import IdMixin, TimestampMixin

__all__ = ["UserSecretEnvelope"]


class UserSecretEnvelope(IdMixin, TimestampMixin, Base):
    """An envelope-encrypted secret: ciphertext plus its data key wrapped by `key_id`.

    The store keeps bytes only; encryption and key wrapping happen in the secrets backend.
    """

    __tablename__ = "user_secrets_envelope"

    user_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(512), unique=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    wrapped_data_key: Mapped[bytes] = mapped_column(LargeBinary)
    key_id: Mapped[str] = mapped_column(String(256))
