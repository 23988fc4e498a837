"""Rows for the dashboard's figures, written straight into the store (as the pipeline, the sync
and the webhook routes would)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.enums import Provider
from brokerlink.models import Account, Connection, ConnectionStatus
from brokerlink.repositories import AccountRepository, ConnectionRepository, UserRepository

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


async def connection(
    session: AsyncSession,
    provider: Provider,
    *,
    institution: str = "Charles Schwab",
    status: ConnectionStatus = ConnectionStatus.ACTIVE,
    reason: str | None = None,
    user_id: int | None = None,
) -> Connection:
    if user_id is None:
        user = await UserRepository.from_session(session).create(
            email=f"{uuid.uuid4().hex[:10]}@example.com"
        )
        user_id = user.id
    made = await ConnectionRepository.from_session(session).upsert(
        user_id=user_id,
        provider=provider,
        provider_connection_id=uuid.uuid4().hex,
        institution_name=institution,
    )
    made.status = status
    made.status_reason = reason
    await session.flush()
    return made


async def account(
    session: AsyncSession,
    of: Connection,
    *,
    name: str = "Individual",
    data_as_of: datetime | None = None,
    last_synced_at: datetime | None = None,
    created_at: datetime | None = None,
    last_error: str | None = None,
    last_error_at: datetime | None = None,
) -> Account:
    made = await AccountRepository.from_session(session).upsert(
        of, provider_account_id=uuid.uuid4().hex, name=name
    )
    made.data_as_of = data_as_of
    made.last_synced_at = last_synced_at
    made.last_error = last_error
    made.last_error_at = last_error_at
    made.created_at = created_at or NOW
    await session.flush()
    return made
