"""Webhooks first against hourly polling: provider calls per account-day, counted at the sandbox.

    .venv/bin/python -m bench.webhooks [--users 60] [--change-share 0.1] [--days 2]
                                       [--catchall-hours 24] [--missing-hours 12] [--db postgresql]

A population of users (half with one Schwab connection of 2 accounts, half with Schwab and
Alpaca, 3 accounts: 2.5 accounts each on average) on the SnapTrade sandbox in its own process,
the store on PostgreSQL (or SQLite). Each mode gets a fresh sandbox and database, syncs everyone
once, then lives `--days` on a compressed clock: the scheduler's clock moves in 15-minute ticks
and each tick runs as fast as the syncs it claims. Every simulated day, in every mode:

- SnapTrade's daily sync at 04:00 (`POST /sandbox/daily-sync`): every account re-dated, each
  announced by an ACCOUNT_HOLDINGS_UPDATED, as SnapTrade does on the Daily plan;
- the same share of accounts (the same ones in every mode, seeded) trades at a random other tick
  (`POST /sandbox/accounts/{id}/move-holdings`): re-dated, moved, and announced the same way.

Modes:
- hourly polling, full reads: every connection synced every hour, reading every account's
  holdings each time (`plan="realtime"`): the 1 + 2N calls per connection of a poll, 24 times a
  day. The baseline the target is set against.
- hourly polling, daily plan: the same hourly polls on the Daily plan, where a sync reads only the
  listing unless SnapTrade re-synced an account since (`plan="daily"`): the product's own poller.
- webhooks first (`BROKERLINK_WEBHOOKS_SNAPTRADE=true`, Daily plan): the sandbox's webhooks reach
  a receiver in this process, which verifies each (`SnapTradeWebhookVerifier`), records it in
  webhook_events and makes its connection due now (`ConnectionRepository.mark_due`): what the
  product's route does, with the simulated clock (the route's own cost is `bench.webhook_route`);
  otherwise the daily catch-all and the missing-webhook detection.

Provider calls are what the sandbox counted (`/sandbox/requests`, API calls only) after the
first sync, split by what made each sync happen: a daily-sync webhook, a trade's webhook, the
missing-webhook detection, or the catch-all (in polling modes: the poll). Target: webhooks first
at most 1/20 of hourly polling. Webhook handling throughput through the product's receiving route
(requests/s, p50/p99 from a second process, against a served app it stands up) is
`bench.webhook_route`; `--throughput-url URL --load-ids …` sends the same load to a route already
running.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tests.fixtures.postgres_server import start_postgres

from bench._sandbox import free_port, start_sandbox
from bench._webhook_load import CLIENT_ID, CONSUMER_KEY, webhook_throughput
from brokerlink.db import migrate
from brokerlink.db.session import create_engine, create_sessionmaker, transaction
from brokerlink.domain import Provider
from brokerlink.log import configure_logging
from brokerlink.models import Account
from brokerlink.providers._http import RateLimiter
from brokerlink.providers.snaptrade import SnapTradeClient, SnapTradeConnector
from brokerlink.providers.snaptrade.webhooks import (
    SnapTradeEventType,
    SnapTradeWebhookVerifier,
    UnknownSnapTradeWebhook,
)
from brokerlink.providers.webhooks import WebhookRefused
from brokerlink.repositories import (
    ConnectionRepository,
    PortfolioRepository,
    UserRepository,
    WebhookEventRepository,
)
from brokerlink.secrets import MemorySecretStore
from brokerlink.sync import JobRunner, SyncEngine, SyncSchedule
from brokerlink.sync.schedule import WEBHOOK_CADENCE, Claim, Scheduler

TICK = timedelta(minutes=15)
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


class SimClock:
    """The scheduler's compressed clock: moved tick by tick, never read from the wall."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Receiver:
    """Stands in for the receiving route on the simulated clock: verify, record, make the
    connection due now. `cause` names what the webhooks arriving now announce."""

    sessionmaker: async_sessionmaker[AsyncSession]
    clock: SimClock
    holdings: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    # Connections a holdings webhook made due since the last tick (what the next claim owes
    # it), with what sent that webhook.
    woken: dict[int, str] = field(default_factory=dict)
    cause: str = "trade webhook"

    def __post_init__(self) -> None:
        # The signature's own time is the sandbox's wall clock, so the age check reads it too.
        self.verifier = SnapTradeWebhookVerifier(
            CONSUMER_KEY, clock=lambda: datetime.now(UTC), seen=self._seen
        )
        self.arrived = asyncio.Condition()

    async def _seen(self, event_id: str) -> bool:
        async with self.sessionmaker() as session:
            repo = WebhookEventRepository.from_session(session)
            return await repo.get(Provider.SNAPTRADE, event_id) is not None

    async def handle(self, request: Request) -> Response:
        try:
            event = await self.verifier.verify(await request.body(), request.headers)
        except WebhookRefused as refused:
            self.refused[refused.code] += 1
            return Response(status_code=400)
        if isinstance(event, UnknownSnapTradeWebhook):
            return Response(status_code=200)  # a type the product does not know: left alone
        now = self.clock()
        holdings = event.event_type is SnapTradeEventType.ACCOUNT_HOLDINGS_UPDATED
        async with transaction(self.sessionmaker) as session:
            connections = ConnectionRepository.from_session(session)
            connection = (
                await connections.get_by_provider_id(Provider.SNAPTRADE, event.authorization_id)
                if event.authorization_id
                else None
            )
            account_id = None
            if connection is not None and event.account_id is not None:
                account_id = await session.scalar(
                    select(Account.id).where(
                        Account.connection_id == connection.id,
                        Account.provider_account_id == event.account_id,
                    )
                )
            recorded = await WebhookEventRepository.from_session(session).record(
                provider=Provider.SNAPTRADE,
                event_id=event.event_id,
                event_type=event.event_type.value,
                event_at=event.occurred_at,
                received_at=now,
                result="handled",
                connection_id=None if connection is None else connection.id,
                account_id=account_id,
            )
            if recorded and holdings and connection is not None:
                await connections.mark_due([connection.id], now=now)
                self.woken.setdefault(connection.id, self.cause)
        if holdings:
            async with self.arrived:
                self.holdings += 1
                self.arrived.notify_all()
        return Response(status_code=200)

    async def wait_for(self, holdings: int, timeout: float = 60.0) -> None:
        async with self.arrived:
            await asyncio.wait_for(
                self.arrived.wait_for(lambda: self.holdings >= holdings), timeout
            )


