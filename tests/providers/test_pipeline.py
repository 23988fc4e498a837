"""The one request pipeline (providers/_http.py) as both clients use it: httpx's own transport,
the environment's proxy, keep-alive, one log event per attempt, and a closed client."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import structlog

from brokerlink.providers import _http
from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import PlaidClient
from brokerlink.providers.snaptrade import SnapTradeClient

ITEM = {"item": {"item_id": "item-1"}, "request_id": "req-1"}


def test_exported_members():
    assert _http.__all__ == [
        "NOT_SENT_ERRORS",
        "RETRYABLE_ERRORS",
        "RETRYABLE_STATUSES",
        "Answer",
        "Call",
        "Dialect",
        "Pipeline",
        "RateLimiter",
        "RetryPolicy",
        "Stamp",
        "default_transport",
        "parse_retry_after",
    ]


class Upstream:
    """A loopback HTTP/1.1 server answering every request with `ITEM`, keeping connections
    alive; it records each request line and counts connections."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.connections = 0
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Upstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        body = json.dumps(ITEM).encode()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                self.lines.append(lines[0])
                length = next(
                    (int(v) for k, _, v in (h.partition(":") for h in lines[1:])
                     if k.lower() == "content-length"),
                    0,
                )  # fmt: skip
                await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.asyncio
class TestTransport:
    async def test_both_clients_default_to_httpx_s_own(self):
        async with (
            SnapTradeClient("C", "K") as snaptrade,
            PlaidClient("c", "s", environment="production") as plaid,
        ):
            assert type(snaptrade._pipeline.transport) is httpx.AsyncHTTPTransport
            assert type(plaid._pipeline.transport) is httpx.AsyncHTTPTransport

    async def test_calls_share_one_kept_alive_connection(self):
        async with Upstream() as upstream, PlaidClient("c", "s", base_url=upstream.url) as plaid:
            for _ in range(3):
                assert (await plaid.item_get("access-token"))["item"]["item_id"] == "item-1"
        assert upstream.lines == ["POST /item/get HTTP/1.1"] * 3
        assert upstream.connections == 1

    async def test_the_environment_s_proxy_is_used_unless_bypassed(self, monkeypatch):
        async with Upstream() as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            monkeypatch.setenv("NO_PROXY", "bypassed.test")
            async with PlaidClient("c", "s", base_url="http://plaid.test") as plaid:
                await plaid.item_get("access-token")
            assert proxy.lines == ["POST http://plaid.test/item/get HTTP/1.1"]
            bypassed = _http.default_transport("http://bypassed.test")
            proxied = _http.default_transport("http://plaid.test")
            try:
                assert type(bypassed._pool).__name__ == "AsyncConnectionPool"
                assert type(proxied._pool).__name__ == "AsyncHTTPProxy"
            finally:
                await bypassed.aclose()
                await proxied.aclose()

    async def test_a_closed_client_refuses_to_send(self):
        calls: list[httpx.Request] = []

        def answer(request: httpx.Request) -> httpx.Response:
            calls.append(request)
            return httpx.Response(200, json=ITEM)

        plaid = PlaidClient("c", "s", transport=httpx.MockTransport(answer))
        await plaid.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await plaid.item_get("access-token")
        assert calls == []


@pytest.mark.asyncio
class TestCallLog:
    async def test_one_event_per_attempt_with_the_same_fields_for_both(self):
        statuses = iter([503, 200, 503, 200])

        def answer(request: httpx.Request) -> httpx.Response:
            status = next(statuses)
            if "plaid" in request.url.host:
                body = ITEM if status == 200 else {"error_code": "INTERNAL_SERVER_ERROR",
                                                   "error_type": "API_ERROR",
                                                   "request_id": "req-e"}  # fmt: skip
                return httpx.Response(status, json=body)
            body = [] if status == 200 else {"detail": "busy", "code": "3002"}
            return httpx.Response(status, json=body, headers={"X-Request-ID": "req-s"})

        async def no_sleep(_: float) -> None:
            return None

        retry = RetryPolicy(max_retries=1, jitter=0.0)
        transport = httpx.MockTransport(answer)
        structlog.reset_defaults()
        with structlog.testing.capture_logs() as logs:
            async with (
                PlaidClient("c", "s", transport=transport, retry=retry, sleep=no_sleep) as plaid,
                SnapTradeClient(
                    "C", "K", transport=transport, retry=retry, sleep=no_sleep
                ) as snaptrade,
            ):
                await plaid.item_get("access-token")
                await snaptrade.list_brokerages()
        calls = [r for r in logs if r["event"] == "provider.call"]
        assert [(c["provider"], c["result"], c["attempts"]) for c in calls] == [
            ("plaid", "ok", 2),
            ("snaptrade", "ok", 2),
        ]
        logs = [r for r in logs if r["event"] != "provider.call"]
        events = [(r["event"], r["status"], r["attempt"], r.get("will_retry")) for r in logs]
        assert events == [
            ("plaid.item.get", 503, 1, True),
            ("plaid.item.get", 200, 2, None),
            ("snaptrade.brokerages.list", 503, 1, True),
            ("snaptrade.brokerages.list", 200, 2, None),
        ]
        assert logs[0]["error_code"] == "INTERNAL_SERVER_ERROR"
        assert logs[2]["code"] == "3002"
        assert {r["operation"] for r in logs} == {"/item/get", "ReferenceData_listAllBrokerages"}
        assert all("latency_ms" in r and "request_id" in r for r in logs)
        assert "access-token" not in repr(logs)
