"""Re-linked accounts: a provider account not seen before may be a stored one under a new id."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.models import AccountSummary, Position
from brokerlink.models import ConnectionStatus
from brokerlink.repositories import AccountRepository, ConnectionRepository, PositionRepository

__all__ = ["adopt_relinked"]

log = structlog.get_logger("brokerlink.sync")


async def adopt_relinked(
    session: AsyncSession,
    user_id: int,
    connection_id: int,
    row: AccountSummary,
    positions: Sequence[Position],
    reported: frozenset[str],
) -> None:
    """A provider account we have not seen may be one we have, re-linked under a new id.

    Matched by fingerprint: same user, provider and institution, same number mask and type,
    compatible currency, and overlapping holdings. The stored account then takes the new
    upstream id (and connection), keeping its history and manual edits, instead of
    appearing twice.
    """
    if not row.number_mask:
        return
    connections = ConnectionRepository.from_session(session)
    connection = await connections.get(connection_id)
    assert connection is not None
    new_tickers = {p.instrument.symbol for p in positions if p.instrument.symbol}
    positions_repo = PositionRepository.from_session(session)
    for candidate in await AccountRepository.from_session(session).list_for_user(user_id):
        if candidate.number_mask != row.number_mask or candidate.type is not row.type:
            continue
        if candidate.currency and row.currency and candidate.currency != row.currency:
            continue
        if candidate.connection_id == connection_id and (candidate.provider_account_id in reported):
            continue  # still reported under its own id: a different account
        owner = await connections.get(candidate.connection_id)
        if (
            owner is None
            or owner.provider is not connection.provider
            or not owner.institution_slug
            or owner.institution_slug != connection.institution_slug
        ):
            continue
        if owner.id != connection_id and owner.status is ConnectionStatus.ACTIVE:
            continue  # a working link of its own: not a re-link
        old_tickers = {p.ticker for p in await positions_repo.list_for_account(candidate.id)}
        if old_tickers and new_tickers:
            overlap = len(old_tickers & new_tickers) / min(len(old_tickers), len(new_tickers))
            if overlap < 0.5:
                continue
        log.info(
            "sync.account.relinked",
            account_id=candidate.id,
            old=candidate.provider_account_id,
            new=row.account_id,
        )
        candidate.connection_id = connection_id
        candidate.provider_account_id = row.account_id
        await session.flush()
        return
