"""The analysis view for many users: positions per second, columnar against a per-row dict loop.

    .venv/bin/python -m bench.consolidation [--users 100000] [--positions 30] [--verify 1000]
                                            [--repeat 2]

(`BENCH_CONSOLIDATION_USERS` sets the default for `--users`, for a quick run.)

Generates `users` x `positions` stored positions deterministically (seeded, with numpy): about
600 tickers with a long-tailed popularity (SGOV, the USD cash proxy, among them), 2-4 accounts
per user across SnapTrade, Plaid and manual connections, one cash row per account (mostly USD,
some CAD/EUR/GBP), the same ticker in several accounts, and now and then a manual entry beside a
provider's row for the same account and ticker (provider priority decides). The rows come in
two forms, both built before any timing, as a store query would hand them over:

* Python lists, one element per row (Decimal quantities, strings, `Provider`s): the input of
  the baseline, and, as one `SourcePosition` list per user, of the product's path;
* columns: quantity * 10**8 as int64 (`CAST(quantity * 100000000 AS BIGINT)`) and integer codes
  for the strings (ids the store already has), the input of `analysis_columns`.

Then, on the same rows, each timed with the garbage collector as it is in production:

* baseline: a straightforward per-row Python dict loop computing every user's
  ticker -> summed shares (priority per account and ticker, cash on its proxy) with Decimal;
* current: the product's path, `analysis_view(consolidate(...))` per user;
* columnar: `analysis_columns` over all users at once, from the columns (its result holds every
  line's shares and metadata row; `AnalysisLine` objects are built only by `view`, not timed);
* building the columns from the Python lists instead (`PositionColumns.from_lists`: codes for
  the strings, Decimal -> scaled int64), timed apart, and the ratio with it included.

Baseline and the build are timed as the best of `--repeat` runs, the product path once, and
columnar as the best of at least 5 runs (under half a second each, one hiccup of a shared
machine would double it; the seconds-long paths average such noise out); then baseline and
columnar again, with the garbage collector off.
Before timing anything, a sample of `--verify` users is checked: baseline, current and columnar
(from the store's columns, and from `SourcePosition`s) must agree exactly, shares as Decimals and
the columnar view line for line, or the run stops with an error.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from itertools import repeat

import numpy as np

from bench.columnar import Categorical, PositionColumns, analysis_columns
from brokerlink.domain import Provider
from brokerlink.portfolio import (
    DEFAULT_CASH_PROXIES,
    PROVIDER_PRIORITY,
    AnalysisLine,
    SourcePosition,
    analysis_view,
    consolidate,
)

WELL_KNOWN = (
    "AAPL MSFT VTI VOO SPY QQQ NVDA AMZN GOOGL TSLA META BRK.B VXUS BND SCHD JEPI VTV IWM "
    "AVGO COST JPM V UNH XOM HD PG JNJ MA LLY ABBV"
).split()
FUNDS = {"VTI", "VOO", "SPY", "QQQ", "VXUS", "BND", "SCHD", "JEPI", "VTV", "IWM", "SGOV"}
CURRENCIES = ("USD", "CAD", "EUR", "GBP")
PROVIDERS = (Provider.SNAPTRADE, Provider.PLAID, Provider.MANUAL)


def _universe(rnd: random.Random, size: int = 600) -> list[str]:
    tickers = list(WELL_KNOWN)
    seen = set(tickers)
    while len(tickers) < size:
        if len(tickers) == 150:  # the default USD cash proxy, held by some users as an ETF
            tickers.append("SGOV")
            continue
        symbol = "".join(rnd.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rnd.randint(2, 4)))
        if symbol not in seen and symbol != "SGOV":
            seen.add(symbol)
            tickers.append(symbol)
    return tickers


@dataclass
class Rows:
    """The rows as Python lists, one element per position (what a per-row loop reads)."""

    portfolio: list[int]
    ticker: list[str]
    quantity: list[Decimal]
    currency: list[str]
    kind: list[str]
    account: list[str]
    provider: list[Provider]
    cost_basis: list[Decimal | None]

    def __len__(self) -> int:
        return len(self.ticker)


def generate(users: int, positions: int, seed: int) -> PositionColumns[int]:
    """`users` x `positions` rows, one user's rows together (as the store returns them)."""
    rng = np.random.default_rng(seed)
    universe = _universe(random.Random(seed))
    weights = 1 / np.arange(1, len(universe) + 1) ** 0.9
    # Accounts: 2-4 per user, each with its provider (rank 3, 2, 1 in proportions 5:4:1).
    per_user = rng.integers(2, 5, users)
    first_account = np.concatenate(([0], np.cumsum(per_user)[:-1]))
    rank = rng.choice(np.array([3, 2, 1], np.int8), per_user.sum(), p=[0.5, 0.4, 0.1])
    # Cash: one row per account, 93% USD; amount in whole cents up to 50,000.99.
    cash_user = np.repeat(np.arange(users), per_user)
    cash_account = np.arange(per_user.sum())
    other = rng.random(len(cash_account)) >= 0.93
    currency = np.where(other, rng.integers(1, 4, len(cash_account)), 0)
    cents = rng.integers(0, 50_001, len(cash_account)) * 100 + rng.integers(0, 100, len(other))
    # Securities: the rest of each user's rows, in one of its accounts, priority 3% manual.
    user = np.repeat(np.arange(users), positions - per_user)
    account = first_account[user] + (rng.random(len(user)) * per_user[user]).astype(np.int64)
    source = np.where(rng.random(len(user)) < 0.03, np.int8(1), rank[account])
    symbol = rng.choice(len(universe), len(user), p=weights / weights.sum())
    while True:  # one row per (account, ticker, provider): draw the repeats again
        key = (account * len(universe) + symbol) * 4 + source
        again = np.ones(len(key), np.bool_)
        again[np.unique(key, return_index=True)[1]] = False
        if not again.any():
            break
        symbol[again] = rng.choice(len(universe), again.sum(), p=weights / weights.sum())
    fraction = np.where(rng.random(len(user)) < 0.25, rng.integers(0, 10**8, len(user)), 0)
    shares = rng.integers(1, 501, len(user)) * 10**8 + fraction
    costs = np.where(rng.random(len(user)) < 0.8, rng.integers(100, 90_001, len(user)), -1)
    # Both together, each user's rows shuffled.
    tickers = universe + [f"CUR:{code}" for code in CURRENCIES]
    is_fund = np.array([t in FUNDS for t in universe])
    rows = {
        "portfolio": np.concatenate((user, cash_user)),
        "ticker": np.concatenate((symbol, len(universe) + currency)),
        "quantity": np.concatenate((shares, cents * 10**6)),
        "currency": np.concatenate((np.zeros(len(user), np.int64), currency)),
        "kind": np.concatenate((is_fund[symbol].astype(np.int64), np.full(len(other), 2))),
        "account": np.concatenate((account, cash_account)),
        "rank": np.concatenate((source, rank)).astype(np.int8),
        "cost": np.concatenate((costs, np.full(len(other), -1))),
    }
    order = np.argsort(rows["portfolio"] + rng.random(len(rows["portfolio"])), kind="stable")
    rows = {name: column[order] for name, column in rows.items()}
    cost_of = {c: Decimal(f"{c}.00000000") for c in np.unique(rows["cost"]).tolist() if c >= 0}
    cost_basis = [cost_of.get(c) for c in rows["cost"].tolist()]
    return PositionColumns(
        Categorical(rows["portfolio"], list(range(users))),
        Categorical(rows["ticker"], tickers),
        rows["quantity"],
        Categorical(rows["currency"], list(CURRENCIES)),
        Categorical(rows["kind"], ["equity", "etf", "cash"]),
        Categorical(rows["account"], [str(n + 1) for n in range(per_user.sum())]),
        rows["rank"],
        cost_basis,
    )


