from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, StrEnumType, UTCDateTime, utcnow
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin
from brokerlink.models.enums import sql_in

__all__ = ["EVENT_TYPE_LENGTH", "RESULT_CHECK", "WebhookEvent"]

# `refused:<code>` carries the refusal's code (`refused:stale`, `refused:replayed`, ...).
RESULT_CHECK = "result IN ('accepted', 'handled', 'ignored', 'failed') OR result LIKE 'refused:%'"
# The longest `event_type` kept; a sender's own type name beyond it is cut.
EVENT_TYPE_LENGTH = 64


class WebhookEvent(IdMixin, Base):
    """One webhook a provider sent: what it was, when the provider says it happened, when it
    arrived, and how it ended (`accepted`, `refused:<code>`, `handled`, `ignored`: verified, of
    a type this product does not know, `failed`).

    `event_id` is unique per provider: the replay guard. `event_type` is SnapTrade's
    `eventType` (`ACCOUNT_HOLDINGS_UPDATED`) or Plaid's `webhook_type:webhook_code`
    (`HOLDINGS:DEFAULT_UPDATE`). `event_at` is the provider's own time (SnapTrade's
    `eventTimestamp`, Plaid's signing time), None when it gave none. `body_sha256` is the hex
    SHA-256 of the body as received, refused ones included: Plaid's retries carry the same body
    under a new signature, so it is how a retry is known (None for events recorded before it
    was kept, but for the ones whose id held it).
    """

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("provider", "event_id"),
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(RESULT_CHECK, name="result"),
        Index("ix_webhook_events_provider_received_at", "provider", "received_at"),
        Index("ix_webhook_events_account_id_event_type", "account_id", "event_type"),
        Index("ix_webhook_events_connection_id_event_type", "connection_id", "event_type"),
        Index("ix_webhook_events_body_sha256", "body_sha256"),
    )

    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    event_id: Mapped[str] = mapped_column(String(128))
    event_type: Mapped[str] = mapped_column(String(EVENT_TYPE_LENGTH))
    event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    result: Mapped[str] = mapped_column(String(64), default="accepted")
    connection_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("connections.id", ondelete="SET NULL")
    )
    account_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("accounts.id", ondelete="SET NULL")
    )
    error: Mapped[str | None] = mapped_column(Text)
    body_sha256: Mapped[str | None] = mapped_column(String(64))
