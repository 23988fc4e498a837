"""The analysis view of many portfolios at once, with numpy.

`analysis_columns(columns)` gives, for every portfolio in `columns`, what
`analysis_view(consolidate(rows_of_that_portfolio))` gives: the same tickers in the same order, the
same metadata, the same cash-proxy lines, the same `MixedCurrencyError`s, and shares equal as
Decimals (the value, not the form: shares come back with 8 decimal places, as the store holds them).

Technique. Columns, not objects: quantities are integers scaled by 10**8 (int64; the store's
`Quantity` is DECIMAL(20, 8)), strings are integer codes into a table of labels (`Categorical`),
a provider is its priority rank. Cash rows are keyed `CUR:<ISO>` by a look-up per label, not per
row. One stable sort by (portfolio, ticker, account) makes each line, and each (account, ticker)
slot within it, a run of rows; `np.*.reduceat` over the runs gives the best provider per slot
(rule 2), each line's summed shares, and its metadata row: the first, in the reference's order
(slots in order of appearance, rows in order), of the line's highest rank. Cash whose proxy is
held as a security in the same currency is added to that line, as `analysis_view` does.

Why it is exact. Sums of int64 are exact integers, and `Decimal(n).scaleb(-8)` is exact; no
float is involved. What numpy cannot do exactly, or what the reference decides by order or by
Decimal arithmetic, the reference itself computes, `analysis_view(consolidate(...))`, for those
portfolios only: a quantity that is not a whole number of 10**-8 within int64, a line whose sum
could leave int64, a decimal context narrower than 19 digits (the reference would round), cash
whose proxy is held in another currency or shared with another currency's cash (an FX rate or
`MixedCurrencyError`). Tests: tests/bench/test_columnar.py (a property against the reference).

Where it lives. In bench/, beside `bench.consolidation`, not in the package: no request path
computes many portfolios at once. `consolidate-all` is one user's few portfolios of tens of
positions, and it answers consolidation summaries (counted, superseded, cash, duplicates), not
the analysis view this computes; for a batch that small, building the columns costs more than
the per-portfolio path it would replace. It stays measured and proven exact here, ready for a
batch job (an analytics export over every user) should one be built.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import MAX_PREC, MIN_EMIN, Context, Decimal, getcontext
from itertools import repeat
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from brokerlink.domain.enums import InstrumentKind, Provider
from brokerlink.portfolio.consolidate import (
    CASH_PREFIX,
    DEFAULT_CASH_PROXIES,
    PROVIDER_PRIORITY,
    AnalysisLine,
    DuplicateAccount,
    MixedCurrencyError,
    SourcePosition,
    analysis_view,
    consolidate,
)

__all__ = ["AnalysisColumns", "Categorical", "PositionColumns", "analysis_columns"]

K = TypeVar("K", bound=Hashable)
L = TypeVar("L", bound=Hashable)
Ints = NDArray[np.int64]
Rows = NDArray[np.intp]

SCALE = 8  # decimal places of a scaled quantity
# Never rounds; traps a result above 1E+30 (so `int()` never builds a huge number).
_EXACT = Context(prec=MAX_PREC, Emax=30, Emin=MIN_EMIN)
_LIMIT = 2**63
_ROWS = 2**31  # row numbers share an int64 with another row number (the metadata order)
_CASH = InstrumentKind.CASH.value
_PROVIDER = {rank: provider for provider, rank in PROVIDER_PRIORITY.items()}


def _decimal(scaled: int | np.integer) -> Decimal:
    """A scaled quantity as a Decimal with 8 places, exactly."""
    return _EXACT.scaleb(Decimal(int(scaled)), -SCALE)


def _scale(quantity: Sequence[Decimal]) -> tuple[Ints, dict[int, Decimal]]:
    """Decimals as int64 * 10**-8, and the rows that are not exactly that (kept as Decimals)."""
    try:  # the common case, in C: every value fits
        scaled = list(map(_EXACT.scaleb, quantity, repeat(SCALE)))
        ints = list(map(int, scaled))
        if ints == scaled:
            return np.array(ints, dtype=np.int64), {}
    except (ArithmeticError, ValueError, TypeError, OverflowError):
        pass
    out, inexact = np.zeros(len(quantity), dtype=np.int64), {}
    for row, value in enumerate(quantity):
        fits = value.is_finite() and value.adjusted() < 20
        s = value.scaleb(SCALE, _EXACT) if fits else None
        if s is not None and s == int(s) and -_LIMIT < s < _LIMIT:
            out[row] = int(s)
        else:
            inexact[row] = value
    return out, inexact


@dataclass(frozen=True, slots=True)
class Categorical(Generic[L]):
    """A column of labels as integer codes into a table of distinct labels."""

    codes: Ints
    labels: Sequence[L]

    def __post_init__(self) -> None:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("the labels of a Categorical must be distinct")

    @classmethod
    def of(cls, values: Sequence[L] | Categorical[L]) -> Categorical[L]:
        if isinstance(values, Categorical):
            return values
        labels = list(dict.fromkeys(values))
        index = {label: code for code, label in enumerate(labels)}
        return cls(np.fromiter(map(index.__getitem__, values), np.int64, len(values)), labels)

    def __getitem__(self, row: int) -> L:
        return self.labels[int(self.codes[row])]


@dataclass(frozen=True, slots=True)
class PositionColumns(Generic[K]):
    """Positions of many portfolios as parallel columns: row i of each column is one position.

    `quantity` is the quantity * 10**8 (`CAST(quantity * 100000000 AS BIGINT)` in SQL); a row
    whose quantity is not that exactly has it in `inexact` (row -> Decimal). Any row order works;
    rows of a portfolio kept together (as the store returns them) sort fastest.
    """

    portfolio: Categorical[K]
    ticker: Categorical[str]
    quantity: Ints
    currency: Categorical[str]
    kind: Categorical[str]
    account: Categorical[str]
    rank: NDArray[np.int8]  # PROVIDER_PRIORITY of the row's provider
    cost_basis: Sequence[Decimal | None]
    inexact: Mapping[int, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        coded = (self.portfolio, self.ticker, self.currency, self.kind, self.account)
        sizes = {len(self.quantity), len(self.rank), len(self.cost_basis)}
        if len(sizes.union(len(x.codes) for x in coded)) > 1:
            raise ValueError("the columns differ in length")
        if len(self) and not 1 <= self.rank.min() <= self.rank.max() <= 3:
            raise ValueError("a rank is not a provider priority (1, 2 or 3)")

    @classmethod
    def from_lists(
        cls,
        portfolio: Sequence[K] | Categorical[K],
        ticker: Sequence[str] | Categorical[str],
        quantity: Sequence[Decimal] | Ints,
        currency: Sequence[str] | Categorical[str],
        kind: Sequence[str] | Categorical[str],
        account: Sequence[str] | Categorical[str],
        provider: Sequence[Provider] | NDArray[np.int8],
        cost_basis: Sequence[Decimal | None],
    ) -> PositionColumns[K]:
        """From parallel sequences: labels or `Categorical`s, Decimals or scaled int64s."""
        q, inexact = (quantity, {}) if isinstance(quantity, np.ndarray) else _scale(quantity)
        if not isinstance(provider, np.ndarray):
            provider = np.fromiter(map(PROVIDER_PRIORITY.__getitem__, provider), np.int8)
        of = Categorical.of
        return cls(of(portfolio), of(ticker), q.astype(np.int64, copy=False), of(currency),
                   of(kind), of(account), provider, cost_basis, inexact)  # fmt: skip

    @classmethod
    def from_positions(cls, portfolios: Mapping[K, Iterable[SourcePosition]]) -> PositionColumns[K]:
        """Each portfolio's `SourcePosition`s; a portfolio without rows still has a view, {}."""
        groups = [list(rows) for rows in portfolios.values()]
        codes = np.repeat(np.arange(len(groups), dtype=np.int64), list(map(len, groups)))
        rows = [row for group in groups for row in group]
        return cls.from_lists(
            Categorical(codes, list(portfolios)),
            [row.ticker for row in rows],
            [row.quantity for row in rows],
            [row.currency for row in rows],
            [row.kind for row in rows],
            [row.account for row in rows],
            [row.provider for row in rows],
            [row.cost_basis for row in rows],
        )

    def __len__(self) -> int:
        return len(self.quantity)

    def position(self, row: int) -> SourcePosition:
        """The row as the reference takes it."""
        quantity = self.inexact.get(row)
        return SourcePosition(
            self.ticker[row],
            _decimal(self.quantity[row]) if quantity is None else quantity,
            self.currency[row],
            self.kind[row],
            self.account[row],
            _PROVIDER[int(self.rank[row])],
            self.cost_basis[row],
        )


