"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio protocols.

`AsyncHTTPTransport` is what the provider clients use by default instead of httpx's own
(httpcore + h11 + anyio). It does less, so each request costs less CPU: one `write` per request,
a `bytearray` per connection fed by `data_received`, a response head parsed with `bytes.split`.

What it does: HTTP/1.1 over TCP or TLS, a pool of keep-alive connections per origin
(`httpx.Limits`: total connections, idle connections kept, idle expiry), `Content-Length`,
chunked and read-until-close bodies, request bodies given as bytes or streamed (sent chunked
when they have no length), and httpx's four timeouts. Failures are httpx's exceptions:
`ConnectError`/`ConnectTimeout`, `ReadError`/`ReadTimeout`, `WriteError`/`WriteTimeout`,
`PoolTimeout`, `RemoteProtocolError` (the server broke HTTP or hung up mid-answer) and
`LocalProtocolError` (a header that would break the request).

What it does not: HTTP/2, proxies, `Expect: 100-continue`, upgrades. It reads the whole body
before returning the response, which suits API calls with JSON answers, not downloads.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any

import httpx

__all__ = ["AsyncHTTPTransport", "url_with_path"]

_MAX_HEAD = 64 * 1024  # bytes of status line and headers we accept before giving up
_NO_BODY_STATUSES = frozenset({204, 304})
_DEFAULT_PORTS = {b"http": 80, b"https": 443}

_DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)

Origin = tuple[bytes, bytes, int]


def url_with_path(origin: httpx.URL, path: str, query: str | None) -> httpx.URL:
    """`origin` with this path and query, both already percent-encoded ASCII.

    `httpx.URL` re-parses and re-validates a whole URL on every construction, character by
    character (~50 µs for a signed SnapTrade URL: a tenth of the client's CPU per request).
    Callers whose pieces are valid by construction skip that by replacing the two fields of an
    origin parsed once. This reaches into httpx's private `_uri_reference`; `_FAST_URL` checks at
    import that it still behaves, and the public (slow) path is used otherwise.
    """
    if _FAST_URL:
        url = httpx.URL.__new__(httpx.URL)
        url._uri_reference = origin._uri_reference._replace(path=path, query=query)
        return url
    return origin.copy_with(raw_path=(path if query is None else f"{path}?{query}").encode())


def _fast_url_works() -> bool:
    try:
        fast = httpx.URL.__new__(httpx.URL)
        origin = httpx.URL("https://example.com:8443")
        fast._uri_reference = origin._uri_reference._replace(path="/a/b", query="x=1&y=%20")
        slow = httpx.URL("https://example.com:8443/a/b?x=1&y=%20")
        return (
            fast == slow
            and fast.raw_path == slow.raw_path
            and fast.host == slow.host
            and fast.port == slow.port
            and fast.params == slow.params
        )
    except Exception:  # httpx changed its internals: use the public constructor
        return False


_FAST_URL = _fast_url_works()


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: bytes in a buffer, one waiter woken when more arrive."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        self.loop = loop
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.lost = False
        self.lost_error: BaseException | None = None
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._paused = False
        # One lazily re-armed timer per connection rather than a timer per wait: each wait only
        # moves `_deadline`, and the timer, when it fires, fails the wait then pending if that
        # wait's deadline has passed (or sleeps until it). Timeouts rarely fire; waits are many.
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._pending: asyncio.Future[None] | None = None
        self._timeout_error: type[httpx.TimeoutException] = httpx.ReadTimeout
        self._request: httpx.Request | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # let asyncio close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_error = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        waiter, self._writable = self._writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the transport -------------------------------------------------------------

    def reusable(self, now: float, expiry: float | None) -> bool:
        """Idle, still open, with nothing unexpected buffered, and not idle for too long."""
        if self.lost or self.eof or self.buffer or self.transport is None:
            return False
        if self.transport.is_closing():
            return False
        return expiry is None or now - self.idle_since < expiry

    def close(self) -> None:
        # A transport whose loop is closed cannot close (it would schedule a callback there);
        # its socket is closed when the transport is collected.
        if self.transport is not None and not self.loop.is_closed():
            self.transport.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.lost = True

    async def write(self, data: bytes, timeout: float | None, request: httpx.Request) -> None:
        if self.lost or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("connection closed before the request was sent", request=request)
        self.transport.write(data)
        if self._paused:
            self._writable = self.loop.create_future()
            await self._wait(self._writable, timeout, httpx.WriteTimeout, request)
            if self.lost:
                raise httpx.WriteError(_lost_message(self.lost_error), request=request)

    async def fill(self, timeout: float | None, request: httpx.Request) -> None:
        """Wait until more bytes (or end of stream) arrive."""
        if self.eof or self.lost:
            return
        self._waiter = self.loop.create_future()
        await self._wait(self._waiter, timeout, httpx.ReadTimeout, request)

    async def _wait(
        self,
        waiter: asyncio.Future[None],
        timeout: float | None,
        error: type[httpx.TimeoutException],
        request: httpx.Request,
    ) -> None:
        if timeout is not None:
            self._deadline = deadline = self.loop.time() + timeout
            self._timeout_error = error
            self._request = request
            timer = self._timer
            if timer is None or deadline < timer.when():
                if timer is not None:
                    timer.cancel()
                self._timer = self.loop.call_at(deadline, self._on_timer)
            self._pending = waiter
        try:
            await waiter
        finally:
            self._pending = None

    def _on_timer(self) -> None:
        self._timer = None
        waiter = self._pending
        if waiter is None or waiter.done():
            return  # nothing waiting: the next wait arms a new timer
        if self.loop.time() >= self._deadline:
            assert self._request is not None
            waiter.set_exception(self._timeout_error("timed out", request=self._request))
        else:
            self._timer = self.loop.call_at(self._deadline, self._on_timer)


