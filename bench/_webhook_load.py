"""Load from a second process: signed SnapTrade webhooks sent to a receiving route
(`webhook_throughput`), or plain GETs of any address as a baseline (`request_throughput`);
requests/s and p50/p99, verification included.

    .venv/bin/python -m bench._webhook_load URL --ids AUTHORIZATION ACCOUNT USER [--ids …]
                                            [--clients 16] [--seconds 5]
    .venv/bin/python -m bench._webhook_load URL --get [--clients 16] [--seconds 5]

Used by `bench.webhook_route` (and `bench.webhooks --throughput-url`); prints one JSON line
(a `Throughput`).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from brokerlink.providers.snaptrade.webhooks import expected_signature

__all__ = [
    "CLIENT_ID",
    "CONSUMER_KEY",
    "Ids",
    "Throughput",
    "request_throughput",
    "signed_delivery",
    "webhook_throughput",
]

# The benchmark's own SnapTrade app (sandbox-only values; they open nothing else).
CLIENT_ID = "BENCH-WEBHOOKS"
CONSUMER_KEY = "bench-webhooks-key-not-a-secret"

# What a delivery names: (brokerageAuthorizationId, accountId, userId).
Ids = tuple[str, str, str]


@dataclass(frozen=True)
class Throughput:
    requests: int
    errors: int  # answered >= 300, or not answered at all
    seconds: float
    p50_ms: float
    p99_ms: float
    # Answers by status code ("200", "503", …; "error:ReadTimeout" for no answer).
    statuses: dict[str, int] = field(default_factory=dict)
    # CPU seconds the sending process spent: near `seconds`, the sender was the bottleneck.
    sender_cpu_seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def sender_cpu_share(self) -> float:
        """The sender's CPU time over the wall time (1.0: one core fully busy)."""
        return self.sender_cpu_seconds / self.seconds if self.seconds else 0.0


def webhook_throughput(
    url: str, *, ids: Sequence[Ids], clients: int = 16, seconds: float = 5.0
) -> Throughput:
    """Webhook handling throughput of the receiving route at `url`: signed, fresh
    ACCOUNT_HOLDINGS_UPDATED deliveries (a new webhookId each), taking the connections and
    accounts of `ids` in turn, from `clients` concurrent senders in a second process for
    `seconds`; requests/s and p50/p99, verification included."""
    if not ids:
        raise ValueError("webhook_throughput needs at least one (authorization, account, user)")
    cmd = [sys.executable, "-m", "bench._webhook_load", url, "--clients", str(clients)]
    cmd += ["--seconds", str(seconds)]
    for triple in ids:
        cmd += ["--ids", *triple]
    return _run(cmd)


def request_throughput(url: str, *, clients: int = 16, seconds: float = 5.0) -> Throughput:
    """The same load as `webhook_throughput`, as plain GETs of `url`: the baseline of a bare
    request through the same sender, client and server."""
    cmd = [sys.executable, "-m", "bench._webhook_load", url, "--get", "--clients", str(clients)]
    cmd += ["--seconds", str(seconds)]
    return _run(cmd)


def _run(cmd: list[str]) -> Throughput:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the load process failed ({done.returncode}): {done.stderr}")
    return Throughput(**json.loads(done.stdout.strip().splitlines()[-1]))


def signed_delivery(ids: Ids) -> tuple[bytes, dict[str, str]]:
    """One signed ACCOUNT_HOLDINGS_UPDATED delivery naming `ids`, as SnapTrade sends it."""
    authorization_id, account_id, user_id = ids
    payload: dict[str, Any] = {
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
    headers = {
        "Signature": expected_signature(CONSUMER_KEY, payload),
        "Content-Type": "application/json",
    }
    return json.dumps(payload).encode(), headers


async def _load(url: str, ids: Sequence[Ids], clients: int, seconds: float) -> Throughput:
    """The sending side (runs in the second process): webhooks when `ids` are given, else GETs."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    turn = itertools.count()

    async def sender(http: httpx.AsyncClient, deadline: float) -> None:
        while time.perf_counter() < deadline:
            delivery = signed_delivery(ids[next(turn) % len(ids)]) if ids else None
            started = time.perf_counter()
            try:
                if delivery is None:
                    answer = await http.get(url)
                else:
                    answer = await http.post(url, content=delivery[0], headers=delivery[1])
            except httpx.HTTPError as error:
                statuses[f"error:{type(error).__name__}"] += 1
            else:
                statuses[str(answer.status_code)] += 1
            latencies.append(time.perf_counter() - started)

    # The client is made first (its SSL context takes a while): the load starts after it.
    async with httpx.AsyncClient(timeout=30) as http:
        cpu = time.process_time()
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(sender(http, deadline) for _ in range(clients)))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    ordered = sorted(latencies)

    def rank(q: float) -> float:
        return ordered[max(int(len(ordered) * q + 0.5) - 1, 0)] * 1000 if ordered else 0.0

    errors = sum(n for code, n in statuses.items() if not code.isdigit() or int(code) >= 300)
    return Throughput(
        len(ordered), errors, elapsed, rank(0.5), rank(0.99), dict(sorted(statuses.items())), cpu
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench._webhook_load")
    parser.add_argument("url")
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--ids",
        nargs=3,
        action="append",
        metavar=("AUTHORIZATION", "ACCOUNT", "USER"),
        help="what a webhook names; repeat it to spread the deliveries over several",
    )
    kind.add_argument("--get", action="store_true", help="plain GETs of URL instead")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    ids = [tuple(triple) for triple in args.ids or ()]
    measured = asyncio.run(_load(args.url, ids, args.clients, args.seconds))
    print(json.dumps(dataclasses.asdict(measured)))


if __name__ == "__main__":
    main()
