"""Consolidation: every provider's positions and manual entries into one portfolio, losing nothing.

Rules (the product's design):

1. Stored positions stay per account and provider: the same ticker in two accounts is two rows.
2. Where one account's ticker arrives from more than one source, provider priority picks the record
   (snaptrade 3 > plaid 2 > manual 1); the others are kept as *superseded*, with the reason.
3. The same real account linked through two providers (same institution, mask and type) counts
   once: `detect_duplicate_accounts` names the winner, and the loser's positions are superseded.
4. Cash aggregates per currency across accounts (Chase $5,000 + Schwab $3,000 + manual $1,000 →
   $9,000 `CUR:USD`).
5. The analysis view sums quantities per ticker across every account (100 + 50 AAPL → 150), takes
   metadata (account, cost basis) from the highest-priority source, and maps cash to a proxy
   ticker per currency (USD → SGOV by default). Money in different currencies is never summed
   without a stated FX rate.

Everything is Decimal; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from brokerlink.domain.enums import AccountType, InstrumentKind, Provider
from brokerlink.errors import BrokerlinkError

__all__ = [
    "DEFAULT_CASH_PROXIES",
    "PROVIDER_PRIORITY",
    "AccountRef",
    "AnalysisLine",
    "ConsolidatedPortfolio",
    "DuplicateAccount",
    "OPTION_MULTIPLIER",
    "MixedCurrencyError",
    "SourcePosition",
    "Superseded",
    "analysis_view",
    "consolidate",
    "contract_multiplier",
    "detect_duplicate_accounts",
    "is_cash",
]

PROVIDER_PRIORITY: Mapping[Provider, int] = {
    Provider.SNAPTRADE: 3,
    Provider.PLAID: 2,
    Provider.MANUAL: 1,
}
DEFAULT_CASH_PROXIES: Mapping[str, str] = {"USD": "SGOV"}
CASH_PREFIX = "CUR:"


class MixedCurrencyError(BrokerlinkError):
    """Money in two currencies would have to be added without an FX rate."""

    status_code = 422
    code = "mixed_currency"


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """One stored position, as consolidation sees it. `account` is the canonical account key."""

    ticker: str
    quantity: Decimal
    currency: str
    kind: str
    account: str
    provider: Provider
    cost_basis: Decimal | None = None
    market_value: Decimal | None = None
    price: Decimal | None = None
    as_of: datetime | None = None
    ref: int | None = None  # the stored row's id, when there is one
    name: str | None = None  # the instrument's name, as the provider gave it


#: Shares per option contract: prices are per share, quantities in contracts, from every source.
OPTION_MULTIPLIER = Decimal(100)


def contract_multiplier(kind: str) -> Decimal:
    """What quantity × price is multiplied by to give a value: 100 for options, else 1."""
    return OPTION_MULTIPLIER if kind == InstrumentKind.OPTION else Decimal(1)


def is_cash(position: SourcePosition) -> bool:
    return position.kind == InstrumentKind.CASH or position.ticker.startswith(CASH_PREFIX)


def _cash_currency(position: SourcePosition) -> str:
    if position.ticker.startswith(CASH_PREFIX):
        return position.ticker[len(CASH_PREFIX) :].upper()
    return position.currency.upper()


@dataclass(frozen=True, slots=True)
class Superseded:
    """A position left out of the totals, and why; it is still stored and still listed."""

    position: SourcePosition
    reason: str
    winner: SourcePosition | None = None


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What duplicate detection compares: institution, mask and type, across connections."""

    key: str
    institution: str
    mask: str | None
    type: AccountType
    provider: Provider
    connection: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class DuplicateAccount:
    winner: AccountRef
    loser: AccountRef
    reason: str
    by_user: bool = False  # the winner is the user's choice, not the provider priority


