"""Doubles for the Plaid adapter's unit tests: a routing MockTransport and an in-memory store.

Payload shapes are the official spec's examples (data/*.json, copied from the spec's
`/investments/holdings/get` and `/investments/transactions/get` examples).
"""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from brokerlink.providers._http import RetryPolicy
from brokerlink.providers.plaid import PlaidClient
from brokerlink.secrets.store import SecretNotFound

DATA = Path(__file__).parent / "data"
ACCESS_TOKEN = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6"
PUBLIC_TOKEN = "public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d"
SECRET = "plaid-secret-value-xyz"
CLIENT_ID = "client-id-123"


def spec_holdings() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((DATA / "holdings_spec_example.json").read_text())
    return payload


def spec_transactions() -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((DATA / "transactions_spec_example.json").read_text())
    return payload


def plaid_error(
    code: str, error_type: str = "ITEM_ERROR", status: int = 400, message: str = "x"
) -> httpx.Response:
    return httpx.Response(
        status,
        json={
            "error_type": error_type,
            "error_code": code,
            "error_message": message,
            "display_message": None,
            "request_id": "HNTDNrA8F1shFEW",
        },
    )


Handler = Callable[[dict[str, Any]], httpx.Response]


class FakePlaid:
    """Routes POSTs by path to handlers (a response, a list consumed in order, or a callable)."""

    def __init__(self) -> None:
        self.routes: dict[str, Any] = {}
        self.calls: list[tuple[str, dict[str, Any], httpx.Headers]] = []

    def on(self, path: str, answer: Any) -> None:
        self.routes[path] = answer

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.calls]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.calls.append((request.url.path, body, request.headers))
        answer = self.routes.get(request.url.path)
        if answer is None:
            return plaid_error("NOT_FOUND", "INVALID_REQUEST", 404)
        if isinstance(answer, list):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            response: httpx.Response = answer(body)
            return response
        if isinstance(answer, httpx.Response):
            return copy.copy(answer)
        return httpx.Response(200, json=answer)


class MemorySecretStore:
    def __init__(self) -> None:
        self.data: dict[str, dict[str, Any]] = {}

    async def put(self, name: str, value: dict[str, Any]) -> None:
        self.data[name] = json.loads(json.dumps(value))

    async def get(self, name: str) -> dict[str, Any]:
        if name not in self.data:
            raise SecretNotFound(f"no secret {name}")
        value: dict[str, Any] = json.loads(json.dumps(self.data[name]))
        return value

    async def delete(self, name: str) -> None:
        self.data.pop(name, None)

    async def list(self, prefix: str = "") -> list[str]:
        return sorted(n for n in self.data if n.startswith(prefix))


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> FakePlaid:
    return FakePlaid()


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest_asyncio.fixture
async def client(fake, sleeps):
    async with PlaidClient(
        CLIENT_ID,
        SECRET,
        transport=httpx.MockTransport(fake),
        retry=RetryPolicy(max_retries=3, base_delay=0.5, jitter=0.0),
        rate_limit_per_minute=0,
        sleep=sleeps,
    ) as plaid:
        yield plaid


@pytest.fixture
def store() -> MemorySecretStore:
    return MemorySecretStore()
