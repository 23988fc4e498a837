"""The page's view model and the columns chart it draws (no store, no browser)."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from brokerlink.operator.page import duration, operator_page
from brokerlink.operator.schemas import (
    MissingWebhooksOut,
    OperatorSummary,
    RefreshDayOut,
    SuccessRateOut,
)
from brokerlink.web import charts

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def _summary(**changes) -> OperatorSummary:
    base = {
        "generated_at": NOW,
        "success_rates": [],
        "staleness": [],
        "refreshes": [
            RefreshDayOut(
                day=date(2026, 11, 19) + timedelta(days=n), refreshes=0, by_provider={}, cost={}
            )
            for n in range(14)
        ],
        "broken_connections": [],
        "recent_errors": [],
        "webhook_lag": [],
        "missing_webhooks": MissingWebhooksOut(threshold_hours=12, count=0, accounts=[]),
    }
    return OperatorSummary(**{**base, **changes})


class TestColumns:
    def test_one_column_per_part_scaled_to_full_with_values_and_labels(self):
        parts = [
            charts.Part("SnapTrade 1 h", Decimal(3), Decimal("0.75")),
            charts.Part("Plaid 1 h", Decimal(1), Decimal(1)),
        ]
        svg = str(charts.columns(parts, title="Success", values=["75.0%", "100.0%"], full=1))
        assert svg.count("<rect") == 2
        assert "<desc>SnapTrade 1 h: 75.0%; Plaid 1 h: 100.0%</desc>" in svg
        heights = [float(h) for h in re.findall(r'height="([\d.]+)" rx', svg)]
        assert heights[0] / heights[1] == 0.75

    def test_labels_are_escaped_and_nothing_says_so(self):
        part = charts.Part("<b>x</b>", Decimal(1), Decimal(1))
        assert "<b>" not in str(charts.columns([part], title="t", values=["<i>"]))
        assert "Nothing to show" in str(charts.columns([], title="t", values=[]))


class TestOperatorPage:
    def test_empty_sections_say_so_in_words(self):
        page = operator_page(_summary())
        assert page.success.svg is None
        assert page.success.empty == "No provider calls in the last 24 hours."
        assert page.refreshes.empty == "No refreshes in the last 14 days."
        assert page.cost.empty == "Nothing billed in the last 14 days."
        assert page.lag.empty == "No webhooks received in the last 24 hours."
        assert page.staleness.empty == "No synced provider accounts yet."

    def test_calls_only_older_than_an_hour_say_the_last_hour_was_quiet(self):
        rates = [SuccessRateOut(provider="plaid", window="24h", calls=2, ok=1, rate=0.5)]
        page = operator_page(_summary(success_rates=rates))
        assert page.success.svg is not None
        assert "50.0%" in str(page.success.svg)
        assert page.quiet_last_hour is True

    def test_cost_per_day_is_drawn_in_money(self):
        days = _summary().refreshes
        days[-1] = RefreshDayOut(
            day=days[-1].day, refreshes=3, by_provider={"plaid": 3}, cost={"USD": Decimal("0.36")}
        )
        page = operator_page(_summary(refreshes=days))
        assert "$0.36" in str(page.cost.svg)
        assert "2 Dec: 3" in str(page.refreshes.svg)


class TestDuration:
    def test_words_for_seconds_minutes_hours_days(self):
        assert [duration(s) for s in (None, 45, 720, 3.5 * 3600, 3 * 86400)] == [
            "–",
            "45 s",
            "12 min",
            "3.5 h",
            "3.0 d",
        ]
