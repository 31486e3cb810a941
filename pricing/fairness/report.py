"""The fairness audit report: Markdown plus two PNG charts (``fairshelf audit report``).

Chart 1 shows, for the busiest (item, epoch) groups, the list price each tenure band was
quoted: a fair store shows one dot height per group. Chart 2 shows guard interventions and
other violations over time, from the audit log. The Markdown states the chain check, the G3 and
G4 audit results with example quote ids, and the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pricing.fairness.audit_chain import AuditRecord, ChainReport, verify_chain
from pricing.fairness.consistency import AuditSummary, GroupStats
from pricing.fairness.ports import AuditSink, QuoteLog
from pricing.fairness.programs import ProgramBook
from pricing.fairness.steering import SteeringSummary
from pricing.fairness.steering_report import (
    audit_logged_quotes,
    steering_section,
    steering_verdict,
)

VIOLATION_KINDS = (
    "g2_violation",
    "g4_program_refused",
    "policy_quarantined",
    "context_steering",
    "region_hopping",
)
_BANDS = ("new", "regular", "long")
_MAX_GROUPS_PLOTTED = 30


@dataclass(frozen=True)
class ReportFiles:
    """The files of one report."""

    markdown: Path
    dispersion_png: Path
    violations_png: Path


def violations_by_hour(records: Iterable[AuditRecord]) -> dict[str, Counter[str]]:
    """Violation-like audit events per hour (``YYYY-MM-DDTHH``) and kind."""
    out: dict[str, Counter[str]] = {}
    for r in records:
        if r.kind in VIOLATION_KINDS:
            out.setdefault(r.ts[:13], Counter())[r.kind] += 1
    return dict(sorted(out.items()))


def render_markdown(
    summary: AuditSummary,
    chain: ChainReport,
    hourly: dict[str, Counter[str]],
    *,
    dispersion_png: str = "price_dispersion.png",
    violations_png: str = "violations.png",
    steering: SteeringSummary | None = None,
) -> str:
    """The report text.

    Parameters
    ----------
    summary:
        Result of :func:`~pricing.fairness.consistency.audit_quotes`.
    chain:
        Result of the audit-log chain check.
    hourly:
        Result of :func:`violations_by_hour`.
    dispersion_png, violations_png:
        Relative paths of the charts.
    steering:
        Result of the context-steering and region-hopping audits
        (:mod:`pricing.fairness.steering`).

    Returns
    -------
    str
        Markdown.
    """
    totals: Counter[str] = Counter()
    for counts in hourly.values():
        totals.update(counts)
    unfair_groups = sum(1 for g in summary.groups if g.list_dispersion > 0)
    lines = [
        "# fairshelf fairness audit",
        "",
        "## Verdict",
        "",
        f"- Audit log chain (G5): **{'intact' if chain.ok else 'BROKEN'}**, {chain.message}",
        f"- Same price for everyone (G3): **{len(summary.g3)} violation(s)** over "
        f"{summary.quotes} quotes in {len(summary.groups)} (item, epoch, context) groups",
        f"- Published programs only, existing customers never pay more (G4): "
        f"**{len(summary.g4)} violation(s)**",
        f"- Shopper-dependent prices blocked by the guard (G2): "
        f"{totals['g2_violation']} (quotes served the fair price instead: "
        f"{summary.blocked_by_guard}); policies quarantined: {totals['policy_quarantined']}; "
        f"program lines refused: {totals['g4_program_refused']}",
        f"- Groups with more than one list price: {unfair_groups}",
        *steering_verdict(steering),
        "",
        "## Price dispersion across shopper groups",
        "",
        f"![list price by tenure band per item and epoch]({dispersion_png})",
        "",
        "| item | epoch | quotes | list price spread | final price spread | mean list price by "
        "tenure | blocked attempts by tenure (never served) |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for g in _busiest(summary.groups):
        by_band = ", ".join(f"{b}: {p:.2f}" for b, p in g.mean_list_by_tenure().items())
        blocked = ", ".join(f"{b}: {p:.2f}" for b, p in g.mean_blocked_by_tenure().items())
        lines.append(
            f"| {g.item_id} | {g.epoch} | {g.quotes} | {g.list_dispersion:.2f} | "
            f"{g.final_dispersion:.2f} | {by_band} | {blocked or '-'} |"
        )
    lines += ["", "## Violations over time", "", f"![violations per hour]({violations_png})", ""]
    if hourly:
        lines += [
            "| hour (UTC) | " + " | ".join(VIOLATION_KINDS) + " |",
            "| --- |" + " ---: |" * len(VIOLATION_KINDS),
        ]
        for hour, counts in hourly.items():
            lines.append(
                f"| {hour} | " + " | ".join(str(counts[k]) for k in VIOLATION_KINDS) + " |"
            )
    else:
        lines.append("No violations recorded.")
    lines += steering_section(steering)
    lines += ["", "## Findings", ""]
    findings = [(f.rule, f.message, f.examples) for f in summary.g3 + summary.g4]
    findings += [(f.rule, f.message, f.examples) for f in (steering.findings if steering else [])]
    if not findings:
        lines.append("None.")
    for rule, message, examples in findings[:50]:
        lines.append(f"- **{rule}** {message} (examples: {', '.join(examples)})")
    if len(findings) > 50:
        lines.append(f"- ... and {len(findings) - 50} more")
    if not chain.ok:
        lines += [
            "",
            f"**Audit log problem at seq {chain.bad_seq} ({chain.problem}):** {chain.message}",
        ]
    return "\n".join(lines) + "\n"


def _busiest(groups: list[GroupStats]) -> list[GroupStats]:
    return sorted(groups, key=lambda g: (-g.list_dispersion, -g.quotes, g.item_id, g.epoch))[
        :_MAX_GROUPS_PLOTTED
    ]


def write_report(
    summary: AuditSummary,
    chain: ChainReport,
    audit_records: Iterable[AuditRecord],
    out_dir: Path,
    steering: SteeringSummary | None = None,
) -> ReportFiles:
    """Write ``fairness_report.md``, ``price_dispersion.png`` and ``violations.png``.

    Parameters
    ----------
    summary:
        The G3/G4 audit of the quote log.
    chain:
        The audit-log chain check.
    audit_records:
        The audit log (for violations over time).
    out_dir:
        Output directory (created).
    steering:
        The context-steering and region-hopping audits.

    Returns
    -------
    ReportFiles
        The three paths.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    hourly = violations_by_hour(audit_records)
    files = ReportFiles(
        out / "fairness_report.md", out / "price_dispersion.png", out / "violations.png"
    )

    groups = _busiest(summary.groups)
    fig, ax = plt.subplots(figsize=(10, 4.5))
    markers = {"new": "o", "regular": "s", "long": "^"}
    for band in _BANDS:
        xs, ys = [], []
        for i, g in enumerate(groups):
            mean = g.mean_list_by_tenure().get(band)
            if mean is not None:
                xs.append(i)
                ys.append(mean)
        ax.scatter(xs, ys, marker=markers[band], label=f"served, tenure: {band}", alpha=0.7)
    for band in _BANDS:
        xs, ys = [], []
        for i, g in enumerate(groups):
            blocked = g.mean_blocked_by_tenure().get(band)
            if blocked is not None:
                xs.append(i)
                ys.append(blocked)
        if xs:
            ax.scatter(xs, ys, marker="x", label=f"blocked attempt, tenure: {band}", alpha=0.6)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{g.item_id}@{g.epoch}" for g in groups], rotation=70, fontsize=7)
    ax.set_ylabel("list price quoted")
    ax.set_title(
        "List price served by shopper tenure band, per item and epoch (fair: one height);"
        " x: prices the guard blocked"
    )
    if groups:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(files.dispersion_png, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 3.5))
    hours = list(hourly)
    bottom = [0] * len(hours)
    for kind in VIOLATION_KINDS:
        values = [hourly[h][kind] for h in hours]
        ax.bar(range(len(hours)), values, bottom=bottom, label=kind)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(hours)))
    ax.set_xticklabels(hours, rotation=70, fontsize=7)
    ax.set_ylabel("events")
    ax.set_title("Fairness violations caught, per hour (UTC)")
    if hours:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(files.violations_png, dpi=110)
    plt.close(fig)

    files.markdown.write_text(
        render_markdown(
            summary,
            chain,
            hourly,
            dispersion_png=files.dispersion_png.name,
            violations_png=files.violations_png.name,
            steering=steering,
        ),
        encoding="utf-8",
    )
    return files