def _lost_message(exc: BaseException | None) -> str:
    return f"connection lost: {exc}" if exc is not None else "connection lost"


class _Pool:
    """Connections per origin with a cap on the total; waiters queue fairly for a slot."""

    def __init__(self, limits: httpx.Limits) -> None:
        self.max_connections = limits.max_connections
        self.max_idle = limits.max_keepalive_connections
        self.expiry = limits.keepalive_expiry
        self.idle: dict[Origin, list[_Connection]] = {}
        self.open: set[_Connection] = set()
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.closed = False

    def idle_count(self) -> int:
        return sum(len(conns) for conns in self.idle.values())

    def take_idle(self, origin: Origin, loop: asyncio.AbstractEventLoop) -> _Connection | None:
        conns = self.idle.get(origin)
        now = loop.time()
        while conns:
            conn = conns.pop()  # the most recently used is the least likely to have timed out
            # A connection belongs to the loop that opened it (asyncio.run twice, one client).
            if conn.loop is loop and conn.reusable(now, self.expiry):
                return conn
            self.discard(conn)
        return None

    def has_room(self) -> bool:
        if self.max_connections is None or len(self.open) < self.max_connections:
            return True
        # Full: close an idle connection to another origin to make room, if there is one.
        for conns in self.idle.values():
            if conns:
                self.discard(conns.pop(0))
                return True
        return False

    def discard(self, conn: _Connection) -> None:
        conn.close()
        if conn in self.open:
            self.open.remove(conn)
            self.wake_one()

    def release(self, conn: _Connection, now: float) -> None:
        if self.closed or (self.max_idle is not None and self.idle_count() >= self.max_idle):
            self.discard(conn)
            return
        conn.idle_since = now
        conns = self.idle.setdefault(conn.origin, [])
        # Close what has idled past the expiry (the oldest are first) instead of keeping it
        # open until a request happens to look at it.
        while conns and self.expiry is not None and now - conns[0].idle_since >= self.expiry:
            self.discard(conns.pop(0))
        conns.append(conn)
        self.wake_one()

    def wake_one(self) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


class AsyncHTTPTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive over asyncio: see the module docstring for its scope.

    `limits` caps the pool as httpx's does. The default keeps up to all 100 connections idle
    (httpx keeps 20) for 5 s: with 20, every burst wider than 20 requests closes connections
    that the next burst opens again, each a TCP and TLS handshake. `verify` is an
    `ssl.SSLContext`, or True for httpx's default (certifi) context, or False to skip
    certificate checks.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self._pool = _Pool(limits or _DEFAULT_LIMITS)
        self._verify = verify
        self._ssl_context: ssl.SSLContext | None = (
            verify if isinstance(verify, ssl.SSLContext) else None
        )

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(verify=bool(self._verify))
        return self._ssl_context

    async def aclose(self) -> None:
        pool = self._pool
        pool.closed = True
        for conn in list(pool.open):
            conn.close()
        pool.open.clear()
        pool.idle.clear()
        for waiter in pool.waiters:
            if not waiter.done():
                waiter.cancel()
        pool.waiters.clear()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._pool.closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.raw_scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"unsupported URL scheme {url.scheme!r}", request=request
            )
        origin: Origin = (scheme, url.raw_host, url.port or _DEFAULT_PORTS[scheme])
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        head = _request_head(request)
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = None  # a streamed body: sent after the head, below

        conn = await self._acquire(origin, timeouts, request)
        try:
            read_timeout = timeouts.get("read")
            write_timeout = timeouts.get("write")
            if body is None:
                await conn.write(head, write_timeout, request)
                await _write_stream(conn, request, write_timeout)
            else:
                await conn.write(head + body, write_timeout, request)
            status, reason, version, headers, content, keep = await _read_response(
                conn, request, read_timeout
            )
        except BaseException:
            self._pool.discard(conn)
            raise
        if keep and not request.headers.get("connection", "").lower() == "close":
            self._pool.release(conn, conn.loop.time())
        else:
            self._pool.discard(conn)
        return httpx.Response(
            status,
            headers=headers,
            stream=httpx.ByteStream(content),
            extensions={"http_version": version, "reason_phrase": reason},
        )

    async def _acquire(
        self, origin: Origin, timeouts: dict[str, float | None], request: httpx.Request
    ) -> _Connection:
        pool = self._pool
        loop = asyncio.get_running_loop()
        while True:
            conn = pool.take_idle(origin, loop)
            if conn is not None:
                return conn
            if pool.has_room():
                break
            waiter = loop.create_future()
            pool.waiters.append(waiter)
            pool_timeout = timeouts.get("pool")
            try:
                async with asyncio.timeout(pool_timeout):
                    await waiter
            except BaseException as exc:
                if not waiter.done():
                    waiter.cancel()
                pool.wake_one()  # pass on a wake-up this waiter may have taken
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout(
                        "no connection free in the pool", request=request
                    ) from None
                raise
            if pool.closed:
                raise RuntimeError("the transport is closed")

        conn = _Connection(loop, origin)
        pool.open.add(conn)
        try:
            await self._connect(conn, timeouts.get("connect"), request)
        except BaseException:
            pool.discard(conn)
            raise
        return conn

    async def _connect(
        self, conn: _Connection, timeout: float | None, request: httpx.Request
    ) -> None:
        scheme, host, port = conn.origin
        hostname = host.decode("ascii")
        kwargs: dict[str, Any] = {}
        if scheme == b"https":
            kwargs = {"ssl": self._ssl(), "server_hostname": hostname}
        try:
            async with asyncio.timeout(timeout):
                await conn.loop.create_connection(lambda: conn, hostname, port, **kwargs)
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from None
        except OSError as exc:  # refused, unreachable, DNS failure, TLS handshake (SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc


def _request_head(request: httpx.Request) -> bytes:
    raw = request.headers.raw
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    lines += [b"%s: %s\r\n" % pair for pair in raw]
    lines.append(b"\r\n")
    head = b"".join(lines)
    # httpx does not reject CR/LF in header values; one would split the request in two.
    if head.count(b"\n") != len(lines) or head.count(b"\r") != len(lines) or b"\0" in head:
        raise httpx.LocalProtocolError("invalid character in a request header", request=request)
    return head


async def _write_stream(conn: _Connection, request: httpx.Request, timeout: float | None) -> None:
    chunked = "content-length" not in request.headers and bool(
        request.headers.get("transfer-encoding")
    )
    stream = request.stream
    if not isinstance(stream, httpx.AsyncByteStream):
        raise RuntimeError("AsyncHTTPTransport needs an async request stream")
    async for chunk in stream:
        if chunk:
            await conn.write(
                b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk, timeout, request
            )
    if chunked:
        await conn.write(b"0\r\n\r\n", timeout, request)


