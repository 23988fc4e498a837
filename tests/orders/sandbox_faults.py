"""Orders placed at the SnapTrade sandbox whose answer is lost (`X-Sandbox-Answer-Lost`)."""

from __future__ import annotations

import httpx

from brokerlink.sandbox.snaptrade.trading import ANSWER_LOST_HEADER


def is_placing(path: str) -> bool:
    """`/trade/{tradeId}` (a checked trade) or `/trade/place` (a force order)."""
    return path.startswith("/trade/") and path != "/trade/impact"


class LoseAnswers(httpx.AsyncBaseTransport):
    """Asks the sandbox to place the next `times` orders and then answer `status`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, status: int, times: int) -> None:
        self.inner = inner
        self.status = status
        self.times = times

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.times > 0 and is_placing(request.url.path):
            self.times -= 1
            request.headers[ANSWER_LOST_HEADER] = str(self.status)
        return await self.inner.handle_async_request(request)


def lose_next_answers(stack, *, status: int = 502, times: int = 1) -> None:
    """Between the client and the sandbox (inside the stack's request counter)."""
    stack.snaptrade_wire.inner = LoseAnswers(stack.snaptrade_wire.inner, status=status, times=times)


def sandbox_orders(stack) -> int:
    """Orders the SnapTrade sandbox holds, for every account."""
    return len(stack.snaptrade_app.state.sandbox.orders)
