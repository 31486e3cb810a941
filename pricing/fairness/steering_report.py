"""The context-steering part of the fairness audit: one pass over the log, chained findings,
and the report lines (:mod:`pricing.fairness.report` renders the rest).
"""

from __future__ import annotations

from collections.abc import Iterable

from pricing.fairness.consistency import AuditSummary, audit_quotes
from pricing.fairness.ports import AuditSink
from pricing.fairness.programs import ProgramBook
from pricing.fairness.quotes import Quote
from pricing.fairness.steering import SteeringInputs, SteeringSummary
from pricing.fairness.violations import record_steering_findings


def audit_logged_quotes(
    quotes: Iterable[Quote], audit: AuditSink, programs: ProgramBook | None = None
) -> tuple[AuditSummary, SteeringSummary]:
    """Run every quote-log audit in one pass and chain the new steering findings.

    G3 and G4 are judged afresh from the log on every run; the context-steering and
    region-hopping findings are also appended to the audit log and counted in
    ``fairshelf_fairness_violations_total`` (once each), like the guard's interventions.
    """
    inputs = SteeringInputs()
    summary = audit_quotes(inputs.watch(quotes), programs)
    steering = inputs.audit()
    record_steering_findings(audit, steering.findings)
    return summary, steering


def steering_verdict(steering: SteeringSummary | None) -> list[str]:
    """The verdict lines of the report (none without a steering audit)."""
    if steering is None:
        return []
    return [
        f"- Existing customers steered into pricier contexts (G4, context steering): "
        f"**{len(steering.steering)} day(s)** of {len(steering.days)} tested",
        f"- Shoppers quoted under several regions in one day (G4, region hopping): "
        f"**{len(steering.hopping)}**",
    ]


def steering_section(steering: SteeringSummary | None) -> list[str]:
    """The report section with every day's test."""
    if steering is None:
        return []
    lines = [
        "",
        "## Context steering",
        "",
        "Per UTC day, a stratified test over (item, epoch) groups, shoppers as units, of whether "
        "existing customers were quoted under pricier public contexts than new ones "
        f"(one-sided, alpha {steering.threshold:g} over the days, Bonferroni; a finding also "
        "needs a price gap of at least 0.5%).",
        "",
    ]
    if not steering.days:
        return [*lines, "No (item, epoch) group had existing and new shoppers at two prices."]
    lines += [
        "| day | groups | z | p | gap | relative gap |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for d in steering.days:
        lines.append(
            f"| {d.day} | {d.strata} | {d.z:.2f} | {d.p_value:.2g} | {d.gap:.2f} | "
            f"{d.relative_gap:.2%} |"
        )
    return lines
