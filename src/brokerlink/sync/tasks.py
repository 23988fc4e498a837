"""Syncs that run in the background of a request: after a new connection, on "sync all".

A request never waits on them: it answers from the store (with freshness) and the sync writes
the store when it finishes. Tasks are kept so that shutdown can wait for them, and a second
request for a connection already syncing joins the running task instead of starting another.
"""

from __future__ import annotations

import asyncio

import structlog

from brokerlink.sync.engine import ConnectionOutcome, SyncEngine, SyncSummary

__all__ = ["BackgroundSyncs"]

log = structlog.get_logger("brokerlink.sync")


class BackgroundSyncs:
    def __init__(self, engine: SyncEngine) -> None:
        self.engine = engine
        self._connections: dict[int, asyncio.Task[ConnectionOutcome]] = {}
        self._users: dict[int, asyncio.Task[SyncSummary]] = {}

    def connection(self, connection_id: int) -> asyncio.Task[ConnectionOutcome]:
        """Sync one connection now, in the background (after it was linked or re-linked)."""
        running = self._connections.get(connection_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self.engine.sync_connection(connection_id))
        self._connections[connection_id] = task
        task.add_done_callback(lambda t: self._finished("connection", connection_id, t))
        return task

    def user(self, user_id: int) -> asyncio.Task[SyncSummary]:
        """Sync every connection of a user in the background ("sync all")."""
        running = self._users.get(user_id)
        if running is not None and not running.done():
            return running
        task = asyncio.create_task(self.engine.sync_user(user_id))
        self._users[user_id] = task
        task.add_done_callback(lambda t: self._finished("user", user_id, t))
        return task

    def syncing_user(self, user_id: int) -> bool:
        running = self._users.get(user_id)
        return running is not None and not running.done()

    def _finished(self, scope: str, key: int, task: asyncio.Task[object]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # The engine records per-connection failures itself; this is anything else.
            log.error("sync.background.failed", scope=scope, id=key, error=repr(error))

    async def drain(self) -> None:
        """Wait for every running sync (tests, shutdown)."""
        while True:
            running = [
                t for t in (*self._connections.values(), *self._users.values()) if not t.done()
            ]
            if not running:
                return
            await asyncio.gather(*running, return_exceptions=True)

    async def close(self) -> None:
        for task in (*self._connections.values(), *self._users.values()):
            task.cancel()
        await asyncio.gather(
            *self._connections.values(), *self._users.values(), return_exceptions=True
        )
