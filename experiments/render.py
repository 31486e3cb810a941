"""A readout as Markdown, JSON or HTML, with two plots (matplotlib PNG).

``effects.png``: per metric, each treatment's relative effect against the control with its
fixed-horizon and always-valid intervals. ``path.png``: per metric, the absolute effect at
each daily look with both intervals, so a reader sees how the estimate settled. Undefined
numbers print as "n/a" with the reason, never as NaN.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from experiments.readout import MetricRow, Readout

Format = Literal["md", "json", "html"]


@dataclass(frozen=True)
class ReportFiles:
    """What :func:`write_report` wrote."""

    report: Path
    effects_png: Path | None
    path_png: Path | None


def format_number(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}g}"


def format_percent(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:+.2f}%"


def format_interval(lo: float | None, hi: float | None, pct: bool = False) -> str:
    if lo is None or hi is None:
        return "n/a"
    f = format_percent if pct else format_number
    return f"[{f(lo)}, {f(hi)}]"


def variant_table(r: Readout) -> list[list[str]]:
    """Header and rows of the exposure-balance and guardrail table."""
    rows = [["variant", r.unit + "s", "share", "expected", "exposures", "p99 ms", "fallback"]]
    for v in r.variants:
        rows.append(
            [
                v.variant + (" (control)" if v.variant == r.control else ""),
                str(v.units),
                f"{v.share:.3f}",
                f"{v.expected_share:.3f}",
                str(v.exposures),
                format_number(v.p99_ms, 3),
                "n/a" if v.fallback_share is None else f"{v.fallback_share:.1%}",
            ]
        )
    return rows


def _metric_cells(m: MetricRow) -> list[str]:
    if m.effect is None:
        return [m.label, m.variant, "n/a", "n/a", m.note or "no data", "", "", "", "", ""]
    e, c = m.effect, m.cuped
    return [
        m.label,
        m.variant,
        format_number(m.control_value),
        format_number(m.value),
        f"{format_number(e.absolute)} {format_interval(e.ci_low, e.ci_high)}",
        f"{format_percent(e.relative)} {format_interval(e.rel_ci_low, e.rel_ci_high, pct=True)}",
        "n/a"
        if c is None
        else f"{format_number(c.absolute)} {format_interval(c.ci_low, c.ci_high)}",
        format_interval(m.seq_ci_low, m.seq_ci_high),
        format_number(m.seq_p_value, 3),
        format_number(m.p_holm, 3),
    ]


def metric_table(r: Readout) -> list[list[str]]:
    """Header and rows of the effects table."""
    head = [
        "metric", "variant", "control", "treatment", "effect (95% CI)", "relative (95% CI)",
        "CUPED effect (95% CI)", "always-valid CI", "seq. p", "Holm p",
    ]  # fmt: skip
    return [head] + [_metric_cells(m) for m in r.metrics]


def _md_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows[1:]]
    return "\n".join(out)


def _header(r: Readout) -> list[str]:
    srm = f"sample ratio: chi² = {r.srm.chi2:.3g}, p = {r.srm.p_value:.3g} -> " + (
        "MISMATCH" if r.srm.mismatch else "ok"
    )
    return [
        f"window: {r.since or 'start'} .. {r.until}; unit: {r.unit}; control: {r.control}",
        f"attribution window for shown items: {r.attribution_window_hours:g} h",
        srm,
        *r.notes,
    ]


def to_markdown(r: Readout) -> str:
    """The readout as a Markdown document."""
    lines = [f"# Experiment {r.experiment}", ""]
    lines += [f"- {h}" for h in _header(r)]
    lines += ["", "## Variants", "", _md_table(variant_table(r))]
    lines += ["", "## Effects against the control", "", _md_table(metric_table(r)), ""]
    return "\n".join(lines)


def to_html(r: Readout, images: list[str]) -> str:
    """The readout as a standalone HTML page (plots referenced by file name)."""

    def table(rows: list[list[str]]) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in rows[1:]
        )
        return f"<table><tr>{head}</tr>{body}</table>"

    items = "".join(f"<li>{html.escape(h)}</li>" for h in _header(r))
    pics = "".join(f'<p><img src="{html.escape(i)}" alt="{html.escape(i)}"></p>' for i in images)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Experiment {html.escape(r.experiment)}</title>"
        "<style>td,th{border:1px solid #ccc;padding:2px 6px}table{border-collapse:collapse}"
        "</style></head><body>"
        f"<h1>Experiment {html.escape(r.experiment)}</h1><ul>{items}</ul>"
        f"<h2>Variants</h2>{table(variant_table(r))}"
        f"<h2>Effects against the control</h2>{table(metric_table(r))}{pics}</body></html>"
    )


def plot_effects(r: Readout, out: Path) -> Path | None:
    """Relative effect with both intervals, one row per metric and variant."""
    rows = [m for m in r.metrics if m.effect is not None and m.effect.relative is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(rows)))
    for i, m in enumerate(rows):
        e = m.effect
        assert e is not None and e.rel_ci_low is not None and e.rel_ci_high is not None
        ax.plot([e.rel_ci_low, e.rel_ci_high], [i, i], color="tab:blue", lw=3)
        if m.seq_ci_low is not None and m.seq_ci_high is not None and e.control:
            lo, hi = m.seq_ci_low / e.control, m.seq_ci_high / e.control
            ax.plot([lo, hi], [i - 0.2, i - 0.2], color="tab:orange", lw=1.5)
        ax.plot([e.relative or 0.0], [i], "ko")
    ax.axvline(0.0, color="grey", lw=0.8)
    ax.set_yticks(range(len(rows)), [f"{m.metric} ({m.variant})" for m in rows])
    ax.set_xlabel("relative effect vs control (blue: 95% CI, orange: always-valid)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def plot_path(r: Readout, out: Path) -> Path | None:
    """Absolute effect at each look, with the fixed and always-valid intervals."""
    keys = list(dict.fromkeys((p.metric, p.variant) for p in r.path))
    if not keys:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.0 * len(keys)), squeeze=False)
    for ax, (metric, variant) in zip(axes[:, 0], keys, strict=True):
        pts = [p for p in r.path if p.metric == metric and p.variant == variant]
        x = list(range(1, len(pts) + 1))
        ax.fill_between(x, [p.seq_ci_low for p in pts], [p.seq_ci_high for p in pts],
                        color="tab:orange", alpha=0.25, label="always-valid")  # fmt: skip
        ax.fill_between(x, [p.ci_low for p in pts], [p.ci_high for p in pts],
                        color="tab:blue", alpha=0.35, label="95% CI")  # fmt: skip
        ax.plot(x, [p.absolute for p in pts], "k.-")
        ax.axhline(0.0, color="grey", lw=0.8)
        ax.set_title(f"{metric} ({variant} - {r.control})", fontsize=9)
    axes[-1, 0].set_xlabel("look (day)")
    axes[0, 0].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def write_report(r: Readout, out_dir: Path, fmt: Format = "md") -> ReportFiles:
    """Write the readout and its plots into ``out_dir`` (created if missing)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    effects = plot_effects(r, out_dir / "effects.png")
    path = plot_path(r, out_dir / "path.png")
    target = out_dir / f"report.{fmt}"
    if fmt == "json":
        text = json.dumps(r.to_dict(), indent=2, allow_nan=False) + "\n"
    elif fmt == "html":
        text = to_html(r, [p.name for p in (effects, path) if p is not None])
    else:
        pics = [f"![{p.stem}]({p.name})" for p in (effects, path) if p is not None]
        text = to_markdown(r) + "\n" + "\n\n".join(pics) + "\n"
    target.write_text(text, encoding="utf-8")
    return ReportFiles(target, effects, path)
