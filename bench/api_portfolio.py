"""`GET /api/portfolio` under concurrent load: the product against a naive implementation.

    .venv/bin/python -m bench.api_portfolio [--clients 50] [--duration 8] [--warmup 2]
                                            [--connections 10] [--positions 300]

For each backend (SQLite file in WAL mode, and a throwaway PostgreSQL started like the test
fixture, or BROKERLINK_TEST_DATABASE_URL's server), on a fresh database migrated to head:

* seed one user with 10 connections (SnapTrade, Plaid and the manual one) and ~300 positions:
  cash rows (`CUR:USD`) in most accounts, the same tickers in several accounts, and one account
  linked twice (same institution, mask and type through SnapTrade and Plaid);
* serve the real app (`create_app`) with uvicorn in a separate process on 127.0.0.1, with two
  extra routes mounted there only (never in src/):
    - `/naive/portfolio`: consolidates on every request with per-row queries (the user's
      connections, each account by its own query, each position by `session.get`), then the
      product's own rules (`consolidate`, `detect_duplicate_accounts`, `build_portfolio`);
    - `/nocache/api/portfolio`: the same app on a state without the portfolio cache;
  the three answers are asserted equal once before timing;
* from another process, `--clients` concurrent workers (one keep-alive HTTP/1.1 connection
  each, raw asyncio streams, closed loop) hammer one endpoint for `--warmup` then `--duration`
  seconds; requests/s and p50/p99 latency of the responses completed in the measured window.

The ratio printed is product / naive requests per second. Target: >= 5x.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from bench._sandbox import free_port, launch

BENCH_EMAIL = "bench@example.com"
PRODUCT = "/api/portfolio"
NAIVE = "/naive/portfolio"
NO_CACHE = "/nocache/api/portfolio"
INFLIGHT = "/bench/inflight"

# 10 connections: (provider, institution, accounts as (mask, type, name))
_SNAP, _PLAID = "snaptrade", "plaid"
CONNECTIONS: list[tuple[str, str, list[tuple[str | None, str, str]]]] = [
    (_SNAP, "Fidelity", [("1234", "brokerage", "Individual"), ("5678", "retirement", "Roth IRA")]),
    (_PLAID, "Fidelity", [("1234", "brokerage", "Individual")]),  # the same account, twice
    (_SNAP, "Charles Schwab", [("2201", "brokerage", "Brokerage"), ("2202", "retirement", "IRA")]),
    (_SNAP, "Interactive Brokers", [("U901", "brokerage", "Margin")]),
    (_SNAP, "Robinhood", [("7781", "brokerage", "Investing")]),
    (_PLAID, "Vanguard", [("3301", "retirement", "401k"), ("3302", "brokerage", "Taxable")]),
    (_PLAID, "Chase", [("4410", "bank", "Checking"), ("4411", "brokerage", "Self-Directed")]),
    (_PLAID, "E*TRADE", [("5501", "brokerage", "Stock Plan")]),
    (_PLAID, "Merrill", [(None, "brokerage", "Edge")]),
    # + the user's manual connection: the 10th
]
TICKERS = [f"T{n:03d}" for n in range(110)]


# -- seeding -----------------------------------------------------------------------------------


async def seed(url: str, positions: int) -> str:
    """Migrate, then store the bench user and their data; returns the user's API token."""
    from brokerlink.auth import AuthService
    from brokerlink.db import create_engine, create_sessionmaker, transaction
    from brokerlink.db.migrate import upgrade_async
    from brokerlink.domain import Provider
    from brokerlink.domain.enums import AccountType
    from brokerlink.repositories import (
        AccountRepository,
        ConnectionRepository,
        PortfolioRepository,
        PositionRepository,
        PositionValues,
    )

    await upgrade_async(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    now = datetime.now(UTC)
    try:
        async with transaction(sessions) as session:
            auth = AuthService(session)
            user = await auth.create_user(BENCH_EMAIL)
            token = (await auth.issue(user.id, kind="api", name="bench")).token
            portfolio = await PortfolioRepository.from_session(session).get_or_create_default(
                user.id
            )
            connections = ConnectionRepository.from_session(session)
            account_repo = AccountRepository.from_session(session)
            accounts = []
            for n, (provider, institution, members) in enumerate(CONNECTIONS):
                connection = await connections.upsert(
                    user_id=user.id,
                    provider=Provider(provider),
                    provider_connection_id=f"bench-{provider}-{n}",
                    institution_name=institution,
                    institution_slug=institution.lower().replace(" ", "-"),
                )
                for m, (mask, kind, name) in enumerate(members):
                    account = await account_repo.upsert(
                        connection,
                        provider_account_id=f"{provider}-{n}-{m}",
                        name=name,
                        type=AccountType(kind),
                        currency="USD",
                        number_mask=mask,
                    )
                    # Most accounts fresh; two never synced (stale).
                    if len(accounts) % 6 != 5:
                        await account_repo.mark_fresh(account, synced_at=now, data_as_of=now)
                    accounts.append((account, Provider(provider)))
            manual = await connections.get_or_create_manual(user.id)
            accounts.append((await account_repo.get_or_create_manual(manual), Provider.MANUAL))

            rows: list[PositionValues] = []
            per_account = positions // len(accounts)
            for a, (account, provider) in enumerate(accounts):
                count = per_account + (1 if a < positions % len(accounts) else 0)
                # One cash row per account (but the last few), then overlapping tickers.
                cash = a < len(accounts) - 2
                tickers = [TICKERS[(a * 7 + i) % len(TICKERS)] for i in range(count - cash)]
                if cash:
                    tickers.append("CUR:USD")
                for i, ticker in enumerate(tickers):
                    is_cash = ticker.startswith("CUR:")
                    quantity = Decimal(1000 + 250 * a) if is_cash else Decimal(f"{i + 1}.125")
                    price = None if is_cash or i % 9 == 4 else Decimal(f"{50 + (i * 13) % 400}.25")
                    rows.append(
                        PositionValues(
                            portfolio_id=portfolio.id,
                            user_id=user.id,
                            account_id=account.id,
                            ticker=ticker,
                            quantity=quantity,
                            currency="USD",
                            type="cash" if is_cash else ("etf" if i % 5 == 0 else "equity"),
                            provider=provider,
                            cost_basis=None if is_cash else Decimal(f"{40 + i}.5"),
                            price=price,
                            market_value=price * quantity if price is not None else None,
                            as_of=now - timedelta(minutes=a),
                        )
                    )
            await PositionRepository.from_session(session).bulk_upsert(rows)
        return token
    finally:
        await engine.dispose()


# -- the server process ------------------------------------------------------------------------


def build_app(url: str) -> Any:
    """The real app, plus the naive route and the cache-less copy (in this process only)."""
    # Imported here, not at the top: the load generator's process needs none of it. (No
    # `from __future__ import annotations` in this module: FastAPI reads the naive route's
    # annotations, which name these local imports.)
    from fastapi import FastAPI
    from sqlalchemy import select

    from brokerlink.api import AppState, create_app
    from brokerlink.api.deps import CurrentUser, DbSession, State
    from brokerlink.composition import Connectors
    from brokerlink.db import create_engine, create_sessionmaker
    from brokerlink.domain import Provider
    from brokerlink.models import (
        Account,
        AccountSyncStatus,
        Connection,
        ConnectionStatus,
        Portfolio,
        PositionStatus,
    )
    from brokerlink.models import Position as PositionRow
    from brokerlink.portfolio.consolidate import (
        AccountRef,
        SourcePosition,
        consolidate,
        detect_duplicate_accounts,
    )
    from brokerlink.portfolio.routes import build_portfolio, prefer_accounts
    from brokerlink.portfolio.schemas import PortfolioOut
    from brokerlink.repositories.portfolios import DEFAULT_PORTFOLIO_NAME
    from brokerlink.routing.coverage import CoverageRegistry, load_coverage
    from brokerlink.routing.router import ProviderFlags
    from brokerlink.sync import SyncEngine
    from brokerlink.sync.tasks import BackgroundSyncs

    sessionmaker = create_sessionmaker(create_engine(url))
    connectors = Connectors()
    state = AppState(
        sessionmaker=sessionmaker,
        coverage=CoverageRegistry(load_coverage()),
        flags=ProviderFlags(),
        connectors=connectors,
        syncs=BackgroundSyncs(SyncEngine(sessionmaker, connectors.by_provider())),
    )
    app: FastAPI = create_app(state, web=False)
    app.mount("/nocache", create_app(replace(state, portfolio_cache=None), web=False))

    async def naive_portfolio(state: State, session: DbSession, user: CurrentUser) -> PortfolioOut:
        """Everything on every request, one row per query."""
        portfolio = await session.scalar(
            select(Portfolio).where(
                Portfolio.user_id == user.id, Portfolio.name == DEFAULT_PORTFOLIO_NAME
            )
        )
        assert portfolio is not None
        connections = list(
            await session.scalars(
                select(Connection).where(Connection.user_id == user.id).order_by(Connection.id)
            )
        )
        accounts: list[tuple[Account, Connection]] = []
        for connection in connections:
            ids = await session.scalars(
                select(Account.id).where(Account.connection_id == connection.id)
            )
            for account_id in list(ids):
                account = await session.get(Account, account_id)
                assert account is not None
                accounts.append((account, connection))
        accounts.sort(key=lambda pair: pair[0].id)
        rows: list[PositionRow] = []
        for account, _ in accounts:
            ids = await session.scalars(
                select(PositionRow.id).where(
                    PositionRow.account_id == account.id,
                    PositionRow.portfolio_id == portfolio.id,
                    PositionRow.position_status == PositionStatus.ACTIVE,
                )
            )
            for position_id in list(ids):
                row = await session.get(PositionRow, position_id)
                assert row is not None
                rows.append(row)
        rows.sort(key=lambda r: (r.ticker, r.id))
        refs = [
            AccountRef(
                key=str(account.id),
                institution=connection.institution_slug or connection.institution_name,
                mask=account.number_mask,
                type=account.type,
                provider=connection.provider,
                connection=str(connection.id),
                label=f"{connection.institution_name} {account.name or ''}".strip(),
            )
            for account, connection in accounts
            if connection.provider is not Provider.MANUAL
        ]
        duplicates = detect_duplicate_accounts(refs, prefer=prefer_accounts(user))
        result = consolidate(
            [
                SourcePosition(
                    ticker=r.ticker,
                    quantity=r.quantity,
                    currency=r.currency,
                    kind=r.type,
                    account=str(r.account_id),
                    provider=r.provider,
                    cost_basis=r.cost_basis,
                    market_value=r.market_value,
                    price=r.price,
                    as_of=r.as_of,
                    ref=r.id,
                )
                for r in rows
            ],
            duplicates=duplicates,
        )
        shown = [(a, c) for a, c in accounts if c.status is not ConnectionStatus.DISABLED]
        labels = {
            str(a.id): " ".join(
                p
                for p in (c.institution_name, a.name, f"••{a.number_mask}" if a.number_mask else "")
                if p
            )
            for a, c in shown
        }
        now = state.clock()
        stale = sum(
            1
            for a, c in shown
            if c.provider is not Provider.MANUAL
            and (
                a.sync_status is not AccountSyncStatus.FRESH
                or a.last_synced_at is None
                or now - a.last_synced_at > state.analysis_max_age
            )
        )
        return build_portfolio(portfolio.id, portfolio.name, result, duplicates, labels, stale)

    app.add_api_route(NAIVE, naive_portfolio, methods=["GET"], response_model=PortfolioOut)
    return app


class InFlight:
    """ASGI wrapper counting the requests being handled; `GET /bench/inflight` reads it, so the
    next endpoint's run starts only once the server has finished the last run's requests."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == INFLIGHT:
            body = str(self.count).encode()
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.count += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


def serve(url: str, port: int) -> None:
    import uvicorn

    app = InFlight(build_app(url))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def drain(base: str, timeout: float = 120) -> None:
    """Wait until the server handles no request (those a load run left in flight)."""
    deadline = time.monotonic() + timeout
    while httpx.get(base + INFLIGHT, timeout=10).text != "0":
        if time.monotonic() > deadline:
            raise SystemExit(f"the server still had requests in flight after {timeout:g} s")
        time.sleep(0.1)


def start_server(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "bench.api_portfolio", "--serve", url, "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    return launch(cmd, base + "/health"), base


# -- the load generator process ----------------------------------------------------------------


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 GET: (status, body). Raw asyncio, so that the load generator's
    own CPU (a full httpx client costs about as much as the server on a cache hit) does not cap
    what is measured."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise RuntimeError(f"no Content-Length in {head[:200]!r}")
    return status, await reader.readexactly(length)


async def hammer(
    base: str, path: str, token: str, clients: int, warmup: float, duration: float
) -> dict[str, Any]:
    """`clients` workers, one keep-alive connection each, GET `path` back to back."""
    host, port = base.removeprefix("http://").split(":")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter
    start = clock()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while True:
                sent = clock()
                status, _ = await _get(reader, writer, request)
                done = clock()
                if status != 200:
                    errors += 1
                elif measure_from <= done <= stop_at:
                    latencies.append(done - sent)
        finally:
            writer.close()

    # Closed loop: each worker sends its next request as soon as the last one is answered.
    # Counted: the responses completed inside the window, whenever they were sent (a slow
    # endpoint's requests outlive the warm-up); those still in flight at the end are dropped.
    workers = [asyncio.create_task(worker()) for _ in range(clients)]
    await asyncio.sleep(stop_at - clock())
    for task in workers:
        task.cancel()
    for outcome in await asyncio.gather(*workers, return_exceptions=True):
        if not isinstance(outcome, asyncio.CancelledError | type(None)):
            raise outcome
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "rps": len(latencies) / duration,
        "p50_ms": pct(0.50) * 1000,
        "p99_ms": pct(0.99) * 1000,
        "errors": errors,
    }


def run_load(base: str, path: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.api_portfolio", "--load", base, "--path", path]
    cmd += ["--clients", str(args.clients), "--warmup", str(args.warmup)]
    cmd += ["--duration", str(args.duration)]
    env = {**os.environ, "BENCH_TOKEN": token}
    out = subprocess.run(cmd, check=True, capture_output=True, env=env, text=True).stdout
    result: dict[str, Any] = json.loads(out)
    if result["errors"]:
        raise SystemExit(f"{path}: {result['errors']} failed requests")
    return result


# -- orchestration -----------------------------------------------------------------------------


@dataclass
class Row:
    label: str
    path: str
    result: dict[str, Any]


def run_backend(backend: str, url: str, args: argparse.Namespace) -> list[Row]:
    token = asyncio.run(seed(url, args.positions))
    proc, base = start_server(url)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        answers = {
            path: httpx.get(base + path, headers=headers, timeout=60)
            for path in (PRODUCT, NAIVE, NO_CACHE)
        }
        for path, response in answers.items():
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        product = answers[PRODUCT].json()
        for path in (NAIVE, NO_CACHE):
            assert answers[path].json() == product, f"{path} differs from {PRODUCT}"
        again = httpx.get(base + PRODUCT, headers=headers, timeout=60)  # a cache hit now
        assert again.json() == product, "the cached answer differs from the computed one"
        assert product["duplicates"], "the seed has a duplicated account"
        assert product["cash"], "the seed has cash"
        assert product["stale_accounts"] == 2, product["stale_accounts"]
        accounts = sum(len(members) for *_, members in CONNECTIONS) + 1
        print(
            f"\n{backend}: {args.positions} stored positions in {accounts} accounts of "
            f"{len(CONNECTIONS) + 1} connections -> {len(product['holdings'])} holdings, "
            f"cash {product['cash']}, {product['superseded']} superseded by "
            f"{len(product['duplicates'])} duplicated account; {len(answers[PRODUCT].content):,} "
            "bytes of JSON, identical from all three endpoints",
            flush=True,
        )
        rows = []
        for label, path in (
            ("product (cached)", PRODUCT),
            ("product, cache off", NO_CACHE),
            ("naive, per-row", NAIVE),
        ):
            drain(base)
            rows.append(Row(label, path, run_load(base, path, token, args)))
        return rows
    finally:
        proc.kill()  # not terminate: uvicorn would first finish the requests left in flight
        proc.wait(timeout=10)


def _print(rows: list[Row], args: argparse.Namespace) -> None:
    print(f"  {args.clients} clients, {args.duration:g} s after {args.warmup:g} s warm-up")
    print(f"  {'endpoint':<22}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'requests':>10}")
    for row in rows:
        r = row.result
        print(
            f"  {row.label:<22}{r['rps']:>10,.0f}{r['p50_ms']:>10.1f}{r['p99_ms']:>10.1f}"
            f"{r['requests']:>10,}"
        )
    by = {row.path: row.result for row in rows}
    naive = by[NAIVE]
    if not naive["requests"]:
        print("  ratio product/naive: n/a (no naive response completed in the window)")
        return
    ratio = by[PRODUCT]["rps"] / naive["rps"]
    plain = by[NO_CACHE]["rps"] / naive["rps"]
    verdict = "meets" if ratio >= 5 else "MISSES"
    print(
        f"  ratio product/naive: {ratio:.1f}x ({verdict} the >= 5x target); "
        f"cache off/naive {plain:.1f}x; p99 naive/product "
        f"{naive['p99_ms'] / max(by[PRODUCT]['p99_ms'], 1e-9):.1f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--positions", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the server process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)  # internal: the load generator
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        serve(args.serve, args.port)
        return
    if args.load:
        token = os.environ["BENCH_TOKEN"]
        result = asyncio.run(
            hammer(args.load, args.path, token, args.clients, args.warmup, args.duration)
        )
        print(json.dumps(result))
        return

    backends = args.backends.split(",")
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            _print(run_backend("sqlite (file, WAL)", url, args), args)
    if "postgresql" in backends:
        from tests.fixtures.postgres_server import start_postgres

        try:
            server = start_postgres(os.environ.get("BROKERLINK_TEST_DATABASE_URL"))
        except RuntimeError as error:
            print(f"\npostgresql: skipped ({error})")
            return
        try:
            url = server.create_database("brokerlink_bench")
            _print(run_backend("postgresql", url, args), args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
