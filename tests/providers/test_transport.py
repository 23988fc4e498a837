"""The lean HTTP/1.1 transport: against the real sandbox under uvicorn, and a scripted server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
import pytest_asyncio

from brokerlink.providers import _transport
from brokerlink.providers._transport import AsyncHTTPTransport, url_with_path
from brokerlink.providers.snaptrade import SnapTradeClient
from brokerlink.sandbox.snaptrade import create_app
from tests.fixtures.uvicorn_thread import serve_in_thread

CLIENT_ID = "TRANSPORT-CLIENT"
CONSUMER_KEY = "transport-consumer-key"

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def test_exported_members():
    assert _transport.__all__ == ["AsyncHTTPTransport", "url_with_path"]


# -- the sandbox, served by uvicorn on loopback -----------------------------------------------


@pytest.fixture
def served() -> Iterator[str]:
    with serve_in_thread(
        create_app(client_id=CLIENT_ID, consumer_key=CONSUMER_KEY, rate_limit=0)
    ) as base_url:
        yield base_url


class TestAgainstSandbox:
    @pytest.mark.asyncio
    async def test_signed_calls_share_one_connection(self, served):
        transport = AsyncHTTPTransport()
        async with SnapTradeClient(
            CLIENT_ID, CONSUMER_KEY, base_url=served, transport=transport
        ) as client:
            assert (await client.api_status())["online"] is True
            user_id, secret = await client.register_user("transport-user")
            await client.sandbox_create_connection(user_id, secret, "SCHWAB")
            accounts = await client.list_accounts(user_id, secret)
            positions = await client.get_positions(user_id, secret, accounts[0]["id"])
            assert isinstance(positions, dict)
            assert len(transport._pool.open) == 1  # keep-alive: every call on one connection

    @pytest.mark.asyncio
    async def test_is_the_default(self, served):
        async with SnapTradeClient(CLIENT_ID, CONSUMER_KEY, base_url=served) as client:
            assert isinstance(client._transport, AsyncHTTPTransport)
            assert (await client.api_status())["online"] is True

    def test_one_transport_across_event_loops(self, served):
        # One transport used from two loops: the first loop's idle connection is not reused.
        transport = AsyncHTTPTransport()

        async def get() -> int:
            response = await transport.handle_async_request(httpx.Request("GET", served + "/"))
            return response.status_code

        first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            assert first_loop.run_until_complete(get()) == 200
            first = set(transport._pool.open)
            assert second_loop.run_until_complete(get()) == 200
            assert len(transport._pool.open) == 1
            assert not first & transport._pool.open
            second_loop.run_until_complete(transport.aclose())
            first_loop.run_until_complete(asyncio.sleep(0))  # let the first connection close
        finally:
            first_loop.close()
            second_loop.close()

    @pytest.mark.asyncio
    async def test_concurrent_requests_open_more_connections(self, served):
        transport = AsyncHTTPTransport()
        async with httpx.AsyncClient(transport=transport, base_url=served) as http:
            answers = await asyncio.gather(*(http.get("/") for _ in range(5)))
            assert {r.status_code for r in answers} == {200}
            assert 1 <= len(transport._pool.open) <= 5
            again = await http.get("/")
            assert again.json()["online"] is True

    @pytest.mark.asyncio
    async def test_latency_fault_and_read_timeout(self, served):
        async with httpx.AsyncClient(
            transport=AsyncHTTPTransport(), base_url=served, timeout=0.2
        ) as http:
            with pytest.raises(httpx.ReadTimeout):
                await http.get("/", headers={"X-Sandbox-Fault": "latency=2"})


# -- a scripted server: exact bytes on the wire ---------------------------------------------

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Server"], Awaitable[None]]


class Server:
    """A loopback TCP server that runs `handler` per connection and records what it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        body = b""
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                body = await reader.readexactly(int(value))
            elif name.lower() == b"transfer-encoding":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip(), 16)
                    chunk = await reader.readexactly(size + 2)
                    body += chunk[:-2]
                    if size == 0:
                        break
        self.requests.append(head + body)
        return head + body