_Done = dict[str, AnalysisLine] | MixedCurrencyError


@dataclass
class AnalysisColumns(Generic[K]):
    """Every portfolio's analysis lines as columns; `view(p)` builds p's `AnalysisLine`s.

    Line i (where `live[i]`): portfolio code `portfolio[i]` (lines are sorted by it), ticker
    `tickers[ticker[i]]`, shares `shares[i]` * 10**-8, metadata from source row `row[i]`,
    `sources[i]`, cash currency `money[currency[i]]` (-1: a security), place in the view
    `order[i]`. `fallback`: what the reference computed, per portfolio; `errors`: its errors.
    """

    source: PositionColumns[K]
    portfolio: Ints
    ticker: Ints
    shares: Ints
    row: Rows
    sources: Rows
    currency: Ints
    order: Rows
    live: NDArray[np.bool_]
    tickers: list[str]
    money: list[str]
    is_proxy: list[bool]  # per currency: its line's ticker is a proxy, not CUR:<ISO>
    fallback: dict[K, _Done]
    errors: dict[K, MixedCurrencyError] = field(init=False)
    _codes: dict[K, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        done = self.fallback.items()
        self.errors = {p: e for p, e in done if isinstance(e, MixedCurrencyError)}

    def __len__(self) -> int:
        done = [len(v) for v in self.fallback.values() if isinstance(v, dict)]
        return int(self.live.sum()) + sum(done)

    def view(self, portfolio: K) -> dict[str, AnalysisLine]:
        """The portfolio's analysis view, in `analysis_view`'s order; raises as it would."""
        done = self.fallback.get(portfolio)
        if isinstance(done, MixedCurrencyError):
            raise done
        if done is not None:
            return done
        if not self._codes:
            self._codes = {p: code for code, p in enumerate(self.source.portfolio.labels)}
        code = self._codes.get(portfolio, -1)
        lo, hi = np.searchsorted(self.portfolio, [code, code + 1])
        lines = [i for i in (lo + np.argsort(self.order[lo:hi])).tolist() if self.live[i]]
        return {self.tickers[self.ticker[i]]: self._line(i) for i in lines}

    def views(self) -> dict[K, dict[str, AnalysisLine]]:
        """Every portfolio's view; portfolios whose view raises are left out (see `errors`)."""
        labels = self.source.portfolio.labels
        return {p: self.view(p) for p in labels if p not in self.errors}

    def columns(self) -> tuple[list[K], list[str], list[Decimal]]:
        """(portfolio, ticker, shares) per line, the reference's lines last; errors left out."""
        labels, live = self.source.portfolio.labels, self.live
        portfolios = [labels[p] for p in self.portfolio[live].tolist()]
        tickers = [self.tickers[t] for t in self.ticker[live].tolist()]
        shares = list(map(_decimal, self.shares[live].tolist()))
        for p, view in self.fallback.items():
            for ticker, line in view.items() if isinstance(view, dict) else ():
                portfolios.append(p)
                tickers.append(ticker)
                shares.append(line.shares)
        return portfolios, tickers, shares

    def _line(self, i: int) -> AnalysisLine:
        s, row, money = self.source, int(self.row[i]), int(self.currency[i])
        cash = money >= 0
        return AnalysisLine(
            self.tickers[self.ticker[i]],
            _decimal(self.shares[i]),
            self.money[money] if cash else s.currency[row],
            _CASH if cash else s.kind[row],
            s.account[row],
            None if cash else s.cost_basis[row],
            _PROVIDER[int(s.rank[row])],
            sources=int(self.sources[i]),
            is_cash_proxy=cash and self.is_proxy[money],
        )


def analysis_columns(
    columns: PositionColumns[K],
    *,
    duplicates: Mapping[K, Iterable[DuplicateAccount]] | None = None,
    cash_proxies: Mapping[str, str] = DEFAULT_CASH_PROXIES,
    fx_rates: Mapping[tuple[str, str], Decimal] | None = None,
) -> AnalysisColumns[K]:
    """`analysis_view(consolidate(rows, duplicates=duplicates[p]))` for every portfolio p at once.

    `duplicates` maps a portfolio to the duplicate accounts `consolidate` would be given for it.
    """
    c, n, duplicates = columns, len(columns), duplicates or {}
    if n >= _ROWS:
        raise ValueError(f"at most {_ROWS - 1} rows at once")
    P, A, R, Q = c.portfolio.codes, c.account.codes, c.rank, c.quantity
    n_t = len(c.ticker.labels)
    # Rule 4, per label: a cash row's key is CUR:<ISO>, coded n_t + the ISO's code in `money`.
    money: dict[str, int] = {}
    cur = [
        t[len(CASH_PREFIX) :].upper() if t.startswith(CASH_PREFIX) else None
        for t in c.ticker.labels
    ]
    iso = np.array([-1 if x is None else money.setdefault(x, len(money)) for x in cur], np.int64)
    upper = np.array([money.setdefault(x.upper(), len(money)) for x in c.currency.labels], np.int64)
    as_is = np.array([money.setdefault(x, len(money)) for x in c.currency.labels], np.int64)
    tm = iso[c.ticker.codes]
    cash = (tm >= 0) | np.array([k == _CASH for k in c.kind.labels], np.bool_)[c.kind.codes]
    nt = np.where(cash, n_t + np.where(tm >= 0, tm, upper[c.currency.codes]), c.ticker.codes)
    # One stable sort: lines (portfolio, ticker) made of slots (account) of rows in row order.
    n_nt = n_t + len(money)
    line_key = P * n_nt + nt
    losers = [(p, d.loser.key) for p, found in duplicates.items() for d in found]
    o = _order(line_key, A, _kept(c, losers) if losers else None)
    # o: the row numbers in sorted order; *s: a column in that order; l*: per line.
    m = len(o)
    ks, Rs, As = line_key[o], R[o], A[o]
    new_line = ks[1:] != ks[:-1]
    lines, slots = _starts(new_line, m), _starts(new_line | (As[1:] != As[:-1]), m)
    slot_size, line_size = np.diff(slots, append=m), np.diff(lines, append=m)
    # Rule 2: only the best provider's rows of a slot count. Those that do not are few.
    kept = Rs == np.repeat(np.maximum.reduceat(Rs, slots), slot_size)
    drop = np.flatnonzero(~kept)
    line_of_drop = np.searchsorted(lines, drop, "right") - 1
    shares = np.add.reduceat(Q[o], lines)
    np.subtract.at(shares, line_of_drop, Q[o[drop]])
    sources = line_size - np.bincount(line_of_drop, minlength=len(lines))
    # Metadata: the least (3 - rank, slot's first row, row) (for cash: rank ignored, counted
    # rows only); a row that does not count never has a line's highest rank.
    by_rank = np.where(cash[o], ~kept, 3 - Rs).astype(np.uint64) << 62
    first = np.repeat(o[slots], slot_size).astype(np.uint64) << 31
    row = np.minimum.reduceat(by_rank | first | o.astype(np.uint64), lines) & np.uint64(_ROWS - 1)
    at_line = o[lines]
    lp, lkey, lnt = P[at_line], ks[lines], nt[at_line]
    is_cash = lnt >= n_t
    lm = np.where(is_cash, lnt - n_t, 0)
    # Rule 5: each currency's line ticker is its proxy, else CUR:<ISO>.
    labels = list(money)
    out = [cash_proxies.get(x, CASH_PREFIX + x) for x in labels]
    codes = {t: i for i, t in enumerate(c.ticker.labels)}
    out_code = np.array([codes.setdefault(t, len(codes)) for t in out], np.int64)
    lt = np.where(is_cash, out_code[lm], lnt)
    # The portfolios the reference computes (see the module docstring).
    fallback = np.zeros(len(c.portfolio.labels), np.bool_)
    fallback[P[np.fromiter(c.inexact, np.intp)]] = True
    if getcontext().prec < 19 or getcontext().Emax < 11:  # the reference would round
        fallback[:] = True
    widest = max(int(Q.max(initial=0)), -int(Q.min(initial=0))) * int(line_size.max(initial=0))
    if widest >= 2**62:  # a line's sum might leave (-2**62, 2**62): look closer
        most = 2**62 // line_size  # exact: size * (largest |quantity|) < 2**62
        Qs = Q[o]
        wide = (np.maximum.reduceat(Qs, lines) >= most) | (np.minimum.reduceat(Qs, lines) <= -most)
        fallback[lp[wide]] = True
    if len(set(out_code.tolist())) < len(out_code):  # two currencies' cash on one ticker?
        key, count = np.unique((lp * len(codes) + lt)[is_cash], return_counts=True)
        fallback[key[count > 1] // len(codes)] = True
    # Cash whose proxy is held as a security of the same currency is added to that line.
    lands = np.flatnonzero(is_cash & (lt < n_t))
    at = np.searchsorted(lkey, lp[lands] * n_nt + lt[lands]).clip(max=len(lkey) - 1)
    hit = lkey[at] == lp[lands] * n_nt + lt[lands]
    lands, at = lands[hit], at[hit]
    same = as_is[c.currency.codes[row[at]]] == lm[lands]
    fallback[lp[lands[~same]]] = True
    shares[at[same]] += shares[lands[same]]
    live = ~fallback[lp]
    live[lands[same]] = False
    # The view's order: securities by first appearance, then cash in `analysis_view`'s order.
    cash_order = [*cash_proxies, *sorted(set(labels) - set(cash_proxies))]
    rank = np.array([cash_order.index(x) for x in labels], np.int64)
    order = np.where(is_cash, n + rank[lm], np.minimum.reduceat(o, lines))
    return AnalysisColumns(
        c, lp, lt, shares, row.astype(np.intp), sources, np.where(is_cash, lm, -1), order, live,
        list(codes), labels, [t != CASH_PREFIX + x for t, x in zip(out, labels, strict=True)],
        _reference(c, np.flatnonzero(fallback).tolist(), duplicates, cash_proxies, fx_rates),
    )  # fmt: skip


def _starts(change: NDArray[np.bool_], rows: int) -> Rows:
    """Where the runs of sorted rows begin, given `change[i]`: row i + 1 begins a run."""
    return np.flatnonzero(np.concatenate(([rows > 0], change)))


def _order(line: Ints, account: Ints, rows: Rows | None) -> Rows:
    """Row numbers sorted by (line, account), stably; only `rows` if given (losers dropped)."""
    if rows is not None:
        line, account = line[rows], account[rows]
    span = int(account.max(initial=0)) + 1
    if (int(line.max(initial=0)) + 1) * span < _LIMIT:
        order = np.argsort(line * span + account, kind="stable")
    else:
        order = np.lexsort((account, line))
    return order if rows is None else rows[order]


def _kept(c: PositionColumns[K], losers: list[tuple[K, str]]) -> Rows:
    """The rows not in a duplicate account's loser (rule 3)."""
    p_code = {label: i for i, label in enumerate(c.portfolio.labels)}
    a_code = {label: i for i, label in enumerate(c.account.labels)}
    span = len(a_code) + 1
    gone = [p_code[p] * span + a_code[a] for p, a in losers if p in p_code and a in a_code]
    return np.flatnonzero(~np.isin(c.portfolio.codes * span + c.account.codes, gone))


def _reference(
    c: PositionColumns[K],
    portfolios: list[int],
    duplicates: Mapping[K, Iterable[DuplicateAccount]],
    cash_proxies: Mapping[str, str],
    fx_rates: Mapping[tuple[str, str], Decimal] | None,
) -> dict[K, _Done]:
    """`analysis_view(consolidate(...))` itself, for the given portfolios (codes) only."""
    rows: dict[int, list[SourcePosition]] = {p: [] for p in portfolios}
    found = np.flatnonzero(np.isin(c.portfolio.codes, portfolios)) if rows else np.zeros(0, int)
    for r, p in zip(found.tolist(), c.portfolio.codes[found].tolist(), strict=True):
        rows[p].append(c.position(r))
    out: dict[K, _Done] = {}
    for p, positions in rows.items():
        label = c.portfolio.labels[p]
        try:
            result = consolidate(positions, duplicates=duplicates.get(label, ()))
            out[label] = analysis_view(result, cash_proxies=cash_proxies, fx_rates=fx_rates)
        except MixedCurrencyError as error:
            out[label] = error
    return out
