"""Position upserts per second: the store's batched upsert against naive row-by-row writes.

    .venv/bin/python -m bench.store [--accounts 1000] [--per-account 100] [--naive-rows 5000]

For each backend (SQLite file, and a throwaway PostgreSQL started like the test fixture, or
BROKERLINK_TEST_DATABASE_URL's server), on a fresh database migrated to head:

* bulk: `PositionRepository.bulk_upsert` of accounts x per-account rows in one transaction,
  first into an empty table (inserts), then the same keys again (conflicts -> updates);
* replace: `replace_account_positions` for every account, one transaction per account, as a
  sync would do it (all rows exist by then, so these are updates plus the deactivation pass);
* naive: the ORM one row at a time (SELECT by key, add or update, flush), on a smaller sample
  of new rows and then the same rows again, extrapolated as rows per second.

The ratios printed are bulk / naive (same kind of write). Target: >= 10x on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tests.fixtures.postgres_server import start_postgres

from brokerlink.db import create_engine, create_sessionmaker, transaction
from brokerlink.db.migrate import upgrade_async
from brokerlink.domain import Instrument, InstrumentKind, Provider
from brokerlink.domain import Position as Holding
from brokerlink.models import Account, Position
from brokerlink.repositories import (
    AccountRepository,
    ConnectionRepository,
    PortfolioRepository,
    PositionRepository,
    PositionValues,
    UserRepository,
)

AS_OF = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


@dataclass
class Result:
    backend: str
    bulk_insert: float
    bulk_update: float
    replace: float
    naive_insert: float
    naive_update: float


def _values(account: Account, user_id: int, portfolio_id: int, per_account: int, step: int):
    for i in range(per_account):
        yield PositionValues(
            portfolio_id=portfolio_id,
            user_id=user_id,
            account_id=account.id,
            ticker=f"T{i:04d}",
            quantity=Decimal(f"{i + step}.12345678"),
            currency="USD",
            type="equity",
            provider=Provider.SNAPTRADE,
            price=Decimal("101.25"),
            market_value=Decimal("1012.5"),
            as_of=AS_OF,
        )


async def _setup(
    sessions: async_sessionmaker[AsyncSession], accounts: int, label: str
) -> tuple[int, int, list[Account]]:
    async with transaction(sessions) as session:
        user = await UserRepository.from_session(session).create(email=f"{label}@bench")
        portfolio = await PortfolioRepository.from_session(session).create(
            user_id=user.id, name=label
        )
        connections = ConnectionRepository.from_session(session)
        account_repo = AccountRepository.from_session(session)
        created: list[Account] = []
        for n in range(accounts):
            if n % 10 == 0:
                connection = await connections.upsert(
                    user_id=user.id,
                    provider=Provider.SNAPTRADE,
                    provider_connection_id=f"{label}-auth-{n // 10}",
                    institution_name="Bench Bank",
                )
            created.append(
                await account_repo.upsert(connection, provider_account_id=f"{label}-acct-{n}")
            )
        return user.id, portfolio.id, created


async def _bulk(sessions, user_id, portfolio_id, accounts, per_account, step, batch_size) -> float:
    rows = [
        row
        for account in accounts
        for row in _values(account, user_id, portfolio_id, per_account, step)
    ]
    started = time.perf_counter()
    async with transaction(sessions) as session:
        written = await PositionRepository.from_session(session).bulk_upsert(
            rows, batch_size=batch_size
        )
    return written / (time.perf_counter() - started)


async def _replace(sessions, portfolio_id, accounts, per_account) -> float:
    holdings = {
        account.id: [
            Holding(
                provider=Provider.SNAPTRADE,
                account_id=account.provider_account_id,
                instrument=Instrument(symbol=f"T{i:04d}", kind=InstrumentKind.EQUITY),
                quantity=Decimal(f"{i}.5"),
                currency="USD",
                price=Decimal("99.5"),
                as_of=AS_OF,
            )
            for i in range(per_account)
        ]
        for account in accounts
    }
    written = 0
    started = time.perf_counter()
    for account in accounts:
        async with transaction(sessions) as session:
            written += await PositionRepository.from_session(session).replace_account_positions(
                account, holdings[account.id], portfolio_id=portfolio_id
            )
    return written / (time.perf_counter() - started)


async def _naive(sessions, user_id, portfolio_id, accounts, per_account, step) -> float:
    """Row by row through the ORM: look the row up by its key, then add or update it."""
    rows = [
        row
        for account in accounts
        for row in _values(account, user_id, portfolio_id, per_account, step)
    ]
    started = time.perf_counter()
    async with transaction(sessions) as session:
        for row in rows:
            existing = await session.scalar(
                select(Position).where(
                    Position.portfolio_id == row["portfolio_id"],
                    Position.ticker == row["ticker"],
                    Position.account_id == row["account_id"],
                    Position.provider == row["provider"],
                )
            )
            if existing is None:
                session.add(Position(**row, position_source=row["provider"].value))
            else:
                existing.quantity = row["quantity"]
                existing.price = row.get("price")
                existing.market_value = row.get("market_value")
                existing.as_of = row.get("as_of")
            await session.flush()
    return len(rows) / (time.perf_counter() - started)


async def run_backend(backend: str, url: str, args: argparse.Namespace) -> Result:
    await upgrade_async(url)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        naive_accounts = max(1, args.naive_rows // args.per_account)
        user_id, portfolio_id, accounts = await _setup(sessions, args.accounts, "bulk")
        n_user, n_portfolio, n_accounts = await _setup(sessions, naive_accounts, "naive")
        bulk_insert = await _bulk(
            sessions, user_id, portfolio_id, accounts, args.per_account, 0, args.batch_size
        )
        bulk_update = await _bulk(
            sessions, user_id, portfolio_id, accounts, args.per_account, 1, args.batch_size
        )
        replace = await _replace(sessions, portfolio_id, accounts, args.per_account)
        naive_insert = await _naive(sessions, n_user, n_portfolio, n_accounts, args.per_account, 0)
        naive_update = await _naive(sessions, n_user, n_portfolio, n_accounts, args.per_account, 1)
    finally:
        await engine.dispose()
    return Result(backend, bulk_insert, bulk_update, replace, naive_insert, naive_update)


def _print(result: Result, args: argparse.Namespace) -> None:
    total = args.accounts * args.per_account
    naive = args.naive_rows
    print(f"\n{result.backend}: {total:,} positions in {args.accounts:,} accounts")
    print(f"  bulk upsert, inserts   {result.bulk_insert:>10,.0f} rows/s")
    print(f"  bulk upsert, updates   {result.bulk_update:>10,.0f} rows/s")
    print(f"  replace per account    {result.replace:>10,.0f} rows/s  (1 transaction/account)")
    print(f"  naive, inserts         {result.naive_insert:>10,.0f} rows/s  ({naive:,}-row sample)")
    print(f"  naive, updates         {result.naive_update:>10,.0f} rows/s  ({naive:,}-row sample)")
    print(
        f"  ratio bulk/naive: inserts {result.bulk_insert / result.naive_insert:.1f}x, "
        f"updates {result.bulk_update / result.naive_update:.1f}x; "
        f"replace/naive-updates {result.replace / result.naive_update:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--naive-rows", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    backends = args.backends.split(",")

    if "sqlite" in backends:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            _print(asyncio.run(run_backend("sqlite", url, args)), args)
    if "postgresql" in backends:
        server = start_postgres(os.environ.get("BROKERLINK_TEST_DATABASE_URL"))
        try:
            url = server.create_database("brokerlink_bench")
            _print(asyncio.run(run_backend("postgresql", url, args)), args)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