def answering(*responses: bytes, then_close: bool = False) -> Handler:
    """Answer requests on each connection with `responses` in turn (the last one repeats)."""

    async def handler(reader, writer, server):
        index = 0
        while True:
            await server.read_request(reader)
            writer.write(responses[min(index, len(responses) - 1)])
            await writer.drain()
            index += 1
            if then_close:
                return

    return handler


@pytest_asyncio.fixture
async def http() -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    clients: list[httpx.AsyncClient] = []

    def build(server: Server, **kw) -> httpx.AsyncClient:
        transport = kw.pop("transport", None) or AsyncHTTPTransport(**kw.pop("transport_kw", {}))
        client = httpx.AsyncClient(transport=transport, base_url=server.url, **kw)
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


class TestKeepAlive:
    @pytest.mark.asyncio
    async def test_sequential_requests_reuse_the_connection(self, http):
        async with Server(answering(OK)) as server:
            client = http(server)
            for _ in range(3):
                assert (await client.get("/x")).json() == {}
            assert server.connections == 1
            assert server.requests[0].startswith(b"GET /x HTTP/1.1\r\n")

    @pytest.mark.asyncio
    async def test_connection_close_header_opens_a_new_one(self, http):
        close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
        async with Server(answering(close, then_close=True)) as server:
            client = http(server)
            assert (await client.get("/")).text == "hi"
            assert (await client.get("/")).text == "hi"
            assert server.connections == 2

    @pytest.mark.asyncio
    async def test_idle_connection_closed_by_server_is_not_reused(self, http):
        # A keep-alive answer, then the server hangs up while the connection sits idle.
        async with Server(answering(OK, then_close=True)) as server:
            client = http(server)
            assert (await client.get("/")).status_code == 200
            await asyncio.sleep(0.05)
            assert (await client.get("/")).status_code == 200
            assert server.connections == 2

    @pytest.mark.asyncio
    async def test_idle_connections_expire(self, http):
        async with Server(answering(OK)) as server:
            client = http(server, transport_kw={"limits": httpx.Limits(keepalive_expiry=0.01)})
            await client.get("/")
            await asyncio.sleep(0.05)
            await client.get("/")
            assert server.connections == 2

    @pytest.mark.asyncio
    async def test_pool_limit_queues_then_times_out(self, http):
        release = asyncio.Event()

        async def slow(reader, writer, server):
            while True:
                await server.read_request(reader)
                await release.wait()
                writer.write(OK)
                await writer.drain()

        async with Server(slow) as server:
            limits = httpx.Limits(max_connections=1)
            client = http(
                server, transport_kw={"limits": limits}, timeout=httpx.Timeout(5, pool=0.1)
            )
            first = asyncio.create_task(client.get("/"))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await client.get("/")
            release.set()
            assert (await first).status_code == 200
            assert (await client.get("/")).status_code == 200
            assert server.connections == 1


