"""Webhook handling through the product's receiving route, measured from a second process.

    .venv/bin/python -m bench.webhook_route [--clients 16] [--seconds 10] [--db postgresql]
                                            [--connections 50]

One run stands up the whole path a SnapTrade webhook takes:

- the SnapTrade sandbox in its own process (the benchmark's app id and consumer key, its rate
  limit off), and the store on PostgreSQL (or SQLite), migrated;
- `--connections` users set up the product's way, through the composition root
  (`open_services`) on settings naming that store, a data directory of this run, the local
  secret store, the benchmark's SnapTrade app and the sandbox: each user registered at
  SnapTrade, one Schwab connection made at the sandbox (2 accounts) and stored, then its
  first sync;
- `brokerlink serve` as a process of its own on that store and data directory, with those
  SnapTrade credentials, the sandbox as `--snaptrade-url` and `BROKERLINK_WEBHOOKS_SNAPTRADE`.

After a warm-up (bare requests and webhooks one by one: a fresh process answers its first
ones slowly; not counted), a second process sends `--clients` concurrent requests at a time
for `--seconds`: first
`GET /health` (the baseline: a bare request through the same sender, client and server), then
signed ACCOUNT_HOLDINGS_UPDATED deliveries to `POST /webhooks/snaptrade` taking the stored
accounts in turn, a new webhookId each, so that every one is verified, recorded in
webhook_events and followed by a sync job in the served process (a job that finds its
connection synced since it was asked for, or still held by another sync, settles its event
without calling SnapTrade again).

Printed: requests/s, p50 and p99 of both and what a webhook costs over a bare request; the
answers >= 300 (must be 0: otherwise the answers by status); the webhook_events rows once
every follow-up settled (must equal the requests), by result; the follow-up syncs that ran,
counted at the sandbox (one `GET /accounts` per sync of a connection); the CPU share of the
sender and of the served process during each load (one near 100 %: that one was the limit;
both well below with a high load average: the machine was busy with more than this), the
served process's CPU time per request (what a webhook costs when the sender limits the bare
requests), and the machine's load average.

The served app's own SnapTrade limit is raised like the sandbox's
(`SNAPTRADE_RATE_LIMIT_PER_MINUTE`): at SnapTrade's 250 calls a minute the follow-ups would
wait on the limiter, which is not what this measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.pool import NullPool
from tests.fixtures.postgres_server import start_postgres
from tests.fixtures.serve_process import serve_processes

from bench._sandbox import start_sandbox
from bench._webhook_load import (
    CLIENT_ID,
    CONSUMER_KEY,
    Ids,
    Throughput,
    request_throughput,
    signed_delivery,
    webhook_throughput,
)
from brokerlink.composition import open_services
from brokerlink.config import Settings
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker, transaction
from brokerlink.domain import Provider
from brokerlink.log import configure_logging
from brokerlink.models import Account, Connection, WebhookEvent
from brokerlink.repositories import ConnectionRepository, PortfolioRepository, UserRepository
from brokerlink.sync import SyncSchedule
from brokerlink.sync.tasks import BackgroundSyncs

__all__ = ["RouteResult", "add_connections", "main", "measure", "run"]

BROKER = "SCHWAB"
# SnapTrade calls a minute the served app (and the set-up) may make: no limit in effect.
RATE_LIMIT = 1_000_000
# What the sandbox counts once per sync of a connection (its accounts, listed once).
SYNC_CALL = "GET /accounts"
# Deliveries sent before the measured load (their rows and syncs are not counted in it).
WARM_UP = 20


def served_env() -> dict[str, str]:
    """What `brokerlink serve` is given beside the store and the data directory."""
    return {
        "SNAPTRADE_CLIENT_ID": CLIENT_ID,
        "SNAPTRADE_CONSUMER_KEY": CONSUMER_KEY,
        "SNAPTRADE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "BROKERLINK_WEBHOOKS_SNAPTRADE": "true",
        "BROKERLINK_SECRET_BACKEND": "local",
    }


def bench_settings(db_url: str, data_dir: Path, sandbox_url: str) -> Settings:
    """The settings the set-up runs on: those the served app reads from `served_env`."""
    return Settings(
        database_url=db_url,
        data_dir=data_dir,
        secret_backend="local",
        snaptrade_client_id=CLIENT_ID,
        snaptrade_consumer_key=CONSUMER_KEY,
        snaptrade_base_url=sandbox_url,
        snaptrade_rate_limit_per_minute=RATE_LIMIT,
        webhooks_snaptrade=True,
        sync_in_app=False,
    )


@dataclass(frozen=True)
class RouteResult:
    db: str
    connections: int
    accounts: int
    clients: int
    health: Throughput
    webhooks: Throughput
    events: dict[str, int]  # webhook_events rows by result, once the follow-ups settled
    settled: bool  # False: some events were still `accepted` when the wait ended
    syncs: int  # follow-up syncs that called SnapTrade, counted at the sandbox
    provider_calls: int
    load: tuple[float, float, float]
    # The served process's CPU share during the /health load and the webhook load (None: not
    # known here).
    served_cpu: tuple[float | None, float | None] = (None, None)

    @property
    def rows(self) -> int:
        return sum(self.events.values())

    @property
    def ok(self) -> bool:
        """Every request answered below 300, and every webhook recorded once."""
        return (
            self.health.errors == 0
            and self.webhooks.errors == 0
            and self.rows == self.webhooks.requests
        )


async def add_connections(settings: Settings, sandbox_url: str, count: int) -> list[Ids]:
    """`count` users with one SnapTrade connection each, first synced, through the composition
    root; what a webhook names for each of their accounts (authorization, account, user)."""
    async with open_services(settings, snaptrade_url=sandbox_url) as services:
        connector = services.connectors.snaptrade
        if connector is None:
            raise RuntimeError("the settings give no SnapTrade connector")
        client = connector.client
        syncs = BackgroundSyncs(services.sync_engine(), SyncSchedule.from_settings(settings))
        snaptrade_users: dict[int, str] = {}
        for n in range(count):
            async with transaction(services.sessionmaker) as session:
                user = await UserRepository.from_session(session).create(email=f"route{n}@bench")
                await PortfolioRepository.from_session(session).get_or_create_default(user.id)
            snaptrade_users[user.id] = await connector.register_user(str(user.id))
            auth = await connector.users.as_user(
                str(user.id),
                lambda uid, secret: client.sandbox_create_connection(uid, secret, BROKER, "read"),
            )
            async with transaction(services.sessionmaker) as session:
                connection = await ConnectionRepository.from_session(session).upsert(
                    user_id=user.id,
                    provider=Provider.SNAPTRADE,
                    provider_connection_id=auth["id"],
                    institution_name=BROKER.title(),
                    institution_slug=BROKER.lower(),
                )
            await syncs.first_sync(connection.id)
        await syncs.drain()
        async with services.sessionmaker() as session:
            rows = await session.execute(
                select(
                    Connection.provider_connection_id,
                    Account.provider_account_id,
                    Connection.user_id,
                )
                .join(Account, Account.connection_id == Connection.id)
                .order_by(Account.id)
            )
            ids = [(auth_id, account, snaptrade_users[uid]) for auth_id, account, uid in rows]
    if not ids:
        raise RuntimeError("the first syncs stored no account")
    return ids


async def _events(db_url: str) -> Counter[str]:
    engine = create_engine(db_url, poolclass=NullPool)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(WebhookEvent.result, func.count())
                .where(WebhookEvent.provider == Provider.SNAPTRADE)
                .group_by(WebhookEvent.result)
            )
            return Counter({result: n for result, n in rows.all()})
    finally:
        await engine.dispose()


async def settled_events(db_url: str, *, timeout: float = 120.0) -> tuple[Counter[str], bool]:
    """The webhook_events rows by result, once none is `accepted` (its follow-up still to
    settle), or when `timeout` passes (then False)."""
    deadline = time.monotonic() + timeout
    while True:
        events = await _events(db_url)
        if not events["accepted"]:
            return events, True
        if time.monotonic() > deadline:
            return events, False
        await asyncio.sleep(0.25)


def _sandbox_counts(sandbox_url: str, *, reset: bool = False) -> Counter[str]:
    if reset:
        httpx.delete(f"{sandbox_url}/sandbox/requests").raise_for_status()
    answer = httpx.get(f"{sandbox_url}/sandbox/requests")
    answer.raise_for_status()
    return Counter(answer.json()["counts"])


def _served_pid(served: str) -> int | None:
    """The `brokerlink serve` child of this process answering at `served` (Linux's /proc);
    None where there is no /proc."""
    port = served.rsplit(":", 1)[1]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and b"serve" in cmdline and port.encode() in cmdline:
            return int(stat.parent.name)
    return None


def _cpu_seconds(pid: int | None) -> float:
    """CPU time (user and system) the process spent so far; 0 when unknown."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _served_cpu(pid: int | None, before: float, measured: Throughput) -> float | None:
    """The served process's CPU share during a load (1.0: one core busy); the load process's
    own start-up leaves it idle, so its time is spread over the load's seconds."""
    if pid is None or not measured.seconds:
        return None
    return (_cpu_seconds(pid) - before) / measured.seconds


def warm_up(served: str, ids: Sequence[Ids], *, deliveries: int = WARM_UP) -> None:
    """A fresh process answers its first requests slowly (first connections to the store,
    first use of every query): some bare requests and webhooks one by one before the measured
    load, each of which must be answered below 300."""
    with httpx.Client(base_url=served, timeout=30) as http:
        for n in range(deliveries):
            http.get("/health").raise_for_status()
            body, headers = signed_delivery(ids[n % len(ids)])
            http.post("/webhooks/snaptrade", content=body, headers=headers).raise_for_status()


def run(
    db_url: str,
    data_dir: Path,
    sandbox_url: str,
    *,
    db: str,
    clients: int,
    seconds: float,
    connections: int,
) -> RouteResult:
    """The benchmark on a sandbox already running and an empty store at `db_url`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(migrate.upgrade_async(db_url))
    settings = bench_settings(db_url, data_dir, sandbox_url)
    ids = asyncio.run(add_connections(settings, sandbox_url, connections))
    with serve_processes(1, db_url, data_dir, snaptrade_url=sandbox_url, env=served_env()) as (
        served,
    ):
        warm_up(served, ids)
        before, _ = asyncio.run(settled_events(db_url))
        _sandbox_counts(sandbox_url, reset=True)
        pid = _served_pid(served)
        cpu = _cpu_seconds(pid)
        health = request_throughput(f"{served}/health", clients=clients, seconds=seconds)
        health_cpu = _served_cpu(pid, cpu, health)
        cpu = _cpu_seconds(pid)
        webhooks = webhook_throughput(
            f"{served}/webhooks/snaptrade", ids=ids, clients=clients, seconds=seconds
        )
        webhooks_cpu = _served_cpu(pid, cpu, webhooks)
        load = os.getloadavg()
        after, settled = asyncio.run(settled_events(db_url))
        calls = _sandbox_counts(sandbox_url)
    # The warm-up's rows had settled before the load: what is left is the load's.
    events = after - before
    return RouteResult(
        db=db,
        connections=connections,
        accounts=len(ids),
        clients=clients,
        health=health,
        webhooks=webhooks,
        events=dict(sorted(events.items())),
        settled=settled,
        syncs=calls[SYNC_CALL],
        provider_calls=calls.total(),
        load=load,
        served_cpu=(health_cpu, webhooks_cpu),
    )


def measure(
    *, db: str = "postgresql", clients: int = 16, seconds: float = 10.0, connections: int = 50
) -> RouteResult:
    """The benchmark with its own sandbox process and store (a PostgreSQL server of its own,
    or `BROKERLINK_TEST_DATABASE_URL`'s; or an SQLite file), all stopped afterwards."""
    sandbox, sandbox_url = start_sandbox(
        "snaptrade",
        ["--client-id", CLIENT_ID, "--consumer-key", CONSUMER_KEY, "--rate-limit", "0"],
        "/",
        timeout=60,  # a busy machine takes its time to import the app
    )
    server = None
    try:
        if db == "postgresql":
            server = start_postgres(os.environ.get("BROKERLINK_TEST_DATABASE_URL"))
        with tempfile.TemporaryDirectory(prefix="bench-webhook-route-") as tmp:
            db_url = (
                server.create_database("bench_webhook_route")
                if server is not None
                else f"sqlite+aiosqlite:///{Path(tmp) / 'route.db'}"
            )
            return run(
                db_url,
                Path(tmp) / "data",
                sandbox_url,
                db=db,
                clients=clients,
                seconds=seconds,
                connections=connections,
            )
    finally:
        sandbox.terminate()
        sandbox.wait(timeout=10)
        if server is not None:
            server.stop()


def _line(name: str, measured: Throughput, served_cpu: float | None) -> str:
    served = "" if served_cpu is None else f", served {served_cpu:.0%}"
    return (
        f"  {name:<26} {measured.per_second:>6.0f} requests/s   p50 {measured.p50_ms:7.2f} ms"
        f"   p99 {measured.p99_ms:7.2f} ms   ({measured.requests} requests, "
        f"{measured.errors} answered >= 300; CPU: sender {measured.sender_cpu_share:.0%}"
        f"{served})"
    )


def report(result: RouteResult) -> None:
    health, hooks = result.health, result.webhooks
    print(
        f"brokerlink serve on {result.db}: {result.connections} SnapTrade connections, "
        f"{result.accounts} accounts; {result.clients} concurrent clients for "
        f"{hooks.seconds:.1f} s from a second process"
    )
    print(_line("GET /health (baseline)", health, result.served_cpu[0]))
    print(_line("POST /webhooks/snaptrade", hooks, result.served_cpu[1]))
    for name, measured in (("GET /health", health), ("POST /webhooks/snaptrade", hooks)):
        if measured.errors:
            print(f"  {name} answers by status: {measured.statuses}")
    if hooks.per_second and health.p50_ms:
        print(
            f"  a webhook costs {health.per_second / hooks.per_second:.1f}x a bare request in "
            f"throughput, {hooks.p50_ms / health.p50_ms:.1f}x at p50, "
            f"{hooks.p99_ms / health.p99_ms:.1f}x at p99"
        )
    per_request = [
        None if cpu is None or not measured.per_second else cpu / measured.per_second * 1000
        for cpu, measured in zip(result.served_cpu, (health, hooks), strict=True)
    ]
    if per_request[0] and per_request[1]:
        # The figure that holds when the sender, not the app, limits the bare requests.
        print(
            f"  served CPU per request: {per_request[0]:.2f} ms bare, {per_request[1]:.2f} ms "
            f"a webhook with its follow-up ({per_request[1] / per_request[0]:.0f}x)"
        )
    verdict = "= requests" if result.rows == hooks.requests else f"!= {hooks.requests} requests"
    results = ", ".join(f"{name} {n}" for name, n in result.events.items()) or "none"
    pending = "" if result.settled else " (some follow-ups had not settled when the wait ended)"
    print(f"  webhook_events rows: {result.rows} ({verdict}): {results}{pending}")
    print(
        f"  follow-up syncs run: {result.syncs} ({SYNC_CALL} at the sandbox; "
        f"{result.provider_calls} SnapTrade calls in all)"
    )
    one, five, fifteen = result.load
    print(f"  load average: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} CPUs)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_route")
    parser.add_argument("--clients", type=int, default=16, help="concurrent senders")
    parser.add_argument("--seconds", type=float, default=10.0, help="of each load")
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--connections", type=int, default=50, help="users with one Schwab connection each"
    )
    args = parser.parse_args(argv)
    configure_logging("ERROR")
    result = measure(
        db=args.db, clients=args.clients, seconds=args.seconds, connections=args.connections
    )
    report(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