def to_rows(columns: PositionColumns[int]) -> Rows:
    """The same rows as Python lists of Decimals, strings and `Provider`s."""

    def labels(column: Categorical[str]) -> list[str]:
        return np.array(column.labels, dtype=object)[column.codes].tolist()

    quantity = list(map(Decimal.scaleb, map(Decimal, columns.quantity.tolist()), repeat(-8)))
    by_rank = np.array([None, Provider.MANUAL, Provider.PLAID, Provider.SNAPTRADE], dtype=object)
    return Rows(
        columns.portfolio.codes.tolist(),
        labels(columns.ticker),
        quantity,
        labels(columns.currency),
        labels(columns.kind),
        labels(columns.account),
        by_rank[columns.rank].tolist(),
        list(columns.cost_basis),
    )


def to_sources(rows: Rows) -> dict[int, list[SourcePosition]]:
    per_user: dict[int, list[SourcePosition]] = {}
    for user, *fields in zip(
        rows.portfolio,
        rows.ticker,
        rows.quantity,
        rows.currency,
        rows.kind,
        rows.account,
        rows.provider,
        rows.cost_basis,
        strict=True,
    ):
        per_user.setdefault(user, []).append(SourcePosition(*fields))
    return per_user


def baseline(rows: Rows) -> dict[int, dict[str, Decimal]]:
    """The straightforward loop: keep the best provider per account and ticker, then sum."""
    priority = PROVIDER_PRIORITY
    proxies = DEFAULT_CASH_PROXIES
    c = rows
    slots: dict[tuple[int, str, str], list] = {}
    for user, ticker, qty, currency, kind, account, provider in zip(
        c.portfolio, c.ticker, c.quantity, c.currency, c.kind, c.account, c.provider, strict=True
    ):
        if kind == "cash" or ticker.startswith("CUR:"):
            code = ticker[4:].upper() if ticker.startswith("CUR:") else currency.upper()
            ticker = "CUR:" + code
        key = (user, account, ticker)
        rank = priority[provider]
        slot = slots.get(key)
        if slot is None or rank > slot[0]:
            slots[key] = [rank, qty]
        elif rank == slot[0]:
            slot[1] += qty
    out: dict[int, dict[str, Decimal]] = {}
    for (user, _account, ticker), (_rank, qty) in slots.items():
        if ticker.startswith("CUR:"):
            ticker = proxies.get(ticker[4:], ticker)
        lines = out.get(user)
        if lines is None:
            lines = out[user] = {}
        lines[ticker] = lines[ticker] + qty if ticker in lines else qty
    return out