async def _setup(
    users: int, sessionmaker: async_sessionmaker[AsyncSession], base_url: str
) -> MemorySecretStore:
    """The users, their SnapTrade registrations and connections."""
    secrets = MemorySecretStore()
    async with SnapTradeClient(
        CLIENT_ID, CONSUMER_KEY, base_url=base_url, rate_limiter=RateLimiter(10**6)
    ) as client:
        connector = SnapTradeConnector(client, secrets)
        for n in range(users):
            async with transaction(sessionmaker) as session:
                user = await UserRepository.from_session(session).create(email=f"u{n}@bench")
                await PortfolioRepository.from_session(session).get_or_create_default(user.id)
            await connector.register_user(str(user.id))
            creds = await connector._credentials(str(user.id))
            brokers = ("SCHWAB",) if n % 2 == 0 else ("SCHWAB", "ALPACA")
            for broker in brokers:
                auth = await client.sandbox_create_connection(
                    creds.snaptrade_user_id, creds.secret, broker, "read"
                )
                async with transaction(sessionmaker) as session:
                    await ConnectionRepository.from_session(session).upsert(
                        user_id=user.id,
                        provider=Provider.SNAPTRADE,
                        provider_connection_id=auth["id"],
                        institution_name=broker.title(),
                        institution_slug=broker.lower(),
                    )
    return secrets


async def _sandbox_total(http: httpx.AsyncClient) -> int:
    answer = await http.get("/sandbox/requests")
    answer.raise_for_status()
    return int(answer.json()["total"])


@dataclass
class ModeResult:
    mode: str
    accounts: int
    days: int
    calls: Counter[str] = field(default_factory=Counter)  # by cause
    syncs: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def per_account_day(self) -> float:
        return self.total / (self.accounts * self.days)


@dataclass(frozen=True)
class Mode:
    name: str
    plan: Literal["daily", "realtime"]
    webhooks: bool


FULL_POLLING = Mode("hourly polling, full reads", "realtime", webhooks=False)
DAILY_POLLING = Mode("hourly polling, daily plan", "daily", webhooks=False)
WEBHOOKS_FIRST = Mode("webhooks first", "daily", webhooks=True)
MODES = (FULL_POLLING, DAILY_POLLING, WEBHOOKS_FIRST)
# SnapTrade's daily sync runs at this tick of each simulated day (04:00 after the start).
DAILY_SYNC_TICK = 16


