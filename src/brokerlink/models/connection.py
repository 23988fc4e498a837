from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from brokerlink.db.base import Base
from brokerlink.db.types import IdType, StrEnumType, UTCDateTime
from brokerlink.domain.enums import Provider
from brokerlink.models._mixins import IdMixin, TimestampMixin
from brokerlink.models.enums import ConnectionStatus, sql_in

__all__ = ["Connection"]


class Connection(IdMixin, TimestampMixin, Base):
    """A user's link to one institution through one provider (SnapTrade authorization, Plaid
    item, or the user's own manual entries).

    For a Plaid item this row is all there is to know about it but its access token (the one
    secret the store keeps per connection): the item id, the institution, and `status`, the one
    truth about whether it needs the user to log in again."""

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("provider", "provider_connection_id"),
        CheckConstraint(sql_in("provider", Provider), name="provider"),
        CheckConstraint(sql_in("status", ConnectionStatus), name="status"),
    )

    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[Provider] = mapped_column(StrEnumType(Provider))
    # SnapTrade's authorization id / Plaid's item id.
    provider_connection_id: Mapped[str] = mapped_column(String(128))
    institution_slug: Mapped[str | None] = mapped_column(String(128))
    institution_name: Mapped[str] = mapped_column(String(200))
    # The provider's own institution id (Plaid's `ins_…`), when it said.
    provider_institution_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[ConnectionStatus] = mapped_column(
        StrEnumType(ConnectionStatus), default=ConnectionStatus.ACTIVE
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    # When the provider stops serving the link unless the user re-authenticates (Plaid's
    # PENDING_EXPIRATION); the link works until then.
    reconnect_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_manual_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who is syncing this connection, until when (see `repositories.connections`, `sync_lease`).
    sync_lease_id: Mapped[str | None] = mapped_column(String(64))
    sync_lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The schedule (see `sync.schedule`): when the connection is next due (None: now, unless it
    # is broken and waits for its user), consecutive failed syncs (the backoff), when a sync job
    # was queued and not yet settled (None: none waiting), and when the last settled sync began
    # reading (what it stored is no older).
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    sync_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sync_queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sync_attempted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
