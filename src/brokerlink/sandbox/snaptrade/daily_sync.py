"""The SnapTrade sandbox's daily sync: SnapTrade re-reads every account once a day and announces
each one, as research notes §2 (Daily plan) and §5 describe.

    daily_sync(state)            every account of every working connection (or one user's) is
                                 synced now: its listing's `sync_status.holdings` moves to now and
                                 an ACCOUNT_HOLDINGS_UPDATED webhook is sent for it
    DailySyncTimer(state, at)    runs `daily_sync` every day at `at` (UTC) while the app runs

On the Daily plan the cache only changes at a daily sync, a refresh or a fill, so each change
reaches the client as a holdings webhook; the client need not poll to find it. A disabled
connection is not synced (it waits for its user to reconnect), so its accounts are not announced.
The sandbox's prices are fixed, so a daily sync re-dates the holdings without moving them; what
changes an account is a trade (`/sandbox/accounts/{id}/move-holdings`, an order's fill).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, time, timedelta

from brokerlink.sandbox.snaptrade.state import Account, SandboxState

__all__ = ["DailySyncTimer", "daily_sync", "next_run"]


def daily_sync(state: SandboxState, *, user_id: str | None = None) -> list[Account]:
    """Sync every account of a working connection now (of `user_id` only, if given), each
    announced by its own ACCOUNT_HOLDINGS_UPDATED; the accounts synced."""
    now = state.now()
    synced: list[Account] = []
    for account in list(state.accounts.values()):
        if user_id is not None and account.user_id != user_id:
            continue
        auth = state.authorizations.get(account.authorization_id)
        if auth is None or auth.disabled:
            continue
        # When the holdings were last read from the brokerage: the listing's sync_status.
        account.holdings_changed_at = now
        state.holdings_updated(account)
        synced.append(account)
    return synced


def next_run(now: datetime, at: time) -> datetime:
    """The first `at` (UTC) strictly after `now`."""
    today = datetime.combine(now.date(), at.replace(tzinfo=UTC))
    return today if today > now else today + timedelta(days=1)


class DailySyncTimer:
    """Runs `daily_sync` at `at` (UTC) every day for as long as the app's lifespan lasts."""

    def __init__(self, state: SandboxState, at: time) -> None:
        self.state = state
        self.at = at
        self.runs = 0

    async def _loop(self) -> None:
        while True:
            now = self.state.now_dt()
            await asyncio.sleep((next_run(now, self.at) - now).total_seconds())
            daily_sync(self.state)
            self.runs += 1

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self._loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
