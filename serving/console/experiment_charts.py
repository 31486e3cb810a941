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
_PAD_L, _PAD_R, _ROW, _TOP, _BOTTOM = 200, 32, 26, 12, 40
_FIXED, _SEQ = "#1f6f8b", "#edae49"


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
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if not rows:
        parts.append(
            f'<text x="{_W / 2}" y="{height / 2}" text-anchor="middle" fill="#444">'
            "no metric has a relative effect in this window</text></svg>"
        )
        return Markup("".join(parts))
    ends = [0.0] + [v for _, _, lo, hi, seq in rows for v in (lo, hi, *(seq or ()))]
    lo, hi = min(ends), max(ends)
    pad = (hi - lo) * 0.05 or 0.05
    lo, hi = lo - pad, hi + pad
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
        parts.append(
            f'<text x="{_PAD_L - 8}" y="{_num(y + 4)}" text-anchor="end" font-size="11" '
            f'fill="#222">{escape(label)}</text>'
            f'<line class="ci" x1="{_num(kx * r_lo + bx)}" x2="{_num(kx * r_hi + bx)}" '
            f'y1="{_num(y)}" y2="{_num(y)}" stroke="{_FIXED}" stroke-width="4">'
            f"<title>{escape(tip)}</title></line>"
        )
        if seq is not None:
            parts.append(
                f'<line class="seq" x1="{_num(kx * seq[0] + bx)}" x2="{_num(kx * seq[1] + bx)}" '
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