async def run_mode(
    mode: Mode,
    db_url: str,
    base_url: str,
    *,
    users: int,
    days: int,
    change_share: float,
    catchall_hours: float,
    silent_hours: float,
    seed: int,
) -> ModeResult:
    webhooks = mode.webhooks
    schedule = SyncSchedule(
        {Provider.SNAPTRADE: HOUR, Provider.PLAID: HOUR},
        webhooks=frozenset({Provider.SNAPTRADE}) if webhooks else frozenset(),
        catchall=timedelta(hours=catchall_hours),
        missing_webhook_after=timedelta(hours=silent_hours),
    )
    await migrate.upgrade_async(db_url)
    engine = create_engine(db_url)
    sessionmaker = create_sessionmaker(engine)
    start = datetime.now(UTC).replace(microsecond=0)
    clock = SimClock(start)
    receiver = Receiver(sessionmaker, clock)
    server: uvicorn.Server | None = None
    serving: asyncio.Task[None] | None = None
    http = httpx.AsyncClient(base_url=base_url, timeout=30)
    try:
        secrets = await _setup(users, sessionmaker, base_url)
        async with SnapTradeClient(
            CLIENT_ID, CONSUMER_KEY, base_url=base_url, rate_limiter=RateLimiter(10**6)
        ) as client:
            connector = SnapTradeConnector(client, secrets, plan=mode.plan)
            sync = SyncEngine(sessionmaker, {Provider.SNAPTRADE: connector}, clock=clock)
            runner = JobRunner(sync, schedule, clock=clock, concurrency=16)
            result = ModeResult(mode.name, 0, days)
            counting = False

            async def dispatch(claims: list[Claim]) -> None:
                groups: dict[str, list[Claim]] = {}
                for claim in claims:
                    if claim.connection_id in receiver.woken:
                        cause = receiver.woken[claim.connection_id]
                    elif claim.reason == "missing_webhook":
                        cause = "missing webhook"
                    else:
                        cause = "daily catch-all" if webhooks else "hourly poll"
                    groups.setdefault(cause, []).append(claim)
                for cause, group in groups.items():
                    before = await _sandbox_total(http)
                    await runner.run_claims(group)
                    if counting:
                        result.calls[cause] += await _sandbox_total(http) - before
                        result.syncs[cause] += len(group)
                receiver.woken.clear()

            scheduler = Scheduler(sessionmaker, schedule, dispatch, clock=clock)
            await scheduler.run_once()  # everyone's first sync, not counted
            async with sessionmaker() as session:
                rows = await session.execute(select(Account.id, Account.provider_account_id))
                accounts = sorted(provider_id for _, provider_id in rows.all())
            result.accounts = len(accounts)
            if webhooks:
                port = free_port()
                app = Starlette(
                    routes=[Route("/webhooks/snaptrade", receiver.handle, methods=["POST"])]
                )
                config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
                server = uvicorn.Server(config)
                serving = asyncio.create_task(server.serve())
                while not server.started:
                    await asyncio.sleep(0.01)
                url = f"http://127.0.0.1:{port}/webhooks/snaptrade"
                (await http.put("/sandbox/webhook", json={"url": url})).raise_for_status()
            await http.delete("/sandbox/requests")
            counting = True

            rng = random.Random(seed)
            ticks_per_day = DAY // TICK
            changes: dict[int, list[str]] = {}
            for day in range(days):
                for account in rng.sample(accounts, round(change_share * len(accounts))):
                    # Trades at any tick but the daily sync's, so each webhook has one cause.
                    at = rng.choice([t for t in range(ticks_per_day) if t != DAILY_SYNC_TICK])
                    changes.setdefault(day * ticks_per_day + at, []).append(account)
            moved = 0
            for tick in range(days * ticks_per_day):
                clock.now = start + (tick + 1) * TICK
                if tick % ticks_per_day == DAILY_SYNC_TICK:
                    receiver.cause = "daily-sync webhook"
                    answer = await http.post("/sandbox/daily-sync", json={})
                    answer.raise_for_status()
                    moved += len(answer.json()["accounts"])
                else:
                    receiver.cause = "trade webhook"
                for account in changes.get(tick, []):
                    answer = await http.post(
                        f"/sandbox/accounts/{account}/move-holdings", json={"units": "1"}
                    )
                    answer.raise_for_status()
                    moved += 1
                if webhooks:
                    await receiver.wait_for(moved)
                await scheduler.run_once()
            result.refused = receiver.refused
        return result
    finally:
        if server is not None and serving is not None:
            server.should_exit = True
            await serving
        await http.aclose()
        await engine.dispose()


