"""The portfolio's holdings table, allocations and duplicated accounts, from what consolidation
counted: one row per ticker and currency, value = quantity × price × the contract multiplier
(options), weights per currency, and per duplicate what each side is worth and what the totals
would become were the other one counted."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from brokerlink.portfolio.consolidate import (
    ConsolidatedPortfolio,
    DuplicateAccount,
    contract_multiplier,
    is_cash,
)
from brokerlink.portfolio.schemas import DuplicateOut, HoldingOut, PortfolioOut, Slice, SourceOut
from brokerlink.portfolio.service import duplicate_effects

__all__ = ["build_portfolio"]

_PLACES = Decimal("0.0001")


def _slices(values: dict[tuple[str, str], Decimal], totals: dict[str, Decimal]) -> list[Slice]:
    out = [
        Slice(
            label=label,
            currency=currency,
            value=value,
            weight=(value / totals[currency]).quantize(_PLACES)
            if totals.get(currency)
            else Decimal(0),
        )
        for (label, currency), value in values.items()
    ]
    return sorted(out, key=lambda s: (s.currency, -s.value, s.label))


def build_portfolio(
    portfolio_id: int,
    name: str,
    result: ConsolidatedPortfolio,
    duplicates: list[DuplicateAccount],
    account_labels: dict[str, str],
    stale_accounts: int,
) -> PortfolioOut:
    """The holdings table and the allocations, from what consolidation counted."""
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in result.securities:
        groups[(row.ticker, row.currency)].append(row)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for row in result.securities:
        if row.market_value is not None:
            totals[row.currency] += row.market_value
    for currency, amount in result.cash.items():
        totals[currency] += amount
    by_type: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_account: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    by_provider: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    holdings = []
    for (ticker, currency), rows in groups.items():
        quantity = sum((r.quantity for r in rows), Decimal(0))
        values = [r.market_value for r in rows]
        value = (
            sum((v for v in values if v is not None), Decimal(0))
            if any(v is not None for v in values)
            else None
        )
        priced = [r for r in rows if r.price is not None]
        latest = max(priced, key=lambda r: (r.as_of is not None, r.as_of or 0)) if priced else None
        price = latest.price if latest is not None else None
        multiplier = contract_multiplier(rows[0].kind)
        if value is None and price is not None:
            value = price * quantity * multiplier
        # Sources quoting different prices: the price shown is the average their values imply,
        # so that quantity × price × multiplier is the value shown.
        averaged = (
            value is not None
            and quantity != 0
            and len({r.price for r in priced}) > 1
            and all(r.market_value is not None for r in rows)
        )
        if averaged:
            assert value is not None
            price = (value / (quantity * multiplier)).quantize(_PLACES)
        stamps = [r.as_of for r in rows if r.as_of is not None]
        holdings.append(
            HoldingOut(
                ticker=ticker,
                name=next((r.name for r in rows if r.name), None),
                type=rows[0].kind,
                multiplier=multiplier,
                currency=currency,
                quantity=quantity,
                price=price,
                price_averaged=averaged,
                value=value,
                weight=(value / totals[currency]).quantize(_PLACES)
                if value is not None and totals.get(currency)
                else None,
                as_of=max(stamps) if stamps else None,
                sources=[
                    SourceOut(
                        account_id=int(r.account),
                        provider=r.provider.value,
                        quantity=r.quantity,
                        market_value=r.market_value,
                    )
                    for r in rows
                ],
            )
        )
        for r in rows:
            if r.market_value is None:
                continue
            by_type[(r.kind, currency)] += r.market_value
            by_account[(account_labels.get(r.account, r.account), currency)] += r.market_value
            by_provider[(r.provider.value, currency)] += r.market_value
    for row in result.cash_positions:
        assert is_cash(row)
        by_type[("cash", row.currency)] += row.quantity
        by_account[(account_labels.get(row.account, row.account), row.currency)] += row.quantity
        by_provider[(row.provider.value, row.currency)] += row.quantity
    holdings.sort(key=lambda h: (h.currency, -(h.value or Decimal(0)), h.ticker))
    return PortfolioOut(
        id=portfolio_id,
        name=name,
        last_updated=result.last_updated,
        providers=sorted(p.value for p in result.providers),
        holdings=holdings,
        cash=dict(result.cash),
        totals=dict(totals),
        by_type=_slices(by_type, totals),
        by_account=_slices(by_account, totals),
        by_provider=_slices(by_provider, totals),
        duplicates=[
            DuplicateOut(
                kept_account_id=int(d.winner.key),
                kept_provider=d.winner.provider.value,
                dropped_account_id=int(d.loser.key),
                dropped_provider=d.loser.provider.value,
                reason=d.reason,
                kept_by_user=d.by_user,
                kept_value=effect.kept_value,
                dropped_value=effect.dropped_value,
                totals_if_switched=effect.totals_if_switched,
            )
            for d, effect in zip(
                duplicates, duplicate_effects(result, duplicates, totals), strict=True
            )
        ],
        superseded=len(result.superseded),
        stale_accounts=stale_accounts,
    )
