"""Charts drawn on the server as SVG: donuts, horizontal bars and columns, no JS library.

Every chart is an `<svg role="img">` with a `<title>` and a `<desc>` listing each part and its
share, so a screen reader gets the numbers; the page shows the same parts as an HTML legend
(`legend()`), with the colours the chart uses. Text is escaped (`markupsafe`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from markupsafe import Markup, escape

__all__ = ["PALETTE", "Part", "bars", "color", "columns", "donut", "legend"]

# Colour-blind-friendly (Okabe–Ito, reordered for contrast between neighbours).
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#555")


@dataclass(frozen=True)
class Part:
    """One slice or bar: what it is, how much, and its share of the whole (0–1)."""

    label: str
    value: Decimal
    weight: Decimal


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def _pct(weight: Decimal) -> str:
    return f"{weight * 100:.1f}%"


def _described(title: str, parts: Sequence[Part]) -> str:
    listed = "; ".join(f"{p.label}: {_pct(p.weight)}" for p in parts) or "nothing to show"
    return f"<title>{escape(title)}</title><desc>{escape(listed)}</desc>"


def _point(cx: float, cy: float, r: float, turn: float) -> tuple[float, float]:
    # turn 0 is twelve o'clock, growing clockwise.
    angle = 2 * math.pi * turn - math.pi / 2
    return cx + r * math.cos(angle), cy + r * math.sin(angle)


def _arc(start: float, end: float, outer: float, inner: float, c: float) -> str:
    large = 1 if end - start > 0.5 else 0
    x0, y0 = _point(c, c, outer, start)
    x1, y1 = _point(c, c, outer, end)
    x2, y2 = _point(c, c, inner, end)
    x3, y3 = _point(c, c, inner, start)
    return (
        f"M{x0:.2f} {y0:.2f}A{outer} {outer} 0 {large} 1 {x1:.2f} {y1:.2f}"
        f"L{x2:.2f} {y2:.2f}A{inner} {inner} 0 {large} 0 {x3:.2f} {y3:.2f}Z"
    )


def donut(parts: Sequence[Part], *, title: str, center: str = "", size: int = 160) -> Markup:
    """A donut of `parts` (their weights), with `center` written in the hole."""
    c, outer, inner = size / 2, size / 2 - 2, size / 2 - 28
    shapes: list[str] = []
    total = sum((max(p.weight, Decimal(0)) for p in parts), Decimal(0))
    if total <= 0:
        shapes.append(
            f'<circle cx="{c}" cy="{c}" r="{(outer + inner) / 2}" fill="none" '
            f'stroke="#ddd" stroke-width="{outer - inner}"/>'
        )
    else:
        start = 0.0
        for index, part in enumerate(parts):
            share = float(max(part.weight, Decimal(0)) / total)
            if share <= 0:
                continue
            label = escape(f"{part.label}: {_pct(part.weight)}")
            if share >= 0.9999:
                shapes.append(
                    f'<circle cx="{c}" cy="{c}" r="{(outer + inner) / 2}" fill="none" '
                    f'stroke="{color(index)}" stroke-width="{outer - inner}">'
                    f"<title>{label}</title></circle>"
                )
                break
            end = start + share
            shapes.append(
                f'<path d="{_arc(start, end, outer, inner, c)}" fill="{color(index)}" '
                f'stroke="#fff" stroke-width="1"><title>{label}</title></path>'
            )
            start = end
    if center:
        shapes.append(
            f'<text x="{c}" y="{c}" text-anchor="middle" dominant-baseline="central" '
            f'class="chart-center">{escape(center)}</text>'
        )
    return Markup(
        f'<svg class="chart donut" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" xmlns="http://www.w3.org/2000/svg">{_described(title, parts)}'
        f"{''.join(shapes)}</svg>"
    )


# Characters of 11px chart text per SVG unit (a generous average: digits are ~6.1 wide).
_CHAR_W = 6.4


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"


def _wrap(label: str, limit: int, lines: int = 2) -> list[str]:
    """`label` in at most `lines` lines of `limit` characters, broken at spaces; only what
    still does not fit is shortened (the full label stays the row's tooltip)."""
    out: list[str] = []
    rest = label.split()
    while rest and len(out) < lines:
        line = rest.pop(0)
        while rest and len(line) + 1 + len(rest[0]) <= limit:
            line += " " + rest.pop(0)
        out.append(line)
    if rest:
        out[-1] = _short(f"{out[-1]} {' '.join(rest)}", limit)
    return [_short(line, limit) for line in out] or [""]


def bars(
    parts: Sequence[Part], *, title: str, values: Sequence[str] | None = None, width: int = 320
) -> Markup:
    """Horizontal bars, one row per part: the label above its bar (wrapped onto two lines when
    long), `values` and the share at the bar's end. Bars are scaled to the largest part, and
    leave room for the longest value so no text runs past the chart's edge."""
    line_h, bar_h, pad = 14, 12, 4
    inner = width - 2 * pad
    shown = [
        f"{values[i]} · {_pct(p.weight)}" if values is not None else _pct(p.weight)
        for i, p in enumerate(parts)
    ]
    value_w = max((len(t) for t in shown), default=0) * _CHAR_W + 6
    largest = max((p.weight for p in parts), default=Decimal(0))
    limit = int(inner / _CHAR_W)
    rows: list[str] = []
    y = 0
    for index, part in enumerate(parts):
        share = float(part.weight / largest) if largest > 0 else 0.0
        length = max(2.0, (inner - value_w) * share)
        lines = _wrap(part.label, limit)
        text = "".join(
            f'<tspan x="{pad}" dy="{0 if n == 0 else line_h}">{escape(line)}</tspan>'
            for n, line in enumerate(lines)
        )
        bar_y = y + line_h * len(lines) + 2
        rows.append(
            f"<g><title>{escape(f'{part.label}: {shown[index]}')}</title>"
            f'<text x="{pad}" y="{y + 11}" class="chart-label">{text}</text>'
            f'<rect x="{pad}" y="{bar_y}" width="{length:.1f}" height="{bar_h}" rx="2" '
            f'fill="{color(index)}"/>'
            f'<text x="{pad + length + 6:.1f}" y="{bar_y + 10}" class="chart-value">'
            f"{escape(shown[index])}</text></g>"
        )
        y = bar_y + bar_h + 8
    if not parts:
        rows.append(f'<text x="{pad}" y="20" class="chart-label">Nothing to show</text>')
    height = max(y, 34)
    return Markup(
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"{_described(title, parts)}{''.join(rows)}</svg>"
    )


def legend(parts: Sequence[Part], values: Sequence[str]) -> Markup:
    """The parts as an HTML list with the chart's colours, for reading (and phones)."""
    items = "".join(
        f'<li><span class="swatch" style="background:{color(i)}" aria-hidden="true"></span>'
        f'<span class="legend-label">{escape(p.label)}</span> '
        f'<span class="legend-value">{escape(values[i])} · {_pct(p.weight)}</span></li>'
        for i, p in enumerate(parts)
    )
    return Markup(f'<ul class="legend">{items}</ul>')


def columns(
    parts: Sequence[Part],
    *,
    title: str,
    values: Sequence[str],
    full: Decimal | None = None,
    colours: Sequence[str] | None = None,
    height: int = 150,
) -> Markup:
    """Vertical columns in order (a series: one per day, one per provider and window), each
    `weight` against `full` (the largest weight when None); `values` are written above the
    columns and the labels below. Unlike `bars`, no share of a whole is shown: a column's
    value is the figure itself. Columns are as wide as their longest label or value; their
    colours are `colours` (one per part), else the palette's in turn."""
    label_h, value_h, pad = 16, 14, 4
    longest = max((len(t) for t in (*values, *(p.label for p in parts))), default=0)
    slot = max(30.0, longest * _CHAR_W + 8)
    width = max(len(parts) * slot + 2 * pad, 120)
    top = height - label_h
    scale = full if full is not None else max((p.weight for p in parts), default=Decimal(0))
    shapes = [
        f'<line x1="{pad}" y1="{top}" x2="{width - pad:.1f}" y2="{top}" stroke="#ccc" '
        'stroke-width="1"/>'
    ]
    for index, part in enumerate(parts):
        share = min(float(part.weight / scale), 1.0) if scale > 0 else 0.0
        x = pad + index * slot
        middle = x + slot / 2
        label = (
            f'<text x="{middle:.1f}" y="{height - 3}" text-anchor="middle" class="chart-label">'
            f"{escape(part.label)}</text>"
        )
        if share <= 0:
            # Nothing to draw: the baseline and the label say it (the value is in the desc).
            shapes.append(
                f"<g><title>{escape(f'{part.label}: {values[index]}')}</title>{label}</g>"
            )
            continue
        tall = max((top - value_h - pad) * share, 1.0)
        bar_w = min(slot - 8, 28.0)
        fill = colours[index] if colours else color(index)
        shapes.append(
            f"<g><title>{escape(f'{part.label}: {values[index]}')}</title>"
            f'<rect x="{middle - bar_w / 2:.1f}" y="{top - tall:.1f}" width="{bar_w:.1f}" '
            f'height="{tall:.1f}" rx="2" fill="{fill}"/>'
            f'<text x="{middle:.1f}" y="{top - tall - 3:.1f}" text-anchor="middle" '
            f'class="chart-value">{escape(values[index])}</text>{label}</g>'
        )
    if not parts:
        shapes.append(f'<text x="{pad}" y="20" class="chart-label">Nothing to show</text>')
    listed = "; ".join(f"{p.label}: {v}" for p, v in zip(parts, values, strict=True))
    return Markup(
        f'<svg class="chart columns" viewBox="0 0 {width:.1f} {height}" width="{width:.0f}" '
        f'height="{height}" role="img" '
        f'preserveAspectRatio="xMinYMin meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(listed or 'nothing to show')}</desc>"
        f"{''.join(shapes)}</svg>"
    )