def _report(results: Sequence[ModeResult], *, catchall: float, silent: float) -> None:
    first = next(r for r in results if r.mode == WEBHOOKS_FIRST.name)
    print(f"accounts: {first.accounts}; {first.days} simulated days in {TICK} ticks")
    for result in results:
        print(
            f"\n{result.mode}: {result.total} provider calls, "
            f"{result.per_account_day:.3f} per account-day"
        )
        for cause, calls in sorted(result.calls.items()):
            share = calls / result.total if result.total else 0.0
            print(f"  {cause:<18} {calls:>7} calls ({share:6.1%}) in {result.syncs[cause]} syncs")
    if first.refused:
        print(f"  webhooks refused: {dict(first.refused)}")
    print()
    for poll in results:
        if poll is first or not poll.per_account_day or not first.per_account_day:
            continue
        ratio = first.per_account_day / poll.per_account_day
        target = poll.mode == FULL_POLLING.name
        verdict = (" - " + ("meets" if ratio <= 1 / 20 else "misses") + " the target of 1/20") * (
            target
        )
        print(f"webhooks first / {poll.mode}: {ratio:.4f} (1/{1 / ratio:.1f}){verdict}")
    if first.total:
        catch, missing = first.calls["daily catch-all"], first.calls["missing webhook"]
        print(
            f"the daily catch-all (every {catchall:g} h) costs {catch / first.total:.1%} of the "
            f"webhooks-first calls, the missing-webhook syncs (silent {silent:g} h) "
            f"{missing / first.total:.1%}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks")
    parser.add_argument("--users", type=int, default=60)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--change-share", type=float, default=0.1, help="accounts changing a day")
    parser.add_argument("--catchall-hours", type=float, default=24.0)
    parser.add_argument(
        "--missing-hours",
        type=float,
        default=12.0,
        help="BROKERLINK_MISSING_WEBHOOK_HOURS: hours past the daily webhook (silent 24 h + this)",
    )
    parser.add_argument(
        "--silent-hours",
        type=float,
        default=None,
        help="the silence that makes a webhook missing, instead (12: 'no webhook for 12 h')",
    )
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--baselines",
        nargs="*",
        default=[FULL_POLLING.name, DAILY_POLLING.name],
        choices=[FULL_POLLING.name, DAILY_POLLING.name],
        help="the polling modes to measure beside webhooks first",
    )
    parser.add_argument(
        "--throughput-url",
        help="measure webhook handling at this receiving route instead (needs --load-ids); "
        "bench.webhook_route stands up the product's own route and measures it",
    )
    parser.add_argument("--load-clients", type=int, default=16)
    parser.add_argument("--load-seconds", type=float, default=5.0)
    parser.add_argument(
        "--load-ids",
        nargs=3,
        action="append",
        metavar=("AUTHORIZATION", "ACCOUNT", "USER"),
        default=None,
        help="what the webhooks name; repeat it to spread them over several connections",
    )
    args = parser.parse_args(argv)
    configure_logging("ERROR")
    if args.throughput_url:
        if not args.load_ids:
            parser.error("--throughput-url needs --load-ids AUTHORIZATION ACCOUNT USER")
        result = webhook_throughput(
            args.throughput_url,
            ids=[tuple(ids) for ids in args.load_ids],
            clients=args.load_clients,
            seconds=args.load_seconds,
        )
        print(
            f"webhook handling: {result.per_second:.0f} requests/s, p50 {result.p50_ms:.2f} ms, "
            f"p99 {result.p99_ms:.2f} ms ({result.errors} answered >= 300)"
        )
        if result.errors:
            print(f"  answers by status: {result.statuses}")
        return

    server = (
        start_postgres(os.environ.get("BROKERLINK_TEST_DATABASE_URL"))
        if args.db == "postgresql"
        else None
    )
    silent = (
        args.silent_hours
        if args.silent_hours is not None
        else WEBHOOK_CADENCE / HOUR + args.missing_hours
    )
    results: list[ModeResult] = []
    modes = [m for m in MODES if m is WEBHOOKS_FIRST or m.name in args.baselines]
    with tempfile.TemporaryDirectory() as tmp:
        for n, mode in enumerate(modes):
            proc, base_url = start_sandbox(
                "snaptrade",
                ["--client-id", CLIENT_ID, "--consumer-key", CONSUMER_KEY, "--rate-limit", "0"],
                "/",
            )
            try:
                if server is not None:
                    db_url = server.create_database("bench_webhooks")
                else:
                    db_url = f"sqlite+aiosqlite:///{Path(tmp) / f'webhooks-{n}.db'}"
                started = time.perf_counter()
                results.append(
                    asyncio.run(
                        run_mode(
                            mode,
                            db_url,
                            base_url,
                            users=args.users,
                            days=args.days,
                            change_share=args.change_share,
                            catchall_hours=args.catchall_hours,
                            silent_hours=silent,
                            seed=args.seed,
                        )
                    )
                )
                done = results[-1]
                print(
                    f"{done.mode}: {done.per_account_day:.3f} calls per account-day "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    if server is not None:
        server.stop()
    _report(results, catchall=args.catchall_hours, silent=silent)


if __name__ == "__main__":
    main()
