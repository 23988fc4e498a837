"""What the templates show, shaped from the services' read models (no I/O here).

Formatting (money, quantities, shares, times, provider and type names) and the view models of
the portfolio page: its charts and the account labels of each holding's sources.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markupsafe import Markup

from brokerlink.accounts.schemas import AccountOut, ConnectionOut
from brokerlink.domain.enums import Provider
from brokerlink.policies.cost_guard import REFRESH_OPERATION, CostPolicy
from brokerlink.portfolio.schemas import PortfolioOut, Slice
from brokerlink.routing.coverage import CoverageMap
from brokerlink.web import charts

__all__ = [
    "ChartView",
    "PortfolioView",
    "RefreshView",
    "account_label",
    "money",
    "pct",
    "portfolio_view",
    "provider_label",
    "quantity",
    "refresh_view",
    "type_label",
    "when",
]

_PROVIDERS = {p.value: p.label for p in Provider}
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def provider_label(provider: str | None) -> str:
    if provider is None:
        return "Unavailable"
    return _PROVIDERS.get(provider, provider.title())


def type_label(kind: str | None) -> str:
    if not kind:
        return "Other"
    special = {"etf": "ETF", "cash": "Cash", "mutual_fund": "Mutual fund", "crypto": "Crypto"}
    return special.get(kind, kind.replace("_", " ").capitalize())


def money(value: Decimal | None, currency: str | None = "USD") -> str:
    """`$1,234.56`, `€9.00`, `1,234.56 CAD`; an en dash when unknown."""
    if value is None:
        return "–"
    code = (currency or "USD").upper()
    sign = "-" if value < 0 else ""
    amount = f"{abs(value):,.2f}"
    symbol = _SYMBOLS.get(code)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {code}"


def quantity(value: Decimal | None) -> str:
    """Shares without trailing zeros: `150`, `3.25`, `1,000`."""
    if value is None:
        return "–"
    text = f"{value:,.8f}".rstrip("0").rstrip(".")
    return text or "0"


def pct(weight: Decimal | None) -> str:
    return "–" if weight is None else f"{weight * 100:.1f}%"


def when(value: datetime | None) -> str:
    """`28 Nov 2026, 19:07 UTC` (what the page's script also writes)."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC").lstrip("0")


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def account_label(account: AccountOut) -> str:
    """`Charles Schwab · Schwab Individual Brokerage ••2207`."""
    name = account.name or account.type.capitalize()
    mask = f" ••{account.mask}" if account.mask else ""
    return f"{account.institution} · {name}{mask}"


@dataclass(frozen=True)
class RefreshView:
    """What a connection's Refresh button knows: the cost of a refresh and its window."""

    provider: str
    cost: Decimal
    window_hours: float
    next_allowed_at: datetime | None

    @property
    def blocked(self) -> bool:
        return self.next_allowed_at is not None


def refresh_view(
    connection: ConnectionOut, policy: CostPolicy, coverage: CoverageMap | None = None
) -> RefreshView | None:
    """None for connections nothing can refresh: manual entries, and institutions the coverage
    map says the provider never refreshes on demand."""
    try:
        provider = Provider(connection.provider)
    except ValueError:
        return None
    operation = REFRESH_OPERATION.get(provider)
    if operation is None:
        return None
    if coverage is not None and not coverage.refreshable_on_demand(connection.institution_slug):
        return None
    return RefreshView(
        provider=connection.provider,
        cost=policy.price(operation),
        window_hours=policy.refresh_interval(provider) / timedelta(hours=1),
        next_allowed_at=connection.next_refresh_allowed_at,
    )


@dataclass(frozen=True)
class ChartView:
    """One chart of one currency: the SVG and its legend."""

    title: str
    currency: str
    svg: Markup
    legend: Markup


@dataclass(frozen=True)
class SourceView:
    label: str
    provider: str
    quantity: str
    value: str


@dataclass(frozen=True)
class DuplicateSide:
    """One of the two connections an account is seen through."""

    account_id: int
    label: str
    provider: str
    connection: str  # `SnapTrade connection "Charles Schwab", linked 1 Dec 2026, 22:10 UTC`
    value: str


@dataclass(frozen=True)
class DuplicateView:
    kept: DuplicateSide
    dropped: DuplicateSide
    reason: str
    why: str  # in plain words: what makes them one account
    counted_because: str
    total_now: str
    total_after: str

    # The names the page's script and older templates read.
    @property
    def kept_id(self) -> int:
        return self.kept.account_id

    @property
    def dropped_id(self) -> int:
        return self.dropped.account_id


def _amounts(values: Mapping[str, Decimal]) -> str:
    return " + ".join(money(v, c) for c, v in sorted(values.items())) or money(Decimal(0))


def _same_account(account: AccountOut | None) -> str:
    if account is None or not account.mask:
        return "the same institution, account type and number"
    return f"the same institution, account type and number ending {account.mask}"


def _side(
    account_id: int, provider: str, value: Mapping[str, Decimal], accounts: Mapping[int, AccountOut]
) -> DuplicateSide:
    account = accounts.get(account_id)
    label = account_label(account) if account else f"Account {account_id}"
    name = provider_label(provider)
    if account is None:
        connection = f"{name} connection"
    else:
        connection = f'{name} connection "{account.institution}", linked {when(account.linked_at)}'
    return DuplicateSide(account_id, label, name, connection, _amounts(value))


@dataclass(frozen=True)
class PortfolioView:
    portfolio: PortfolioOut
    sources: Mapping[str, list[SourceView]]
    charts: Sequence[ChartView]
    duplicates: Sequence[DuplicateView]


def _by_currency(slices: Iterable[Slice]) -> dict[str, list[Slice]]:
    found: dict[str, list[Slice]] = defaultdict(list)
    for item in slices:
        found[item.currency].append(item)
    return found


def _charts(title: str, slices: Iterable[Slice], *, kind: str) -> list[ChartView]:
    out = []
    for currency, group in sorted(_by_currency(slices).items()):
        if kind == "type":
            names = [type_label(s.label) for s in group]
        elif kind == "provider":
            names = [provider_label(s.label) for s in group]
        else:
            names = [s.label for s in group]
        parts = [charts.Part(n, s.value, s.weight) for n, s in zip(names, group, strict=True)]
        values = [money(s.value, currency) for s in group]
        full = f"{title} ({currency})"
        if kind in ("type", "provider"):
            total = sum((s.value for s in group), Decimal(0))
            svg = charts.donut(parts, title=full, center=money(total, currency))
            out.append(ChartView(title, currency, svg, charts.legend(parts, values)))
        else:
            # Bars carry their own labels and values: no legend.
            svg = charts.bars(parts, title=full, values=values)
            out.append(ChartView(title, currency, svg, Markup("")))
    return out


def _cash_chart(cash: Mapping[str, Decimal]) -> list[ChartView]:
    # One currency's cash is already a figure of its own above the charts: a chart of one bar
    # would be an empty box.
    if len(cash) < 2:
        return []
    total = sum((v for v in cash.values() if v > 0), Decimal(0))
    items = sorted(cash.items())
    parts = [
        charts.Part(code, amount, (amount / total) if total > 0 else Decimal(0))
        for code, amount in items
    ]
    values = [money(amount, code) for code, amount in items]
    svg = charts.bars(parts, title="Cash per currency", values=values)
    return [ChartView("Cash per currency", "", svg, Markup(""))]


def portfolio_view(portfolio: PortfolioOut, accounts: Sequence[AccountOut]) -> PortfolioView:
    """The portfolio page: holdings' sources by account name, the charts, the duplicates."""
    labels = {a.id: account_label(a) for a in accounts}
    sources: dict[str, list[SourceView]] = {}
    for holding in portfolio.holdings:
        sources[f"{holding.ticker}:{holding.currency}"] = [
            SourceView(
                label=labels.get(s.account_id, f"Account {s.account_id}"),
                provider=provider_label(s.provider),
                quantity=quantity(s.quantity),
                value=money(s.market_value, holding.currency),
            )
            for s in holding.sources
        ]
    views = [
        *_charts("By asset type", portfolio.by_type, kind="type"),
        *_charts("By provider", portfolio.by_provider, kind="provider"),
        *_charts("By account", portfolio.by_account, kind="account"),
        *_cash_chart(portfolio.cash),
    ]
    by_id = {a.id: a for a in accounts}
    duplicates = [
        DuplicateView(
            kept=_side(d.kept_account_id, d.kept_provider, d.kept_value, by_id),
            dropped=_side(d.dropped_account_id, d.dropped_provider, d.dropped_value, by_id),
            reason=d.reason,
            why=_same_account(by_id.get(d.kept_account_id)),
            counted_because="your choice"
            if d.kept_by_user
            else f"{provider_label(d.kept_provider)} is preferred for this institution",
            total_now=_amounts(portfolio.totals),
            total_after=_amounts(d.totals_if_switched),
        )
        for d in portfolio.duplicates
    ]
    return PortfolioView(portfolio, sources, views, duplicates)
