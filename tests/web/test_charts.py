"""Server-drawn SVG charts and the page's formatting helpers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

from brokerlink.web import charts, view


def _parts(*weights: str) -> list[charts.Part]:
    return [charts.Part(f"part {i}", Decimal(w) * 100, Decimal(w)) for i, w in enumerate(weights)]


class TestDonut:
    def test_one_path_per_part_with_title_and_description(self) -> None:
        svg = str(charts.donut(_parts("0.5", "0.3", "0.2"), title="By type", center="$100.00"))
        assert svg.startswith("<svg")
        assert 'role="img"' in svg
        assert svg.count("<path") == 3
        assert "<title>By type</title>" in svg
        assert "<desc>part 0: 50.0%; part 1: 30.0%; part 2: 20.0%</desc>" in svg
        assert "$100.00" in svg

    def test_a_single_part_is_a_full_ring(self) -> None:
        svg = str(charts.donut(_parts("1"), title="All"))
        assert "<path" not in svg
        assert svg.count("<circle") == 1

    def test_nothing_is_a_grey_ring(self) -> None:
        svg = str(charts.donut([], title="Empty"))
        assert 'stroke="#ddd"' in svg
        assert "nothing to show" in svg

    def test_labels_are_escaped(self) -> None:
        part = charts.Part("<script>x</script>", Decimal(1), Decimal(1))
        svg = str(charts.donut([part], title="<b>t</b>", center="<i>"))
        for raw in ("<script>", "<b>", "<i>"):
            assert raw not in svg
        assert "&lt;script&gt;" in svg


class TestBars:
    def test_bars_scale_to_the_largest(self) -> None:
        svg = str(charts.bars(_parts("0.6", "0.3"), title="By account", values=["$60", "$30"]))
        widths = [float(w) for w in re.findall(r'<rect[^>]*width="([\d.]+)"', svg)]
        assert widths[0] == 2 * widths[1]
        assert "$60 · 60.0%" in svg

    def test_long_labels_wrap_onto_a_second_line_whole(self) -> None:
        label = "Charles Schwab · Schwab Individual Brokerage With A Very Long Name ••2207"
        svg = str(charts.bars([charts.Part(label, Decimal(1), Decimal(1))], title="t"))
        assert f"<title>{label}: 100.0%</title>" in svg
        lines = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
        assert len(lines) == 2
        assert " ".join(lines) == label  # every word shown, nothing cut

    def test_only_a_label_longer_than_two_lines_is_shortened(self) -> None:
        label = " ".join(["Brokerage"] * 20)
        svg = str(charts.bars([charts.Part(label, Decimal(1), Decimal(1))], title="t"))
        assert svg.count("<tspan") == 2
        assert "…</tspan>" in svg

    def test_the_largest_value_ends_inside_the_chart(self) -> None:
        values = ["$1,234,567,890.12", "$1.00"]
        svg = str(charts.bars(_parts("0.9999", "0.0001"), title="t", values=values, width=320))
        starts = re.findall(r'<text x="([\d.]+)"[^>]*class="chart-value"', svg)
        text = f"{values[0]} · 100.0%"
        # 6.1 units per character of 11px text (digits): the value's right end is inside.
        assert float(starts[0]) + len(text) * 6.1 <= 320

    def test_empty(self) -> None:
        assert "Nothing to show" in str(charts.bars([], title="t"))


class TestFormatting:
    def test_money(self) -> None:
        assert view.money(Decimal("35799.55"), "USD") == "$35,799.55"
        assert view.money(Decimal("-3"), "EUR") == "-€3.00"
        assert view.money(Decimal("12"), "CAD") == "12.00 CAD"
        assert view.money(None) == "–"

    def test_quantity(self) -> None:
        assert view.quantity(Decimal("150.00000000")) == "150"
        assert view.quantity(Decimal("3.25")) == "3.25"
        assert view.quantity(Decimal("1000")) == "1,000"
        assert view.quantity(Decimal("0")) == "0"

    def test_when(self) -> None:
        moment = datetime(2026, 11, 29, 9, 5, tzinfo=UTC)
        assert view.when(moment) == "29 Nov 2026, 09:05 UTC"
        assert view.when(None) == "never"
        assert view.iso(moment) == "2026-11-29T09:05:00Z"

    def test_labels(self) -> None:
        assert view.provider_label("snaptrade") == "SnapTrade"
        assert view.provider_label("plaid") == "Plaid"
        assert view.provider_label("manual") == "Manual"
        assert view.type_label("mutual_fund") == "Mutual fund"
        assert view.type_label("etf") == "ETF"


class TestCashChart:
    def test_one_currency_is_a_figure_not_a_chart(self) -> None:
        assert view._cash_chart({"USD": Decimal("10")}) == []

    def test_two_currencies_are_compared(self) -> None:
        [chart] = view._cash_chart({"USD": Decimal("30"), "EUR": Decimal("10")})
        assert chart.title == "Cash per currency"
        assert "EUR: 25.0%; USD: 75.0%" in str(chart.svg)
