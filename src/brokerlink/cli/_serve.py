"""Serve an ASGI app on a loopback port from inside a running event loop."""

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

__all__ = ["serve_in_background", "tcp_socket"]


def tcp_socket() -> socket.socket:
    """A TCP socket for uvicorn to serve on (bound by the caller), with Nagle's algorithm off.

    asyncio turns it off only on sockets whose protocol is `IPPROTO_TCP`, and a plain
    `socket(AF_INET, SOCK_STREAM)` says 0: on it every answer (headers, then body: two writes)
    waited for the client's delayed acknowledgement, some 40 ms per request on Linux. Made with
    the protocol named, and `TCP_NODELAY` set here too (accepted connections inherit it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@asynccontextmanager
async def serve_in_background(
    app: Any, host: str = "127.0.0.1", port: int = 0, *, any_port_if_busy: bool = False
) -> AsyncIterator[str]:
    """Run `app` under uvicorn as a task; yields its base URL and stops it on exit.

    Binding the socket here (port 0 picks a free one) means the URL is known before serving;
    `any_port_if_busy` takes a free port when `port` is in use.
    """
    sock = tcp_socket()
    try:
        sock.bind((host, port))
    except OSError:
        if not any_port_if_busy:
            sock.close()
            raise
        sock.bind((host, 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # surfaces the start-up error
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()