async def _read_response(
    conn: _Connection, request: httpx.Request, timeout: float | None
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bytes, bool]:
    """Status, reason, version, headers, body, and whether the connection may be reused."""
    while True:
        status, reason, version, headers = await _read_head(conn, request, timeout)
        if not 100 <= status < 200 or status == 101:
            break  # 1xx are interim answers (we never send Expect): skip to the real one
    if status == 101:
        raise httpx.RemoteProtocolError("unexpected protocol switch", request=request)
    keep = version == b"HTTP/1.1"
    length: int | None = None
    chunked = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-length":
            try:
                value_length = int(value)
            except ValueError:
                raise httpx.RemoteProtocolError("bad Content-Length", request=request) from None
            if value_length < 0 or (length is not None and length != value_length):
                raise httpx.RemoteProtocolError("bad Content-Length", request=request)
            length = value_length
        elif lowered == b"transfer-encoding":
            if value.lower().rsplit(b",", 1)[-1].strip() != b"chunked":
                raise httpx.RemoteProtocolError("unsupported Transfer-Encoding", request=request)
            chunked = True
        elif lowered == b"connection" and b"close" in value.lower():
            keep = False

    if request.method == "HEAD" or status in _NO_BODY_STATUSES:
        content = b""
    elif chunked:
        content = await _read_chunked(conn, request, timeout)
    elif length is not None:
        content = await _read_exactly(conn, length, request, timeout)
    else:  # no framing: the body runs until the server closes the connection
        while not (conn.eof or conn.lost):
            await conn.fill(timeout, request)
        _raise_if_reset(conn, request)
        content = bytes(conn.buffer)
        conn.buffer.clear()
        keep = False
    return status, reason, version, headers, content, keep


async def _read_head(
    conn: _Connection, request: httpx.Request, timeout: float | None
) -> tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]:
    buffer = conn.buffer
    start = 0
    while (end := buffer.find(b"\r\n\r\n", start)) < 0:
        if len(buffer) > _MAX_HEAD:
            raise httpx.RemoteProtocolError("response head too large", request=request)
        if conn.eof or conn.lost:
            _raise_if_reset(conn, request)
            raise httpx.RemoteProtocolError(
                "server disconnected without sending a complete response"
                if buffer
                else "server disconnected without sending a response",
                request=request,
            )
        start = max(0, len(buffer) - 3)
        await conn.fill(timeout, request)
    lines = bytes(buffer[:end]).split(b"\r\n")
    del buffer[: end + 4]
    version, _, rest = lines[0].partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"bad status line {lines[0][:80]!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError(f"bad header line {line[:80]!r}", request=request)
        headers.append((name, value.strip(b" \t")))
    return int(code), reason, version, headers


async def _read_exactly(
    conn: _Connection, size: int, request: httpx.Request, timeout: float | None
) -> bytes:
    buffer = conn.buffer
    while len(buffer) < size:
        if conn.eof or conn.lost:
            _raise_if_reset(conn, request)
            raise httpx.RemoteProtocolError(
                f"server closed the connection after {len(buffer)} of {size} body bytes",
                request=request,
            )
        await conn.fill(timeout, request)
    content = bytes(buffer[:size])
    del buffer[:size]
    return content


async def _read_line(conn: _Connection, request: httpx.Request, timeout: float | None) -> bytes:
    buffer = conn.buffer
    while (end := buffer.find(b"\r\n")) < 0:
        if len(buffer) > _MAX_HEAD:
            raise httpx.RemoteProtocolError("chunk header too large", request=request)
        if conn.eof or conn.lost:
            _raise_if_reset(conn, request)
            raise httpx.RemoteProtocolError(
                "server closed the connection inside a chunked body", request=request
            )
        await conn.fill(timeout, request)
    line = bytes(buffer[:end])
    del buffer[: end + 2]
    return line


async def _read_chunked(conn: _Connection, request: httpx.Request, timeout: float | None) -> bytes:
    parts: list[bytes] = []
    while True:
        size_field = (await _read_line(conn, request, timeout)).split(b";", 1)[0].strip()
        try:
            size = int(size_field, 16)
        except ValueError:
            raise httpx.RemoteProtocolError("bad chunk size", request=request) from None
        if size == 0:
            break
        chunk = await _read_exactly(conn, size + 2, request, timeout)
        if chunk[-2:] != b"\r\n":
            raise httpx.RemoteProtocolError("chunk not followed by CRLF", request=request)
        parts.append(chunk[:-2])
    while await _read_line(conn, request, timeout):  # trailer fields, ignored
        pass
    return b"".join(parts)


def _raise_if_reset(conn: _Connection, request: httpx.Request) -> None:
    if conn.lost_error is not None:
        raise httpx.ReadError(_lost_message(conn.lost_error), request=request)