class TestBodies:
    @pytest.mark.asyncio
    async def test_chunked_response(self, http):
        chunked = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n"
        )
        async with Server(answering(chunked)) as server:
            client = http(server)
            assert (await client.get("/")).text == "hello, world"
            assert (await client.get("/")).text == "hello, world"  # framing left it reusable
            assert server.connections == 1

    @pytest.mark.asyncio
    async def test_body_until_close(self, http):
        async with Server(answering(b"HTTP/1.1 200 OK\r\n\r\nall of it", then_close=True)) as s:
            client = http(s)
            assert (await client.get("/")).text == "all of it"
            assert (await client.get("/")).text == "all of it"
            assert s.connections == 2

    @pytest.mark.asyncio
    @pytest.mark.parametrize(("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)])
    async def test_answers_without_a_body(self, http, method, status):
        head = b"HTTP/1.1 %d X\r\nContent-Length: 9\r\n\r\n" % status
        answer = head if method == "HEAD" or status != 200 else head + b"123456789"
        async with Server(answering(answer)) as server:
            client = http(server)
            for _ in range(2):
                response = await client.request(method, "/")
                assert (response.status_code, response.content) == (status, b"")
            assert server.connections == 1

    @pytest.mark.asyncio
    async def test_interim_100_is_skipped(self, http):
        async with Server(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)) as server:
            assert (await http(server).get("/")).json() == {}

    @pytest.mark.asyncio
    async def test_request_bodies(self, http):
        async def chunks():
            yield b"ab"
            yield b"cd"

        async with Server(answering(OK)) as server:
            client = http(server)
            await client.post("/fixed", content=b'{"a":1}')
            await client.post("/streamed", content=chunks())
            fixed, streamed = server.requests
            assert b"Content-Length: 7\r\n" in fixed
            assert fixed.endswith(b'\r\n\r\n{"a":1}')
            assert b"Transfer-Encoding: chunked\r\n" in streamed
            assert streamed.endswith(b"\r\n\r\nabcd")

    @pytest.mark.asyncio
    async def test_gzip_is_decoded(self, http):
        import gzip

        data = gzip.compress(b'{"zipped":true}')
        answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(
            data
        )
        async with Server(answering(answer + data)) as server:
            assert (await http(server).get("/")).json() == {"zipped": True}


class TestErrors:
    @pytest.mark.asyncio
    async def test_connect_refused(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]  # bound, never listening: refused
            async with httpx.AsyncClient(transport=AsyncHTTPTransport()) as client:
                with pytest.raises(httpx.ConnectError):
                    await client.get(f"http://127.0.0.1:{port}/")

    @pytest.mark.asyncio
    async def test_read_timeout(self, http):
        async def silent(reader, writer, server):
            await server.read_request(reader)
            await asyncio.sleep(5)

        async with Server(silent) as server:
            client = http(server, timeout=0.1)
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/")

    @pytest.mark.asyncio
    async def test_shorter_timeout_on_a_reused_connection(self, http):
        # The connection's timer was armed for 30 s by the first request; the second's 0.1 s
        # must still apply.
        async def once(reader, writer, server):
            await server.read_request(reader)
            writer.write(OK)
            await server.read_request(reader)
            await asyncio.sleep(5)

        async with Server(once) as server:
            client = http(server, timeout=30)
            assert (await client.get("/")).status_code == 200
            started = time.monotonic()
            with pytest.raises(httpx.ReadTimeout):
                await client.get("/", timeout=0.1)
            assert time.monotonic() - started < 2
            assert server.connections == 1

    @pytest.mark.asyncio
    async def test_closed_without_answer(self, http):
        async def hang_up(reader, writer, server):
            await server.read_request(reader)

        async with Server(hang_up) as server:
            with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
                await http(server).get("/")

    @pytest.mark.asyncio
    async def test_closed_mid_body(self, http):
        short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"
        async with Server(answering(short, then_close=True)) as server:
            with pytest.raises(httpx.RemoteProtocolError, match="5 of 10"):
                await http(server).get("/")

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "answer",
        [
            b"SPDY/3 200 OK\r\n\r\n",
            b"HTTP/1.1 2xx OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        ],
    )
    async def test_broken_answers(self, http, answer):
        async with Server(answering(answer)) as server:
            with pytest.raises(httpx.RemoteProtocolError):
                await http(server).get("/")

    @pytest.mark.asyncio
    async def test_header_injection_refused(self, http):
        async with Server(answering(OK)) as server:
            with pytest.raises(httpx.LocalProtocolError):
                await http(server).get("/", headers={"X-Evil": "a\r\nX-Injected: 1"})
            assert server.connections == 0

    @pytest.mark.asyncio
    async def test_unsupported_scheme(self):
        async with httpx.AsyncClient(transport=AsyncHTTPTransport()) as client:
            with pytest.raises(httpx.UnsupportedProtocol):
                await client.get("ftp://127.0.0.1/")

    @pytest.mark.asyncio
    async def test_cancelled_request_does_not_leak_the_connection(self, http):
        async def silent(reader, writer, server):
            await server.read_request(reader)
            await asyncio.sleep(5)

        async with Server(silent) as server:
            transport = AsyncHTTPTransport()
            client = http(server, transport=transport)
            task = asyncio.create_task(client.get("/"))
            await asyncio.sleep(0.05)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert not transport._pool.open

    @pytest.mark.asyncio
    async def test_closed_transport_refuses(self):
        transport = AsyncHTTPTransport()
        await transport.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await transport.handle_async_request(httpx.Request("GET", "http://127.0.0.1:1/"))


class TestUrlWithPath:
    @pytest.mark.parametrize(
        ("origin", "path", "query"),
        [
            ("https://api.snaptrade.com", "/api/v1/accounts/a-b", "userId=u&clientId=C"),
            ("http://127.0.0.1:8080", "/", None),
            ("http://[::1]:8080", "/x", "a=%20b&c=%2F"),
        ],
    )
    def test_same_as_parsing(self, origin, path, query):
        fast = url_with_path(httpx.URL(origin), path, query)
        parsed = httpx.URL(origin + path + ("" if query is None else f"?{query}"))
        assert fast == parsed
        assert (fast.raw_path, fast.host, fast.port, fast.params) == (
            parsed.raw_path,
            parsed.host,
            parsed.port,
            parsed.params,
        )

    def test_fast_path_is_active(self):
        assert _transport._FAST_URL  # if httpx changed, this says the slow path is in use


def _self_signed(tmp_path) -> tuple[str, str]:
    """A certificate and key for 127.0.0.1, written as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_file), str(key_file)


class TestTls:
    @pytest.mark.asyncio
    async def test_https_with_keep_alive_and_verification(self, tmp_path):
        import ssl

        cert_file, key_file = _self_signed(tmp_path)
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(cert_file, key_file)
        server = Server(answering(OK))
        server._server = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=server_ctx)
        port = server._server.sockets[0].getsockname()[1]
        try:
            trusting = ssl.create_default_context(cafile=cert_file)
            async with httpx.AsyncClient(transport=AsyncHTTPTransport(verify=trusting)) as client:
                for _ in range(2):
                    assert (await client.get(f"https://127.0.0.1:{port}/")).json() == {}
            assert server.connections == 1
            async with httpx.AsyncClient(transport=AsyncHTTPTransport()) as client:
                with pytest.raises(httpx.ConnectError):  # not signed by a CA certifi knows
                    await client.get(f"https://127.0.0.1:{port}/")
        finally:
            await server.__aexit__()


class TestClientDefault:
    @pytest.fixture(autouse=True)
    def _no_proxy_env(self, monkeypatch):
        for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
            monkeypatch.delenv(name.upper(), raising=False)

    @pytest.mark.asyncio
    async def test_ours_without_a_proxy(self):
        async with SnapTradeClient(CLIENT_ID, CONSUMER_KEY) as client:
            assert isinstance(client._transport, AsyncHTTPTransport)

    @pytest.mark.asyncio
    async def test_httpx_transport_when_the_environment_sets_a_proxy(self, monkeypatch):
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
        async with SnapTradeClient(CLIENT_ID, CONSUMER_KEY) as client:
            assert isinstance(client._transport, httpx.AsyncHTTPTransport)
        monkeypatch.setenv("NO_PROXY", "api.snaptrade.com")
        async with SnapTradeClient(CLIENT_ID, CONSUMER_KEY) as client:
            assert isinstance(client._transport, AsyncHTTPTransport)
