"""Charts of the console, drawn as SVG on the server (no script, no inline style).

Every text placed in a chart is escaped here; the functions return :class:`markupsafe.Markup`
so that templates insert the drawing as is. Colours are presentation attributes, which the
console's Content-Security-Policy allows (``style`` attributes it would not).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

from markupsafe import Markup

_W, _H = 640, 240
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 12, 12, 36
_COLOURS = ("#1f6f8b", "#d1495b", "#edae49", "#66a182")


def _num(x: float) -> str:
    return f"{x:.1f}"


def _scale(lo: float, hi: float, a: float, b: float) -> tuple[float, float]:
    """Slope and offset mapping [lo, hi] to [a, b]."""
    span = hi - lo or 1.0
    k = (b - a) / span
    return k, a - k * lo


def _frame(title: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def _y_axis(lo: float, hi: float, ky: float, by: float, fmt: str = "{:.2f}") -> list[str]:
    out = []
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        y = ky * v + by
        out.append(
            f'<line x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{_num(y)}" y2="{_num(y)}" '
            'stroke="#ddd" stroke-width="1"/>'
            f'<text x="{_PAD_L - 6}" y="{_num(y + 4)}" text-anchor="end" font-size="11" '
            f'fill="#444">{escape(fmt.format(v))}</text>'
        )
    return out


def price_band_chart(
    labels: Sequence[str],
    prices: Sequence[float],
    floor: Sequence[float | None],
    ceiling: Sequence[float | None],
    title: str,
) -> Markup:
    """List price per epoch as a line, with the guardrail band (floor..ceiling) shaded.

    Parameters
    ----------
    labels:
        One label per epoch (oldest first); a few are written under the axis.
    prices:
        The list price of each epoch.
    floor, ceiling:
        The band of each epoch (``None`` where a side is unbounded).
    title:
        Accessible name of the chart.
    """
    parts = _frame(title)
    if not prices:
        parts.append(
            f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle" fill="#444">'
            "no price served in this window</text></svg>"
        )
        return Markup("".join(parts))
    values = [*prices, *(f for f in floor if f is not None), *(c for c in ceiling if c is not None)]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or max(hi * 0.05, 0.5)
    lo, hi = max(0.0, lo - pad), hi + pad
    n = len(prices)
    kx, bx = _scale(0, max(1, n - 1), _PAD_L, _W - _PAD_R)
    ky, by = _scale(lo, hi, _H - _PAD_B, _PAD_T)
    parts += _y_axis(lo, hi, ky, by)
    # The band: a polygon from the ceiling (left to right) back along the floor.
    top = [hi if c is None else c for c in ceiling]
    bottom = [lo if f is None else f for f in floor]
    if any(f is not None for f in floor) or any(c is not None for c in ceiling):
        pts = [f"{_num(kx * i + bx)},{_num(ky * v + by)}" for i, v in enumerate(top)]
        pts += [
            f"{_num(kx * i + bx)},{_num(ky * v + by)}" for i, v in reversed(list(enumerate(bottom)))
        ]
        parts.append(
            f'<polygon class="band" points="{" ".join(pts)}" fill="#1f6f8b" fill-opacity="0.12" '
            'stroke="#1f6f8b" stroke-opacity="0.4" stroke-dasharray="4 3"/>'
        )
    line = " ".join(f"{_num(kx * i + bx)},{_num(ky * p + by)}" for i, p in enumerate(prices))
    parts.append(
        f'<polyline class="price" points="{line}" fill="none" stroke="#d1495b" stroke-width="2"/>'
    )
    for i, p in enumerate(prices):
        parts.append(
            f'<circle cx="{_num(kx * i + bx)}" cy="{_num(ky * p + by)}" r="2.5" fill="#d1495b">'
            f"<title>{escape(labels[i])}: {p:.2f}</title></circle>"
        )
    step = max(1, math.ceil(n / 6))
    for i in range(0, n, step):
        parts.append(
            f'<text x="{_num(kx * i + bx)}" y="{_H - _PAD_B + 16}" text-anchor="middle" '
            f'font-size="10" fill="#444">{escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def grouped_bars(
    categories: Sequence[str], series: Mapping[str, Sequence[float]], title: str, unit: str = ""
) -> Markup:
    """Bars per category, one per series side by side, with a legend.

    Parameters
    ----------
    categories:
        The groups along the x axis.
    series:
        Series name -> one value per category.
    title:
        Accessible name of the chart.
    unit:
        Appended to values in tooltips.
    """
    parts = _frame(title)
    values = [v for vs in series.values() for v in vs]
    if not categories or not values:
        parts.append(
            f'<text x="{_W / 2}" y="{_H / 2}" text-anchor="middle" fill="#444">no quotes yet</text>'
            "</svg>"
        )
        return Markup("".join(parts))
    hi = max(values) * 1.1 or 1.0
    ky, by = _scale(0.0, hi, _H - _PAD_B, _PAD_T)
    parts += _y_axis(0.0, hi, ky, by, "{:.1f}")
    slot = (_W - _PAD_L - _PAD_R) / len(categories)
    width = slot * 0.8 / max(1, len(series))
    for ci, cat in enumerate(categories):
        x0 = _PAD_L + slot * ci + slot * 0.1
        for si, (name, vs) in enumerate(series.items()):
            v = vs[ci]
            y = ky * v + by
            parts.append(
                f'<rect x="{_num(x0 + si * width)}" y="{_num(y)}" width="{_num(width)}" '
                f'height="{_num(_H - _PAD_B - y)}" fill="{_COLOURS[si % len(_COLOURS)]}">'
                f"<title>{escape(cat)} · {escape(name)}: {v:.2f}{escape(unit)}</title></rect>"
            )
        parts.append(
            f'<text x="{_num(x0 + slot * 0.4)}" y="{_H - _PAD_B + 14}" text-anchor="middle" '
            f'font-size="10" fill="#444">{escape(cat)}</text>'
        )
    for si, name in enumerate(series):
        x = _PAD_L + 8 + si * 150
        parts.append(
            f'<rect x="{x}" y="{_H - 14}" width="10" height="10" '
            f'fill="{_COLOURS[si % len(_COLOURS)]}"/>'
            f'<text x="{x + 14}" y="{_H - 5}" font-size="11" fill="#222">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def histogram(bins: Sequence[tuple[float, float, int]], title: str) -> Markup:
    """Counts of price moves per bin of percentage change (outer bins open-ended)."""
    parts = _frame(title)
    hi = max((c for _, _, c in bins), default=0) or 1
    ky, by = _scale(0.0, hi * 1.1, _H - _PAD_B, _PAD_T)
    parts += _y_axis(0.0, hi * 1.1, ky, by, "{:.0f}")
    slot = (_W - _PAD_L - _PAD_R) / max(1, len(bins))
    for i, (lo, up, count) in enumerate(bins):
        label = (
            f"< {up:g}%"
            if math.isinf(lo)
            else f"≥ {lo:g}%"
            if math.isinf(up)
            else f"{lo:g}..{up:g}"
        )
        y = ky * count + by
        parts.append(
            f'<rect x="{_num(_PAD_L + slot * i + 2)}" y="{_num(y)}" width="{_num(slot - 4)}" '
            f'height="{_num(_H - _PAD_B - y)}" fill="#1f6f8b">'
            f"<title>{escape(label)}: {count}</title></rect>"
            f'<text x="{_num(_PAD_L + slot * (i + 0.5))}" y="{_H - _PAD_B + 14}" '
            f'text-anchor="middle" font-size="9" fill="#444">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
