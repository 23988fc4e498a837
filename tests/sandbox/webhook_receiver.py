"""An in-process webhook receiver for the sandboxes' delivery tests: it records every request
and answers with the statuses it was scripted with (then `then`), or waits until released."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx


class Receiver:
    def __init__(self, *statuses: int, then: int = 200) -> None:
        self.requests: list[httpx.Request] = []
        self._script = list(statuses)
        self._then = then
        self.hold: asyncio.Event | None = None

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.hold is not None:
            await self.hold.wait()
        return httpx.Response(self._script.pop(0) if self._script else self._then)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests]


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[Any]:
    """Run the app's lifespan around the test, as a server would."""
    async with app.router.lifespan_context(app):
        yield app
