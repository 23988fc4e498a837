"""Sync fan-out: many users' connections against the SnapTrade sandbox with real latency.

    .venv/bin/python -m bench.sync_fanout [--users 300] [--latency 0.1] [--window 5]

Each user has two SnapTrade connections (Schwab: 2 accounts, Alpaca: 1). The sandbox answers
after `--latency` seconds and enforces SnapTrade's 250 requests per window per clientId, with
the window scaled down from a minute to `--window` seconds so the run stays short. The client
keeps under the same limit. Printed:

- wall time against the lower bound the rate limit sets (requests / rate): bound/actual, target
  >= 0.9;
- the speed-up over a sequential loop over connections, measured on a sample of users in the
  same run and scaled to all of them;
- 429s received (target 0) and provider requests per account, counted at the sandbox
  (`/sandbox/requests`), per operation, for the first sync and for a second one right after
  (on SnapTrade's Daily plan a sync reads no holdings SnapTrade has not re-synced).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Literal

import httpx
from tests.fixtures.postgres_server import start_postgres

from bench._sandbox import start_sandbox
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.domain import Provider
from brokerlink.log import configure_logging
from brokerlink.providers._http import RateLimiter
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.repositories import ConnectionRepository, PortfolioRepository, UserRepository
from brokerlink.secrets import MemorySecretStore
from brokerlink.sync import SyncEngine

CLIENT_ID = "BENCH-FANOUT"
CONSUMER_KEY = "bench-fanout-key-not-a-secret"
LIMIT = 250  # SnapTrade's per-clientId limit per window
BROKERS = ("SCHWAB", "ALPACA")
ACCOUNTS_PER_USER = 3  # Schwab seeds two accounts, Alpaca one


class Counting(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.statuses: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.statuses[response.status_code] += 1
        return response


async def _setup(users: int, db_url: str, base_url: str, window: float) -> tuple[object, list[int]]:
    """Users, their SnapTrade registrations and connections (no latency yet)."""
    await migrate.upgrade_async(db_url)
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    secrets = MemorySecretStore()
    ids: list[int] = []
    async with SnapTradeClient(
        CLIENT_ID,
        CONSUMER_KEY,
        base_url=base_url,
        rate_limiter=RateLimiter(LIMIT, window=window),
    ) as client:
        connector = SnapTradeConnector(client, secrets)
        async with sessionmaker() as session:
            for n in range(users):
                user = await UserRepository.from_session(session).create(email=f"u{n}@bench")
                await PortfolioRepository.from_session(session).get_or_create_default(user.id)
                ids.append(user.id)
            await session.commit()
        for uid in ids:
            await connector.register_user(str(uid))
            creds = await connector._credentials(str(uid))
            async with sessionmaker() as session:
                for broker in BROKERS:
                    auth = await client.sandbox_create_connection(
                        creds.snaptrade_user_id, creds.secret, broker, "read"
                    )
                    await ConnectionRepository.from_session(session).upsert(
                        user_id=uid,
                        provider=Provider.SNAPTRADE,
                        provider_connection_id=auth["id"],
                        institution_name=broker.title(),
                        institution_slug=broker.lower(),
                    )
                await session.commit()
    await engine.dispose()
    return secrets, ids


def _operation(key: str) -> str:
    """`GET /accounts/<uuid>/balances` -> `GET /accounts/{id}/balances`."""
    return re.sub(r"/[0-9a-f]{8}-[0-9a-f-]{27}", "/{id}", key)


def sandbox_counts(base_url: str, *, reset: bool = False) -> Counter[str]:
    """Requests per operation as the sandbox counted them (reset first with `reset`)."""
    if reset:
        httpx.delete(f"{base_url}/sandbox/requests").raise_for_status()
        return Counter()
    answer = httpx.get(f"{base_url}/sandbox/requests")
    answer.raise_for_status()
    counts: Counter[str] = Counter()
    for key, n in answer.json()["counts"].items():
        counts[_operation(key)] += n
    return counts


async def _sync(
    db_url: str,
    base_url: str,
    secrets: object,
    *,
    window: float,
    latency: float,
    users: list[int] | None,
    concurrency: int,
    user_concurrency: int,
    plan: Literal["daily", "realtime"] | None = "daily",
) -> tuple[float, Counter[int], int]:
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    httpx.put(f"{base_url}/sandbox/faults", json={"latency": latency}).raise_for_status()
    sandbox_counts(base_url, reset=True)
    wire = Counting(httpx.AsyncHTTPTransport())
    async with SnapTradeClient(
        CLIENT_ID,
        CONSUMER_KEY,
        base_url=base_url,
        transport=wire,
        rate_limiter=RateLimiter(LIMIT, window=window),
    ) as client:
        connector = SnapTradeConnector(client, secrets, plan=plan)  # type: ignore[arg-type]
        sync = SyncEngine(
            sessionmaker,
            {Provider.SNAPTRADE: connector},
            concurrency={Provider.SNAPTRADE: concurrency},
            user_concurrency=user_concurrency,
        )
        started = time.perf_counter()
        if users is None:
            summary = await sync.sync_all()
        else:
            for uid in users:
                await sync.sync_user(uid)
            summary = None
        elapsed = time.perf_counter() - started
    await engine.dispose()
    failed = summary.connections_failed if summary is not None else 0
    return elapsed, wire.statuses, failed


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_fanout")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per sandbox answer")
    parser.add_argument("--window", type=float, default=5.0, help="rate-limit window, seconds")
    parser.add_argument("--sample", type=int, default=10, help="users in the sequential sample")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    configure_logging("ERROR")

    server = (
        start_postgres(os.environ.get("BROKERLINK_TEST_DATABASE_URL"))
        if args.db == "postgresql"
        else None
    )
    proc, base_url = start_sandbox(
        "snaptrade",
        ["--client-id", CLIENT_ID, "--consumer-key", CONSUMER_KEY, "--rate-limit", str(LIMIT)]
        + ["--rate-window", str(args.window)],
        "/",
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if server is not None:
                db_url = server.create_database("bench_fanout")
            else:
                db_url = f"sqlite+aiosqlite:///{Path(tmp) / 'fanout.db'}"
            secrets, ids = asyncio.run(_setup(args.users, db_url, base_url, args.window))
            time.sleep(args.window)  # the sandbox's window forgets the set-up requests
            accounts = len(ids) * ACCOUNTS_PER_USER
            run = dict(window=args.window, latency=args.latency)
            elapsed, statuses, failed = asyncio.run(
                _sync(
                    db_url,
                    base_url,
                    secrets,
                    users=None,
                    concurrency=64,
                    user_concurrency=32,
                    **run,
                )
            )
            requests = sum(statuses.values())
            first_counts = sandbox_counts(base_url)
            bound = requests / (LIMIT / args.window)
            time.sleep(args.window)
            _, again, again_failed = asyncio.run(
                _sync(
                    db_url,
                    base_url,
                    secrets,
                    users=None,
                    concurrency=64,
                    user_concurrency=32,
                    **run,
                )
            )
            again_counts = sandbox_counts(base_url)
            sample = ids[: args.sample]
            time.sleep(args.window)
            seq_elapsed, _, _ = asyncio.run(
                _sync(
                    db_url,
                    base_url,
                    secrets,
                    users=sample,
                    concurrency=1,
                    user_concurrency=1,
                    plan=None,  # reads every account, as the first sync did
                    **run,
                )
            )
            sequential_all = seq_elapsed / len(sample) * len(ids)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if server is not None:
            server.stop()

    print(
        f"{args.db}: {len(ids)} users, {accounts} accounts, {2 * len(ids)} connections; "
        f"sandbox latency {args.latency * 1000:.0f} ms; "
        f"limit {LIMIT} requests per {args.window:g} s"
    )
    seen = sum(first_counts.values())
    print(
        f"first sync: requests at the sandbox {seen} ({seen / accounts:.2f} per account; "
        f"{requests} sent by the client); 429s {statuses[429]}; failed connections {failed}"
    )
    for operation, n in sorted(first_counts.items()):
        print(f"  {operation}: {n} ({n / accounts:.2f} per account)")
    seen_again = sum(again_counts.values())
    print(
        f"second sync, nothing re-synced at SnapTrade (Daily plan): requests {seen_again} "
        f"({seen_again / accounts:.2f} per account); 429s {again[429]}; "
        f"failed connections {again_failed}"
    )
    print(
        f"lower bound {bound:.1f} s (requests / {LIMIT} per {args.window:g} s), actual "
        f"{elapsed:.1f} s, bound/actual {bound / elapsed:.2f}"
    )
    print(
        f"sequential loop over connections: {seq_elapsed:.1f} s for {len(sample)} users "
        f"-> {sequential_all:.0f} s for all; speed-up {sequential_all / elapsed:.0f}x"
    )


if __name__ == "__main__":
    main()