def verify_audit_log(audit: AuditSink) -> ChainReport:
    """Check the stored audit log's chain against its separately kept head."""
    return verify_chain(audit.records(), audit.anchor())


def build_report(
    quote_log: QuoteLog,
    audit: AuditSink,
    out_dir: Path,
    programs: ProgramBook | None = None,
) -> tuple[ReportFiles, AuditSummary, ChainReport]:
    """Audit both logs and write the report (what ``GET /v1/audit/report`` serves).

    Parameters
    ----------
    quote_log:
        The quote log.
    audit:
        The audit log.
    out_dir:
        Output directory.
    programs:
        The published programs, to flag lines of unknown programs.

    Returns
    -------
    tuple[ReportFiles, AuditSummary, ChainReport]
        The files, the G3/G4 audit and the chain check.
    """
    chain = verify_audit_log(audit)
    summary, steering = audit_logged_quotes(quote_log.iter_quotes(), audit, programs)
    files = write_report(summary, chain, audit.records(), out_dir, steering)
    return files, summary, chain


def _within(ts: str, since: datetime | None, until: datetime | None) -> bool:
    at = datetime.fromisoformat(ts)
    return (since is None or at >= since) and (until is None or at < until)


def report_document(
    quote_log: QuoteLog,
    audit: AuditSink,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    programs: ProgramBook | None = None,
) -> dict[str, Any]:
    """The report as a JSON document (the body of ``GET /v1/audit/report``).

    Parameters
    ----------
    quote_log, audit:
        The logs.
    since, until:
        Optional time window (timezone-aware) on quotes and audit events; the chain is always
        checked whole.
    programs:
        The published programs.

    Returns
    -------
    dict[str, Any]
        ``markdown`` (charts referenced, not embedded), the chain check, the counts and the
        findings with example quote ids.
    """
    chain = verify_audit_log(audit)
    quotes = (q for q in quote_log.iter_quotes() if _within(q.quoted_at, since, until))
    summary, steering = audit_logged_quotes(quotes, audit, programs)
    records = [r for r in audit.records() if _within(r.ts, since, until)]
    hourly = violations_by_hour(records)
    return {
        "markdown": render_markdown(summary, chain, hourly, steering=steering),
        "chain": {
            "ok": chain.ok,
            "records": chain.records,
            "head_seq": chain.head.seq if chain.head else 0,
            "head_hash": chain.head.hash if chain.head else None,
            "problem": chain.problem,
            "bad_seq": chain.bad_seq,
            "message": chain.message,
        },
        "quotes": summary.quotes,
        "groups": len(summary.groups),
        "blocked_by_guard": summary.blocked_by_guard,
        "g3_violations": len(summary.g3),
        "g4_violations": len(summary.g4),
        "steering_violations": len(steering.steering),
        "hopping_violations": len(steering.hopping),
        "steering_days": [
            {
                "day": d.day,
                "groups": d.strata,
                "z": d.z,
                "p_value": d.p_value,
                "gap": d.gap,
                "relative_gap": d.relative_gap,
            }
            for d in steering.days
        ],
        "violations_by_hour": {h: dict(c) for h, c in hourly.items()},
        "findings": [
            {
                "rule": f.rule,
                "item_id": f.item_id,
                "epoch": f.epoch,
                "context_key": f.context_key,
                "message": f.message,
                "examples": list(f.examples),
            }
            for f in summary.g3 + summary.g4
        ]
        + [
            {"rule": f.rule, "key": f.key, "message": f.message, "examples": list(f.examples)}
            for f in steering.findings
        ],
    }
