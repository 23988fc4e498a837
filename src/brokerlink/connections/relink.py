"""Re-linking a stored connection onto a new provider connection, keeping its history.

When the provider no longer has a connection (SnapTrade's user was replaced after its secret was
lost, or the authorization was deleted upstream), the user links the institution anew and the
new upstream connection is mapped onto the stored one: the connection takes the new upstream
id, and each stored account the new account id it is matched to by fingerprint (same number
mask and type, compatible currency), so positions, manual edits and preferences stay attached.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from brokerlink.domain.models import AccountSummary
from brokerlink.errors import BrokerlinkError
from brokerlink.models import Account, Connection
from brokerlink.repositories import AccountRepository, ConnectionRepository

__all__ = ["RelinkConflict", "matches", "move_onto"]

log = structlog.get_logger("brokerlink.connections")


class RelinkConflict(BrokerlinkError):
    status_code = 409
    code = "relink_conflict"


def matches(stored: Account, fresh: AccountSummary) -> bool:
    """Whether `fresh` is the same account as `stored`, linked again."""
    if not stored.number_mask or stored.number_mask != fresh.number_mask:
        return False
    if stored.type is not fresh.type:
        return False
    return not (stored.currency and fresh.currency and stored.currency != fresh.currency)


async def move_onto(
    session: AsyncSession,
    stored: Connection,
    provider_connection_id: str,
    accounts: Sequence[AccountSummary],
) -> int:
    """Point `stored` at the upstream connection `provider_connection_id` and its accounts at
    the new upstream account ids. Returns how many stored accounts were matched."""
    other = await ConnectionRepository.from_session(session).get_by_provider_id(
        stored.provider, provider_connection_id
    )
    if other is not None and other.id != stored.id:
        raise RelinkConflict(
            f"that {stored.provider.value} connection is already linked as another connection"
        )
    previous = stored.provider_connection_id
    stored.provider_connection_id = provider_connection_id
    repo = AccountRepository.from_session(session)
    free = [
        a
        for a in await repo.list_for_connection(stored.id)
        if a.provider_account_id not in {s.account_id for s in accounts}
    ]
    moved = 0
    for summary in accounts:
        if await repo.get_by_provider_id(stored.id, summary.account_id) is not None:
            continue
        match = next((a for a in free if matches(a, summary)), None)
        if match is None:
            continue
        free.remove(match)
        match.provider_account_id = summary.account_id
        moved += 1
    await session.flush()
    log.info(
        "connections.connection.relinked",
        connection_id=stored.id,
        old=previous,
        new=provider_connection_id,
        accounts_kept=moved,
    )
    return moved
