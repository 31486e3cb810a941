"""The experiment readout's chart: each metric's relative effect with its intervals, as SVG.

Drawn on the server like :mod:`serving.console.charts` (labels escaped, colours as
presentation attributes, no script). Relative effects put metrics of different units
(a rate, a revenue, an order value) on one axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from markupsafe import Markup

from serving.console.charts import _num, _scale

_W = 640
_PAD_L, _PAD_R, _ROW, _TOP, _BOTTOM = 240, 32, 26, 12, 40
_FIXED, _SEQ = "#1f6f8b", "#edae49"


def _open(width: float, height: float, title: str, cls: str = "chart") -> list[str]:
    return [
        f'<svg class="{cls}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def _empty(parts: list[str], width: float, height: float, text: str) -> Markup:
    parts.append(
        f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#444">{text}</text>'
        "</svg>"
    )
    return Markup("".join(parts))


def _axis_range(values: list[float]) -> tuple[float, float]:
    """The axis over ``values`` and zero, padded by a tenth of the span on each side.

    Only the 95% intervals are passed in: a wider always-valid interval is clipped to the
    axis (its tooltip has the numbers), else a young experiment's would squash every bar.
    """
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = (hi - lo) * 0.1 or 0.05
    return lo - pad, hi + pad


_Row = tuple[str, float, float, float, tuple[float, float] | None]


def _relative_rows(metrics: Sequence[Mapping[str, Any]]) -> list[_Row]:
    """(label, relative, low, high, always-valid low/high) for each row with a relative effect."""
    out: list[_Row] = []
    for m in metrics:
        e = m.get("effect") or {}
        rel, lo, hi = e.get("relative"), e.get("rel_ci_low"), e.get("rel_ci_high")
        if rel is None or lo is None or hi is None:
            continue
        seq = None
        control = e.get("control")
        s_lo, s_hi = m.get("seq_ci_low"), m.get("seq_ci_high")
        if control and s_lo is not None and s_hi is not None:
            # The always-valid interval is on the absolute scale; divide by the control value.
            seq = (s_lo / control, s_hi / control)
        out.append((f"{m['label']} ({m['variant']})", rel, lo, hi, seq))
    return out


def effect_chart(metrics: Sequence[Mapping[str, Any]], title: str) -> Markup:
    """Relative effect per metric and variant: a dot, the 95% interval (thick) and the
    always-valid interval (thin, below), around a zero line.

    Parameters
    ----------
    metrics:
        The readout's metric rows (``Readout.to_dict()["metrics"]``); rows without a relative
        effect (no data, or a zero control value) are left out and counted in a caption.
    title:
        Accessible name of the chart.
    """
    rows = _relative_rows(metrics)
    height = _TOP + _BOTTOM + _ROW * max(1, len(rows))
    parts = _open(_W, height, title)
    if not rows:
        return _empty(parts, _W, height, "no metric has a relative effect in this window")
    lo, hi = _axis_range([v for _, _, r_lo, r_hi, _ in rows for v in (r_lo, r_hi)])
    kx, bx = _scale(lo, hi, _PAD_L, _W - _PAD_R)
    bottom = height - _BOTTOM
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        x = kx * v + bx
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_TOP}" y2="{bottom}" stroke="#ddd"/>'
            f'<text x="{_num(x)}" y="{bottom + 14}" text-anchor="middle" font-size="10" '
            f'fill="#444">{100 * v:+.1f}%</text>'
        )
    zero = kx * 0.0 + bx
    parts.append(
        f'<line class="zero" x1="{_num(zero)}" x2="{_num(zero)}" y1="{_TOP}" y2="{bottom}" '
        'stroke="#444" stroke-width="1"/>'
    )
    for i, (label, rel, r_lo, r_hi, seq) in enumerate(rows):
        y = _TOP + _ROW * i + _ROW / 2
        tip = f"{label}: {100 * rel:+.2f}% [{100 * r_lo:+.2f}%, {100 * r_hi:+.2f}%]"
        short = label if len(label) <= 34 else label[:33] + "…"
        parts.append(
            f'<text x="{_PAD_L - 8}" y="{_num(y + 4)}" text-anchor="end" font-size="11" '
            f'fill="#222">{escape(short)}<title>{escape(label)}</title></text>'
            f'<line class="ci" x1="{_num(kx * r_lo + bx)}" x2="{_num(kx * r_hi + bx)}" '
            f'y1="{_num(y)}" y2="{_num(y)}" stroke="{_FIXED}" stroke-width="4">'
            f"<title>{escape(tip)}</title></line>"
        )
        if seq is not None:
            s_lo, s_hi = max(seq[0], lo), min(seq[1], hi)
            parts.append(
                f'<line class="seq" x1="{_num(kx * s_lo + bx)}" x2="{_num(kx * s_hi + bx)}" '
                f'y1="{_num(y + 7)}" y2="{_num(y + 7)}" stroke="{_SEQ}" stroke-width="2">'
                f"<title>{escape(label)}: always-valid "
                f"[{100 * seq[0]:+.2f}%, {100 * seq[1]:+.2f}%]</title></line>"
            )
        parts.append(
            f'<circle cx="{_num(kx * rel + bx)}" cy="{_num(y)}" r="4" fill="#222">'
            f"<title>{escape(tip)}</title></circle>"
        )
    legend_y = height - 10
    parts.append(
        f'<rect x="{_PAD_L}" y="{legend_y - 9}" width="14" height="4" fill="{_FIXED}"/>'
        f'<text x="{_PAD_L + 18}" y="{legend_y}" font-size="11" fill="#222">95% interval</text>'
        f'<rect x="{_PAD_L + 120}" y="{legend_y - 8}" width="14" height="2" fill="{_SEQ}"/>'
        f'<text x="{_PAD_L + 138}" y="{legend_y}" font-size="11" fill="#222">'
        "always-valid interval</text>"
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def _band(
    xs: Sequence[float], lo: Sequence[float], hi: Sequence[float], colour: str, cls: str
) -> str:
    """An interval over the looks: a shaded polygon, or a bar when there is a single look."""
    if len(xs) == 1:
        return (
            f'<line class="{cls}" x1="{_num(xs[0])}" x2="{_num(xs[0])}" y1="{_num(lo[0])}" '
            f'y2="{_num(hi[0])}" stroke="{colour}" stroke-width="6" stroke-opacity="0.6"/>'
        )
    pts = [f"{_num(x)},{_num(y)}" for x, y in zip(xs, hi, strict=True)]
    pts += [f"{_num(x)},{_num(y)}" for x, y in reversed(list(zip(xs, lo, strict=True)))]
    return (
        f'<polygon class="{cls}" points="{" ".join(pts)}" fill="{colour}" '
        'fill-opacity="0.3" stroke="none"/>'
    )


def path_chart(points: Sequence[Mapping[str, Any]], title: str) -> Markup:
    """The absolute effect of one metric and variant at each daily look, with the 95%
    interval and the always-valid interval shaded behind it, around the zero line.

    Parameters
    ----------
    points:
        The readout's path points of one metric and variant (``to_dict()["path"]``), in look
        order; points with an undefined number are left out.
    title:
        Accessible name of the chart.
    """
    keys = ("absolute", "ci_low", "ci_high", "seq_ci_low", "seq_ci_high")
    pts = [p for p in points if all(p.get(k) is not None for k in keys)]
    w, h, pad_l, pad_b, top = 320, 160, 56, 28, 10
    parts = _open(w, h, title, "chart path")
    if not pts:
        return _empty(parts, w, h, "no look yet")
    lo, hi = _axis_range([float(p[k]) for p in pts for k in keys[:3]])
    n = len(pts)
    kx, bx = _scale(0, max(1, n - 1), pad_l + (0 if n > 1 else (w - pad_l) / 2), w - 12)
    ky, by = _scale(lo, hi, h - pad_b, top)
    for i in range(3):
        v = lo + (hi - lo) * i / 2
        y = ky * v + by
        parts.append(
            f'<text x="{pad_l - 4}" y="{_num(y + 4)}" text-anchor="end" font-size="10" '
            f'fill="#444">{escape(f"{v:.3g}")}</text>'
        )
    xs = [kx * i + bx for i in range(n)]
    parts.append(
        _band(xs, [ky * max(p["seq_ci_low"], lo) + by for p in pts],
              [ky * min(p["seq_ci_high"], hi) + by for p in pts], _SEQ, "seq")
        + _band(xs, [ky * p["ci_low"] + by for p in pts],
                [ky * p["ci_high"] + by for p in pts], _FIXED, "ci")
    )  # fmt: skip
    zero = ky * 0.0 + by
    parts.append(
        f'<line class="zero" x1="{pad_l}" x2="{w - 12}" y1="{_num(zero)}" y2="{_num(zero)}" '
        'stroke="#444" stroke-width="1"/>'
    )
    line = " ".join(
        f"{_num(x)},{_num(ky * p['absolute'] + by)}" for x, p in zip(xs, pts, strict=True)
    )
    parts.append(f'<polyline points="{line}" fill="none" stroke="#222" stroke-width="1.5"/>')
    for x, p in zip(xs, pts, strict=True):
        tip = (
            f"{p.get('at', '')}: {p['absolute']:.4g} [{p['ci_low']:.4g}, {p['ci_high']:.4g}], "
            f"always-valid [{p['seq_ci_low']:.4g}, {p['seq_ci_high']:.4g}], "
            f"{p.get('units', 0)} shoppers"
        )
        parts.append(
            f'<circle class="look" cx="{_num(x)}" cy="{_num(ky * p["absolute"] + by)}" r="3" '
            f'fill="#222"><title>{escape(tip)}</title></circle>'
        )
    parts.append(
        f'<text x="{pad_l}" y="{h - 8}" font-size="10" fill="#444">'
        f"{n} daily look{'s' if n != 1 else ''}</text></svg>"
    )
    return Markup("".join(parts))
