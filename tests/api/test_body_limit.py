"""The request body limit: refused with 413 before the body is read and before anyone is
authenticated, by Content-Length or by counting a chunked body; a body at the limit works."""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from brokerlink.api import create_app
from brokerlink.api.middleware import BodyLimit
from brokerlink.config import Settings
from tests.fixtures.api import BASE, assert_error
from tests.fixtures.uvicorn_thread import serve_in_thread

pytestmark = pytest.mark.asyncio

LIMIT = 4096


def _client(app, token: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE, headers=headers)


def _manual_position(size: int) -> bytes:
    """A valid manual-position body padded with JSON whitespace to exactly `size` bytes."""
    body = json.dumps({"ticker": "TSLA", "quantity": "1"}).encode()
    assert len(body) <= size
    return body[:-1] + b" " * (size - len(body)) + b"}"


async def _chunks(total: int, chunk: int = 1000) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        part = min(chunk, total - sent)
        sent += part
        yield b"x" * part


class Recorder:
    """An ASGI app that records whether it was called and how many body bytes it read."""

    def __init__(self) -> None:
        self.called = False
        self.read = 0

    async def __call__(self, scope, receive, send) -> None:
        self.called = True
        more = True
        while more:
            message = await receive()
            self.read += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.read).encode()})


class TestByContentLength:
    async def test_a_big_content_length_is_refused_before_the_app_is_called(self):
        inner = Recorder()
        async with _client(BodyLimit(inner, max_bytes=LIMIT)) as client:
            response = await client.post(
                "/api/connections",
                content=b"{}",
                headers={"content-length": str(300 * 1024 * 1024)},
            )
        assert_error(response, 413, "request_too_large")
        assert response.headers["connection"] == "close"
        assert not inner.called

    async def test_refused_before_authentication(self, api):
        """No token, a wrong token: a 413, not the 401 authentication would give."""
        for token in (None, "not-a-token"):
            async with _client(api.app, token) as client:
                response = await client.post(
                    "/api/connections",
                    content=b"{}",
                    headers={"content-length": str(2 * 1024 * 1024)},
                )
            assert_error(response, 413, "request_too_large")

    async def test_an_invalid_content_length_is_a_400(self):
        inner = Recorder()
        async with _client(BodyLimit(inner, max_bytes=LIMIT)) as client:
            response = await client.post("/x", content=b"{}", headers={"content-length": "1e9"})
        assert_error(response, 400, "invalid_content_length")
        assert not inner.called

    async def test_a_body_at_the_limit_works_and_one_byte_more_does_not(self, api):
        user = await api.user()
        app = create_app(api.state, max_body_bytes=LIMIT)
        async with _client(app, user.token) as client:
            at_limit = _manual_position(LIMIT)
            done = await client.post(
                "/api/manual-positions",
                content=at_limit,
                headers={"content-type": "application/json"},
            )
            assert done.status_code == 201, done.text
            over = await client.post(
                "/api/manual-positions",
                content=_manual_position(LIMIT + 1),
                headers={"content-type": "application/json"},
            )
            assert_error(over, 413, "request_too_large")
        tickers = [p["ticker"] for p in (await user.get("/api/manual-positions")).json()]
        assert tickers == ["TSLA"]  # the refused one was never stored


class TestChunked:
    async def test_a_chunked_body_over_the_limit_is_refused_and_not_read_further(self):
        inner = Recorder()
        read: list[int] = []

        async def counted() -> AsyncIterator[bytes]:
            async for chunk in _chunks(10 * LIMIT):
                read.append(len(chunk))
                yield chunk

        async with _client(BodyLimit(inner, max_bytes=LIMIT)) as client:
            response = await client.post("/api/connections", content=counted())
        assert_error(response, 413, "request_too_large")
        assert not inner.called
        # Reading stopped at the first chunk past the limit, not at the end of the body.
        assert sum(read) <= LIMIT + 1000 < 10 * LIMIT

    async def test_a_chunked_body_at_the_limit_reaches_the_app_whole(self):
        inner = Recorder()
        async with _client(BodyLimit(inner, max_bytes=LIMIT)) as client:
            response = await client.post("/x", content=_chunks(LIMIT))
        assert response.status_code == 200
        assert response.text == str(LIMIT)

    async def test_a_chunked_body_through_the_api(self, api):
        user = await api.user()
        app = create_app(api.state, max_body_bytes=LIMIT)

        async def body(size: int) -> AsyncIterator[bytes]:
            yield _manual_position(size)

        async with _client(app, user.token) as client:
            headers = {"content-type": "application/json"}
            over = await client.post("/api/manual-positions", content=body(LIMIT + 1))
            assert_error(over, 413, "request_too_large")
            done = await client.post("/api/manual-positions", content=body(LIMIT), headers=headers)
            assert done.status_code == 201, done.text

    async def test_over_a_real_socket_the_server_stops_taking_the_upload(self):
        inner = Recorder()
        total = 64 * 1024 * 1024
        sent: list[int] = []

        def upload():
            for _ in range(0, total, 64 * 1024):
                sent.append(64 * 1024)
                yield b"x" * 64 * 1024

        def post(base: str) -> httpx.Response | None:
            try:
                return httpx.post(f"{base}/upload", content=upload(), timeout=30)
            except httpx.HTTPError:
                return None  # the server closed before the client read the answer

        with serve_in_thread(BodyLimit(inner, max_bytes=LIMIT)) as base:
            response = await asyncio.to_thread(post, base)
        if response is not None:
            assert_error(response, 413, "request_too_large")
        assert not inner.called
        assert sum(sent) < total


class TestConfiguration:
    async def test_the_limit_comes_from_the_setting(self, monkeypatch):
        monkeypatch.setenv("BROKERLINK_MAX_BODY_BYTES", "2048")
        settings = Settings()
        assert settings.max_body_bytes == 2048
        async with _client(create_app(settings=settings)) as client:
            response = await client.post("/api/auth/login", content=b" " * 2049)
        assert_error(response, 413, "request_too_large")

    async def test_the_default_is_one_mebibyte(self, api):
        assert Settings().max_body_bytes == 1024 * 1024
        async with _client(api.app) as client:
            response = await client.post("/api/auth/login", content=b" " * (1024 * 1024 + 1))
        assert_error(response, 413, "request_too_large")


class TestWebSignIn:
    async def test_the_sign_in_form_still_works(self, api):
        user = await api.user(password="correct horse battery")
        async with _client(api.app) as browser:
            page = await browser.get("/login")
            assert page.status_code == 200
            assert "password" in page.text
            # What the login page's script posts.
            signed_in = await browser.post(
                "/api/auth/login",
                json={"email": user.email, "password": "correct horse battery"},
            )
            assert signed_in.status_code == 200, signed_in.text
            assert signed_in.json()["email"] == user.email
            home = await browser.get("/")
            assert home.status_code == 200
            assert "/login" not in str(home.url)