def _norm(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def detect_duplicate_accounts(
    accounts: Iterable[AccountRef], *, prefer: Mapping[str, str] | None = None
) -> list[DuplicateAccount]:
    """Accounts seen through more than one connection (same institution, mask and type).

    The winner is the user's choice when `prefer` maps the group's loser or winner key to the
    account key to keep, else the higher provider priority, else the first seen. Accounts
    without a mask are never matched: a guess would hide a real account.
    """
    prefer = prefer or {}
    groups: dict[tuple[str, str, AccountType], list[AccountRef]] = {}
    for account in accounts:
        if not account.mask:
            continue
        groups.setdefault((_norm(account.institution), account.mask, account.type), []).append(
            account
        )
    duplicates: list[DuplicateAccount] = []
    for members in groups.values():
        if len({m.connection for m in members}) < 2:
            continue
        chosen = next((prefer[m.key] for m in members if m.key in prefer), None)
        by_key = {m.key: m for m in members}
        if chosen in by_key:
            winner, why = by_key[chosen], "kept by the user's choice"
        else:
            winner = max(members, key=lambda m: PROVIDER_PRIORITY[m.provider])
            why = f"kept the {winner.provider.value} connection (higher provider priority)"
        for member in members:
            if member is not winner and member.connection != winner.connection:
                duplicates.append(
                    DuplicateAccount(
                        winner=winner,
                        loser=member,
                        reason=(
                            f"{member.label or member.key} ({member.provider.value}) is the same "
                            f"account as {winner.label or winner.key} ({winner.provider.value}); "
                            f"{why}"
                        ),
                        by_user=chosen in by_key,
                    )
                )
    return duplicates


@dataclass
class ConsolidatedPortfolio:
    """The positions that count, cash per currency, and everything left out with its reason."""

    securities: list[SourcePosition] = field(default_factory=list)
    cash: dict[str, Decimal] = field(default_factory=dict)
    cash_positions: list[SourcePosition] = field(default_factory=list)
    superseded: list[Superseded] = field(default_factory=list)

    @property
    def counted(self) -> list[SourcePosition]:
        return [*self.securities, *self.cash_positions]

    @property
    def providers(self) -> set[Provider]:
        return {p.provider for p in self.counted}

    @property
    def last_updated(self) -> datetime | None:
        stamps = [p.as_of for p in self.counted if p.as_of is not None]
        return max(stamps) if stamps else None


def consolidate(
    positions: Iterable[SourcePosition],
    *,
    duplicates: Iterable[DuplicateAccount] = (),
) -> ConsolidatedPortfolio:
    """Apply rules 1–4. Every input position ends up counted or superseded, never dropped."""
    losers = {d.loser.key: d for d in duplicates}
    result = ConsolidatedPortfolio()
    # (account, ticker) -> provider -> positions from that provider
    slots: dict[tuple[str, str], dict[Provider, list[SourcePosition]]] = {}
    for position in positions:
        duplicate = losers.get(position.account)
        if duplicate is not None:
            result.superseded.append(Superseded(position, duplicate.reason))
            continue
        ticker = (
            f"{CASH_PREFIX}{_cash_currency(position)}" if is_cash(position) else position.ticker
        )
        slots.setdefault((position.account, ticker), {}).setdefault(position.provider, []).append(
            position
        )
    for by_provider in slots.values():
        best = max(by_provider, key=PROVIDER_PRIORITY.__getitem__)
        kept = by_provider[best]
        for provider, rows in by_provider.items():
            if provider is best:
                continue
            for row in rows:
                result.superseded.append(
                    Superseded(
                        row,
                        f"{best.value} reports the same account's {row.ticker}; provider "
                        f"priority {best.value} > {provider.value}",
                        winner=kept[0],
                    )
                )
        for row in kept:
            if is_cash(row):
                currency = _cash_currency(row)
                result.cash[currency] = result.cash.get(currency, Decimal(0)) + row.quantity
                result.cash_positions.append(row)
            else:
                result.securities.append(row)
    return result


@dataclass
class AnalysisLine:
    """One ticker of the analysis input: shares summed over sources, metadata from the best."""

    ticker: str
    shares: Decimal
    currency: str
    type: str
    account_id: str
    cost_basis: Decimal | None
    provider: Provider
    sources: int = 1
    is_cash_proxy: bool = False

    def as_portfolio_data(self) -> dict[str, object]:
        return {
            "shares": self.shares,
            "currency": self.currency,
            "type": self.type,
            "account_id": self.account_id,
        }


def analysis_view(
    portfolio: ConsolidatedPortfolio,
    *,
    cash_proxies: Mapping[str, str] = DEFAULT_CASH_PROXIES,
    fx_rates: Mapping[tuple[str, str], Decimal] | None = None,
) -> dict[str, AnalysisLine]:
    """Rule 5: ticker → line. Cash becomes its currency's proxy ticker (unmapped: `CUR:<ISO>`).

    `fx_rates[(from, to)]` states a rate; without one, two currencies of cash that land on the
    same proxy raise `MixedCurrencyError` instead of being added.
    """
    lines: dict[str, AnalysisLine] = {}
    best: dict[str, int] = {}
    for row in portfolio.securities:
        rank = PROVIDER_PRIORITY[row.provider]
        line = lines.get(row.ticker)
        if line is None:
            lines[row.ticker] = AnalysisLine(
                row.ticker,
                row.quantity,
                row.currency,
                row.kind,
                row.account,
                row.cost_basis,
                row.provider,
            )
            best[row.ticker] = rank
            continue
        line.shares += row.quantity
        line.sources += 1
        if rank > best[row.ticker]:
            best[row.ticker] = rank
            line.account_id, line.cost_basis, line.provider = (
                row.account,
                row.cost_basis,
                row.provider,
            )
            line.currency, line.type = row.currency, row.kind
    # A proxy's own currency is the first that maps to it in `cash_proxies`; others convert to it.
    order = [c for c in cash_proxies if c in portfolio.cash]
    order += sorted(c for c in portfolio.cash if c not in cash_proxies)
    for currency in order:
        amount = portfolio.cash[currency]
        ticker = cash_proxies.get(currency, f"{CASH_PREFIX}{currency}")
        existing = lines.get(ticker)
        if existing is None:
            source = next(p for p in portfolio.cash_positions if _cash_currency(p) == currency)
            lines[ticker] = AnalysisLine(
                ticker,
                amount,
                currency,
                InstrumentKind.CASH.value,
                source.account,
                None,
                source.provider,
                sources=sum(1 for p in portfolio.cash_positions if _cash_currency(p) == currency),
                is_cash_proxy=ticker != f"{CASH_PREFIX}{currency}",
            )
            continue
        if existing.currency == currency:
            existing.shares += amount
            continue
        rate = (fx_rates or {}).get((currency, existing.currency))
        if rate is None:
            raise MixedCurrencyError(
                f"Cash in {currency} and {existing.currency} both map to {ticker}; "
                f"state an FX rate {currency}->{existing.currency} to combine them."
            )
        existing.shares += amount * rate
    return lines