def current(per_user: dict[int, list[SourcePosition]]) -> dict[int, dict[str, AnalysisLine]]:
    return {user: analysis_view(consolidate(rows)) for user, rows in per_user.items()}


def build(rows: Rows) -> PositionColumns[int]:
    """The columns from the Python lists: codes for the strings, Decimal -> scaled int64."""
    return PositionColumns.from_lists(
        rows.portfolio,
        rows.ticker,
        rows.quantity,
        rows.currency,
        rows.kind,
        rows.account,
        rows.provider,
        rows.cost_basis,
    )


def verify(columns: PositionColumns[int], rows: Rows, per_user, sample: int) -> None:
    users = sorted(per_user)
    step = max(1, len(users) // max(1, sample))
    picked = users[::step][:sample]
    subset = {u: per_user[u] for u in picked}
    expected = current(subset)
    loop = baseline(build_rows(subset))
    batch = analysis_columns(PositionColumns.from_positions(subset))
    # And the full batches, as timed: the same users must come out the same from them.
    full = analysis_columns(columns)
    built = analysis_columns(build(rows))
    for user in picked:
        want = expected[user]
        shares = {ticker: line.shares for ticker, line in want.items()}
        if loop[user] != shares:
            raise SystemExit(f"baseline disagrees with analysis_view for user {user}")
        for got in (batch.view(user), full.view(user), built.view(user)):
            if got != want or list(got) != list(want):
                raise SystemExit(f"columnar disagrees with analysis_view for user {user}")
    print(
        f"  verified {len(picked):,} users: baseline, current and columnar agree exactly "
        "(shares as Decimals; columnar views line for line, metadata included)"
    )
    print(
        f"  computed by the reference inside columnar: {len(full.fallback):,} of "
        f"{len(users):,} users ({len(full.fallback) / len(users):.2%})"
    )


def build_rows(per_user: dict[int, list[SourcePosition]]) -> Rows:
    flat = [(user, p) for user, positions in per_user.items() for p in positions]
    return Rows(
        [user for user, _ in flat],
        [p.ticker for _, p in flat],
        [p.quantity for _, p in flat],
        [p.currency for _, p in flat],
        [p.kind for _, p in flat],
        [p.account for _, p in flat],
        [p.provider for _, p in flat],
        [p.cost_basis for _, p in flat],
    )


def _timed(run: Callable[[], object], repeat: int = 1) -> float:
    """The best of `repeat` runs (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_users = int(os.environ.get("BENCH_CONSOLIDATION_USERS", "100000"))
    parser.add_argument("--users", type=int, default=default_users)
    parser.add_argument("--positions", type=int, default=30)
    parser.add_argument("--verify", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--repeat", type=int, default=2, help="best of N (columnar: at least 5)")
    args = parser.parse_args()

    started = time.perf_counter()
    columns = generate(args.users, args.positions, args.seed)
    generated = time.perf_counter() - started
    rows = to_rows(columns)
    per_user = to_sources(rows)
    listed = time.perf_counter() - started - generated
    n = len(rows)
    print(
        f"{args.users:,} users x {args.positions} = {n:,} positions (generated as columns in "
        f"{generated:.1f}s, as Python lists and SourcePositions in {listed:.1f}s; not counted)"
    )
    verify(columns, rows, per_user, args.verify)

    short = max(5, args.repeat)
    base = _timed(lambda: baseline(rows), args.repeat)
    now = _timed(lambda: current(per_user))
    fast = _timed(lambda: analysis_columns(columns), short)
    made = _timed(lambda: build(rows), args.repeat)
    for label, took in (
        (f"baseline (per-row dict loop, Python lists; best of {args.repeat})", base),
        ("current (analysis_view per user; once)", now),
        (f"columnar (analysis_columns, store's columns; best of {short})", fast),
    ):
        print(f"  {label:<62}{n / took:>11,.0f} positions/s  ({took:.2f}s)")
    ok = "met" if base / fast >= 5 else "NOT met"
    print(
        f"  ratio columnar/baseline {base / fast:.1f}x (target >= 5x: {ok}); "
        f"columnar/current {now / fast:.1f}x"
    )
    print(
        f"  building the columns from the Python lists instead (codes for the strings, "
        f"Decimal -> int64): {made:.2f}s; with it, {n / (made + fast):,.0f} positions/s, "
        f"{base / (made + fast):.1f}x the baseline"
    )

    gc.disable()
    try:
        base_off = _timed(lambda: baseline(rows), args.repeat)
        fast_off = _timed(lambda: analysis_columns(columns), short)
    finally:
        gc.enable()
    print(
        f"  garbage collector off: baseline {n / base_off:,.0f}/s, "
        f"columnar {n / fast_off:,.0f}/s, ratio {base_off / fast_off:.1f}x"
    )


if __name__ == "__main__":
    sys.exit(main())
