"""Sync on 1, 2 and 4 worker processes: does adding workers keep to SnapTrade's limit, and fill it?

    .venv/bin/python -m bench.workers [--users 200] [--latency 0.1] [--window 5] [--workers 1,2,4]

For each worker count: a fresh PostgreSQL database and a fresh SnapTrade sandbox in its own
process (100 ms per answer; 250 requests per clientId per window, the window scaled down from a
minute to `--window` seconds), one Redis, `--users` users with a Schwab connection each (two
accounts), and that many `brokerlink worker` processes sharing the rate limit through Redis with
the same scaled window. Every user's sync is enqueued at once; the run ends when every connection
has synced. Printed per worker count:

- users per minute;
- the fraction of the rate-limit bound reached: requests per second achieved over the limit's
  250 per window (target >= 0.9 at every count: the limit, not the workers, sets the pace);
- 429s the sandbox answered (target 0: the shared limiter holds every process to the limit);
- provider requests per account, counted at the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select
from tests.fixtures.postgres_server import start_postgres
from tests.fixtures.redis_server import start_redis
from tests.worker.processes import CLIENT_ID, CONSUMER_KEY, Stack, make_users

from bench._sandbox import start_sandbox
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker
from brokerlink.log import configure_logging
from brokerlink.models import Account, Connection
from brokerlink.sync import SyncSchedule
from brokerlink.sync.tasks import CeleryJobs
from brokerlink.worker import create_celery

LIMIT = 250  # SnapTrade's requests per window per clientId


def _sandbox_log(base_url: str) -> dict[str, int]:
    body = httpx.get(base_url + "/sandbox/requests").json()
    return {"total": int(body["total"]), "rate_limited": int(body.get("rate_limited", 0))}


async def _users(stack: Stack, count: int, window: float) -> list[int]:
    """`count` users in batches the sandbox's window admits (two requests each to set up)."""
    made: list[int] = []
    per_batch = LIMIT // 2 - 5
    while len(made) < count:
        batch = await make_users(stack, min(per_batch, count - len(made)), "SCHWAB")
        made.extend(uid for uid, _ in batch)
        await asyncio.sleep(window)  # the sandbox's window forgets the set-up requests
    return made


async def _wait_ready(stack: Stack, workers: int) -> None:
    app = create_celery(stack.settings())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        replies = await asyncio.to_thread(app.control.ping, timeout=1.0)
        if len(replies) >= workers:
            return
    raise SystemExit(f"only some of {workers} workers started:\n{stack.logs()}")


async def _run(stack: Stack, users: list[int], workers: int) -> tuple[float, int]:
    """Enqueue every user's sync; seconds until every connection synced, and accounts synced."""
    engine = create_engine(stack.database_url, pool_size=8, max_overflow=0)
    sessionmaker = create_sessionmaker(engine)
    settings = stack.settings()
    jobs = CeleryJobs(create_celery(settings), sessionmaker, SyncSchedule.from_settings(settings))
    try:
        for _ in range(workers):
            stack.worker(concurrency=16)
        await _wait_ready(stack, workers)
        httpx.delete(stack.sandbox_url + "/sandbox/requests").raise_for_status()
        started = time.perf_counter()
        await asyncio.gather(*(jobs.sync_user(uid) for uid in users))
        while True:
            async with sessionmaker() as session:
                waiting = await session.scalar(
                    select(func.count())
                    .select_from(Connection)
                    .where(
                        Connection.last_synced_at.is_(None) | Connection.sync_queued_at.isnot(None)
                    )
                )
            if not waiting:
                break
            await asyncio.sleep(0.1)
        elapsed = time.perf_counter() - started
        async with sessionmaker() as session:
            accounts = int(await session.scalar(select(func.count()).select_from(Account)) or 0)
        return elapsed, accounts
    finally:
        await jobs.close()
        await engine.dispose()


def _one(
    count: int, args: argparse.Namespace, pg_url: str, redis_url: str, root: Path
) -> dict[str, float]:
    proc, base_url = start_sandbox(
        "snaptrade",
        ["--client-id", CLIENT_ID, "--consumer-key", CONSUMER_KEY]
        + ["--rate-limit", str(LIMIT), "--rate-window", str(args.window)],
        "/",
    )
    stack = Stack(pg_url, redis_url, base_url, root / f"data-{count}")
    stack.overrides.update(
        {
            "SNAPTRADE_RATE_LIMIT_PER_MINUTE": str(LIMIT),
            "SNAPTRADE_RATE_LIMIT_WINDOW_SECONDS": str(args.window),
            # Jobs queue behind each other for a while: never hand a waiting one to a second
            # worker in this run (a dead worker's job would be; none dies here).
            "BROKERLINK_QUEUE_VISIBILITY_TIMEOUT_SECONDS": "600",
            "BROKERLINK_SYNC_LEASE_SECONDS": "120",
        }
    )
    saved = dict(os.environ)
    stack.activate()
    try:
        users = asyncio.run(_users(stack, args.users, args.window))
        httpx.put(base_url + "/sandbox/faults", json={"latency": args.latency}).raise_for_status()
        elapsed, accounts = asyncio.run(_run(stack, users, count))
        log = _sandbox_log(base_url)
    finally:
        stack.close()
        proc.kill()
        proc.wait(timeout=10)
        os.environ.clear()
        os.environ.update(saved)
    rate = log["total"] / elapsed
    return {
        "workers": count,
        "seconds": elapsed,
        "users_per_minute": len(users) / elapsed * 60,
        "bound_fraction": rate / (LIMIT / args.window),
        "rate_limited": log["rate_limited"],
        "calls_per_account": log["total"] / accounts if accounts else 0.0,
        "requests": log["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1, help="sandbox answer delay, s")
    parser.add_argument("--window", type=float, default=5.0, help="rate-limit window, seconds")
    parser.add_argument("--workers", default="1,2,4", help="worker counts to run")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    configure_logging("WARNING")
    server = start_postgres()
    redis = start_redis()
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
            for n in counts:
                url = server.create_database("bench_workers")
                migrate.upgrade(url)
                rows.append(_one(n, args, url, redis.fresh_url(), Path(tmp)))
    finally:
        redis.stop()
        server.stop()
    print(
        f"{args.users} users × 1 Schwab connection (2 accounts), sandbox latency "
        f"{args.latency * 1000:.0f} ms, limit {LIMIT} requests per {args.window:g} s "
        f"(= {LIMIT / args.window * 60:.0f}/min), 16 jobs per worker"
    )
    print(
        f"{'workers':>7} {'seconds':>8} {'users/min':>10} {'of bound':>9} {'429s':>5} "
        f"{'calls/account':>14}"
    )
    for r in rows:
        print(
            f"{r['workers']:>7} {r['seconds']:>8.1f} {r['users_per_minute']:>10.0f} "
            f"{r['bound_fraction']:>9.2f} {r['rate_limited']:>5} {r['calls_per_account']:>14.2f}"
        )
    print(
        "of bound: requests per second over the limit's rate (target >= 0.9; above 1 the first "
        "window's burst, which the limit allows, shows). calls/account on a first sync: one "
        "accounts listing per user and two reads (positions, balances) per account = 2 + 1/N "
        "for N accounts; a repeat sync on the daily plan reads only the listing."
    )


if __name__ == "__main__":
    main()
