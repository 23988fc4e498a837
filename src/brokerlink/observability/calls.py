"""The provider call log writer: one `provider_call_log` row per call, off the request path.

    recorder = CallRecorder(sessionmaker)      # a `providers.observe.CallSink`
    async with recorder.running():             # the flusher task; flushed once more on exit
        ...

`observe` only appends to a bounded buffer (the call's own coroutine never waits for the store).
A background task writes what is buffered in batches, each batch in its own short transaction,
every `flush_seconds` or as soon as a batch is full; so no transaction is ever open across a
provider call, and a slow store slows no request. A full buffer drops the new row and counts it
(`brokerlink_call_log_dropped_total`) rather than block. A batch the store refuses is dropped
and counted too: the call log is for figures, never worth failing or stalling the product.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from brokerlink.db.session import transaction
from brokerlink.domain.enums import Provider
from brokerlink.log import get_logger
from brokerlink.models import ProviderCall
from brokerlink.observability import metrics
from brokerlink.providers.observe import CallRecord

__all__ = ["CallRecorder"]

_log = get_logger("brokerlink.observability")


class CallRecorder:
    """Buffers `CallRecord`s and writes them as `provider_call_log` rows (see the module)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        capacity: int = 10_000,
        batch: int = 500,
        flush_seconds: float = 1.0,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._buffer: deque[dict[str, Any]] = deque()
        self.capacity = capacity
        self.batch = batch
        self.flush_seconds = flush_seconds
        self._wake: asyncio.Event | None = None
        self.dropped = 0
        self.written = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def observe(self, record: CallRecord) -> None:
        if len(self._buffer) >= self.capacity:
            self._drop(1)
            return
        self._buffer.append(_row(record))
        if self._wake is not None and len(self._buffer) >= self.batch:
            self._wake.set()

    async def flush(self) -> int:
        """Write everything buffered now, a batch per transaction; the rows written."""
        done = 0
        while self._buffer:
            rows = [self._buffer.popleft() for _ in range(min(self.batch, len(self._buffer)))]
            try:
                async with transaction(self._sessionmaker) as session:
                    await session.execute(insert(ProviderCall), rows)
            except Exception as exc:  # noqa: BLE001 - the log is never worth failing the product
                self._drop(len(rows))
                _log.warning("provider_call_log.write_failed", rows=len(rows), error=repr(exc))
                continue
            done += len(rows)
        self.written += done
        return done

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[CallRecorder]:
        """The flusher task for the block; what is still buffered is written on exit."""
        self._wake = asyncio.Event()
        task = asyncio.create_task(self._run(self._wake))
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self._wake = None
            await self.flush()

    async def _run(self, wake: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.flush_seconds)
            wake.clear()
            await self.flush()

    def _drop(self, count: int) -> None:
        self.dropped += count
        metrics.call_log_dropped(count)


def _row(record: CallRecord) -> dict[str, Any]:
    """The row of one call: every field the `provider.call` event carries but the attempts."""
    cost = record.cost
    return {
        "provider": Provider(record.provider),
        "institution": _cut(record.institution, 128),
        "operation": record.operation[:64],
        "call_id": record.request_id[:64],
        "provider_request_id": _cut(record.provider_request_id, 128),
        "latency_ms": round(record.latency_ms),
        "result": record.result[:64],
        "error_code": _cut(record.error_code, 64),
        "cost_type": None if cost is None else cost.type[:32],
        "cost_amount": None if cost is None else cost.amount,
        "status_code": record.status,
        "user_id": record.user_id,
        "occurred_at": record.occurred_at,
    }


def _cut(value: str | None, length: int) -> str | None:
    return None if value is None else value[:length]
