"""What the `/operator` page shows, shaped from the summary: charts drawn by `web.charts` (as the
portfolio's are), figures in words, and a sentence for each empty section."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup

from brokerlink.operator.schemas import (
    OperatorSummary,
    RefreshDayOut,
    StalenessOut,
    SuccessRateOut,
    WebhookLagOut,
)
from brokerlink.web import charts
from brokerlink.web.view import money, provider_label

__all__ = ["OperatorPage", "duration", "operator_page", "rate"]

_WINDOW_WORDS = {"1h": "1 h", "24h": "24 h"}
_PROVIDER_COLOURS = {"snaptrade": charts.PALETTE[0], "plaid": charts.PALETTE[1]}


def duration(seconds: float | None) -> str:
    """`45 s`, `12 min`, `3.5 h`, `2.1 d`; an en dash when unknown."""
    if seconds is None:
        return "–"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def rate(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


@dataclass(frozen=True)
class Figure:
    """A chart, or the plain words saying why there is none."""

    title: str
    svg: Markup | None
    empty: str


@dataclass(frozen=True)
class OperatorPage:
    summary: OperatorSummary
    success: Figure
    quiet_last_hour: bool
    staleness: Figure
    refreshes: Figure
    cost: Figure
    lag: Figure
    cost_currency: str


def _colour(provider: str) -> str:
    return _PROVIDER_COLOURS.get(provider, charts.PALETTE[2])


def _success(rows: list[SuccessRateOut]) -> Figure:
    title = "Success rate by provider"
    if not rows:
        return Figure(title, None, "No provider calls in the last 24 hours.")
    parts = [
        charts.Part(
            f"{provider_label(r.provider)} {_WINDOW_WORDS[r.window]}",
            Decimal(r.ok),
            Decimal(r.ok) / Decimal(r.calls),
        )
        for r in rows
    ]
    svg = charts.columns(
        parts,
        title=title,
        values=[rate(r.rate) for r in rows],
        full=Decimal(1),
        colours=[_colour(r.provider) for r in rows],
    )
    return Figure(title, svg, "")


def _staleness(rows: list[StalenessOut]) -> Figure:
    title = "Staleness per provider"
    timed = [r for r in rows if r.worst_seconds is not None]
    if not timed:
        return Figure(title, None, "No synced provider accounts yet.")
    parts: list[charts.Part] = []
    values: list[str] = []
    colours: list[str] = []
    for r in timed:
        for word, seconds in (("avg", r.average_seconds), ("worst", r.worst_seconds)):
            parts.append(
                charts.Part(
                    f"{provider_label(r.provider)} {word}",
                    Decimal(0),
                    Decimal(str(seconds or 0)),
                )
            )
            values.append(duration(seconds))
            colours.append(_colour(r.provider))
    return Figure(title, charts.columns(parts, title=title, values=values, colours=colours), "")


def _day(day: RefreshDayOut) -> str:
    return f"{day.day.day} {day.day:%b}"


def _refreshes(days: list[RefreshDayOut]) -> Figure:
    title = "Refreshes per day"
    if not any(d.refreshes for d in days):
        return Figure(title, None, "No refreshes in the last 14 days.")
    parts = [charts.Part(_day(d), Decimal(d.refreshes), Decimal(d.refreshes)) for d in days]
    svg = charts.columns(
        parts,
        title=title,
        values=[str(d.refreshes) for d in days],
        colours=[charts.PALETTE[0]] * len(days),
    )
    return Figure(title, svg, "")


def _currency(days: list[RefreshDayOut]) -> str:
    found = sorted({c for d in days for c in d.cost})
    return "USD" if not found or "USD" in found else found[0]


def _cost(days: list[RefreshDayOut], currency: str) -> Figure:
    title = f"Refresh cost per day ({currency})"
    amounts = [d.cost.get(currency, Decimal(0)) for d in days]
    if not any(amounts):
        return Figure(title, None, "Nothing billed in the last 14 days.")
    parts = [charts.Part(_day(d), a, a) for d, a in zip(days, amounts, strict=True)]
    svg = charts.columns(
        parts,
        title=title,
        values=[money(a, currency) for a in amounts],
        colours=[charts.PALETTE[2]] * len(days),
    )
    return Figure(title, svg, "")


def _lag(rows: list[WebhookLagOut]) -> Figure:
    title = "Webhook lag (last 24 h)"
    if not rows:
        return Figure(title, None, "No webhooks received in the last 24 hours.")
    parts: list[charts.Part] = []
    values: list[str] = []
    colours: list[str] = []
    for r in rows:
        for word, seconds in (("p50", r.p50_seconds), ("worst", r.worst_seconds)):
            parts.append(
                charts.Part(
                    f"{provider_label(r.provider)} {word}", Decimal(0), Decimal(str(seconds))
                )
            )
            values.append(duration(seconds))
            colours.append(_colour(r.provider))
    return Figure(title, charts.columns(parts, title=title, values=values, colours=colours), "")


def operator_page(summary: OperatorSummary) -> OperatorPage:
    currency = _currency(summary.refreshes)
    return OperatorPage(
        summary=summary,
        success=_success(summary.success_rates),
        quiet_last_hour=not any(r.window == "1h" for r in summary.success_rates),
        staleness=_staleness(summary.staleness),
        refreshes=_refreshes(summary.refreshes),
        cost=_cost(summary.refreshes, currency),
        lag=_lag(summary.webhook_lag),
        cost_currency=currency,
    )
