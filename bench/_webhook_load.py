"""Webhook handling throughput: signed SnapTrade webhooks sent to a receiving route from a
second process (`webhook_throughput`), requests/s and p50/p99, verification included.

    .venv/bin/python -m bench._webhook_load URL --ids AUTHORIZATION ACCOUNT USER [--clients 16]

Used by `bench.webhooks --throughput-url`; prints one JSON line (a `Throughput`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from brokerlink.providers.snaptrade.webhooks import expected_signature

__all__ = ["CLIENT_ID", "CONSUMER_KEY", "Throughput", "webhook_throughput"]

# The benchmark's own SnapTrade app (sandbox-only values; they open nothing else).
CLIENT_ID = "BENCH-WEBHOOKS"
CONSUMER_KEY = "bench-webhooks-key-not-a-secret"


@dataclass(frozen=True)
class Throughput:
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def webhook_throughput(
    url: str,
    *,
    authorization_id: str,
    account_id: str,
    user_id: str,
    clients: int = 16,
    seconds: float = 5.0,
) -> Throughput:
    """Webhook handling throughput of the receiving route at `url`: signed, fresh
    ACCOUNT_HOLDINGS_UPDATED deliveries (a new webhookId each) naming a connection and account
    the route knows, from `clients` concurrent senders in a second process for `seconds`;
    requests/s and p50/p99, verification included. For the product's route, once merged
    (`--throughput-url`); not run by default."""
    cmd = [sys.executable, "-m", "bench._webhook_load", url, "--clients", str(clients)]
    cmd += ["--seconds", str(seconds), "--ids", authorization_id, account_id, user_id]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return Throughput(**json.loads(done.stdout.strip().splitlines()[-1]))


async def _load(url: str, ids: Sequence[str], clients: int, seconds: float) -> Throughput:
    """The sending side of `webhook_throughput` (runs in the second process)."""
    authorization_id, account_id, user_id = ids
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def sender(http: httpx.AsyncClient) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            payload = {
                "webhookId": str(uuid.uuid4()),
                "clientId": CLIENT_ID,
                "eventTimestamp": datetime.now(UTC).isoformat(),
                "userId": user_id,
                "eventType": "ACCOUNT_HOLDINGS_UPDATED",
                "accountId": account_id,
                "brokerageAuthorizationId": authorization_id,
                "details": {
                    p: {"success": True, "error": None}
                    for p in ("total_value", "positions", "balances", "orders")
                },
            }
            body = json.dumps(payload).encode()
            signature = expected_signature(CONSUMER_KEY, payload)
            started = time.perf_counter()
            answer = await http.post(
                url,
                content=body,
                headers={"Signature": signature, "Content-Type": "application/json"},
            )
            latencies.append(time.perf_counter() - started)
            errors += answer.status_code >= 300

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(sender(http) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)

    def rank(q: float) -> float:
        return ordered[max(int(len(ordered) * q + 0.5) - 1, 0)] * 1000 if ordered else 0.0

    return Throughput(len(ordered), errors, elapsed, rank(0.5), rank(0.99))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._webhook_load")
    parser.add_argument("url")
    parser.add_argument(
        "--ids", nargs=3, required=True, metavar=("AUTHORIZATION", "ACCOUNT", "USER")
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    measured = asyncio.run(_load(args.url, args.ids, args.clients, args.seconds))
    print(json.dumps(dataclasses.asdict(measured)))


if __name__ == "__main__":
    main()
