"""A limit on request bodies, enforced before the app does any work.

`BodyLimit` is pure ASGI and wraps the whole app (it is added last, so it runs first):

* a `Content-Length` over the limit is answered 413 without calling the app, so nothing reads
  the body and nobody is authenticated for it;
* a body without a `Content-Length` (chunked) is read here, counting bytes, and reading stops
  as soon as the count passes the limit: 413, again without calling the app. A body within the
  limit is then handed to the app unchanged, message by message.

The 413 closes the connection (`Connection: close`), so the server stops taking the rest of an
upload instead of reading it to find the next request.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from brokerlink.errors import RequestTooLarge

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimit"]

DEFAULT_MAX_BODY_BYTES = 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def _content_length(scope: Scope) -> int | None:
    """The declared length; None when absent. A value that is not one length is a 400."""
    values = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
    if not values:
        return None
    if len(set(values)) != 1 or not values[0].strip().isdigit():
        raise ValueError("invalid Content-Length")
    return int(values[0])


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413 before the wrapped app is called."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def _too_large(self, send: Send) -> None:
        await _answer(
            send,
            RequestTooLarge.status_code,
            RequestTooLarge.code,
            f"the request body is over the limit of {self.max_bytes} bytes",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            declared = _content_length(scope)
        except ValueError:
            await _answer(send, 400, "invalid_content_length", "the Content-Length is not valid")
            return
        if declared is not None:
            if declared > self.max_bytes:
                await self._too_large(send)
                return
            # The server delivers exactly the declared length (HTTP framing): nothing to count.
            await self.app(scope, receive, send)
            return
        buffered = await self._read_within_limit(receive)
        if buffered is None:
            await self._too_large(send)
            return

        async def replay() -> Message:
            return buffered.popleft() if buffered else await receive()

        await self.app(scope, replay, send)

    async def _read_within_limit(self, receive: Receive) -> deque[Message] | None:
        """The body's messages, or None as soon as they add up to more than the limit."""
        messages: deque[Message] = deque()
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # the client went away: the app sees the disconnect
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return None
            if not message.get("more_body", False):
                return messages
