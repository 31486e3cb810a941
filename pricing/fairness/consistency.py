"""Audits over the quote log: rule G3 (same price for everyone) and rule G4 (loyalty).

G3: for each item, price epoch and public context, every shopper must have been quoted the
same list price. G4: a shopper's final price may differ from the list price only through lines
of published, reduce-only programs, and existing customers (long tenure or frequent buyers)
must never have been quoted a higher list price than new customers for the same item, epoch
and context. Both audits read only the quote log, so they also catch anything that reached it
without going through the guard.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pricing.fairness.programs import ProgramBook
from pricing.fairness.quotes import Quote

GroupKey = tuple[str, int, str]

# Prices are stored in currency units with cents; anything below this is representation noise.
_CENT = 0.005


@dataclass(frozen=True)
class Finding:
    """One audit violation, with example quote ids."""

    rule: str
    item_id: str
    epoch: int
    context_key: str
    message: str
    examples: tuple[str, ...]


@dataclass
class GroupStats:
    """Price spread of one (item, epoch, public context) group, for the report."""

    item_id: str
    epoch: int
    context_key: str
    quotes: int = 0
    list_prices: dict[float, str] = field(default_factory=dict)  # price -> first quote id
    final_min: float = float("inf")
    final_max: float = float("-inf")
    list_by_tenure: dict[str, list[float]] = field(default_factory=dict)
    # What a policy tried to charge with the shopper in scope, where the guard blocked it.
    blocked_by_tenure: dict[str, list[float]] = field(default_factory=dict)
    existing_max: tuple[float, str] | None = None
    new_min: tuple[float, str] | None = None

    @property
    def list_dispersion(self) -> float:
        """Highest minus lowest list price quoted in the group (0 when fair)."""
        return max(self.list_prices) - min(self.list_prices) if self.list_prices else 0.0

    @property
    def final_dispersion(self) -> float:
        """Highest minus lowest final price (published programs included)."""
        return self.final_max - self.final_min if self.quotes else 0.0

    def mean_list_by_tenure(self) -> dict[str, float]:
        """Mean list price per tenure band."""
        return {band: sum(v) / len(v) for band, v in sorted(self.list_by_tenure.items())}

    def mean_blocked_by_tenure(self) -> dict[str, float]:
        """Mean blocked (never served) price per tenure band."""
        return {band: sum(v) / len(v) for band, v in sorted(self.blocked_by_tenure.items())}


@dataclass
class AuditSummary:
    """What the G3 and G4 audits found."""

    quotes: int = 0
    groups: list[GroupStats] = field(default_factory=list)
    g3: list[Finding] = field(default_factory=list)
    g4: list[Finding] = field(default_factory=list)
    blocked_by_guard: int = 0

    @property
    def ok(self) -> bool:
        """No G3 or G4 violation."""
        return not self.g3 and not self.g4


def audit_quotes(
    quotes: Iterable[Quote], programs: ProgramBook | None = None, *, max_examples: int = 5
) -> AuditSummary:
    """Run the G3 and G4 audits over quotes.

    Parameters
    ----------
    quotes:
        The quote log (any order).
    programs:
        The published programs; when given, a line naming any other program is a violation.
    max_examples:
        Quote ids kept per finding.

    Returns
    -------
    AuditSummary
        Counts, per-group price spreads and every finding.
    """
    summary = AuditSummary()
    groups: dict[GroupKey, GroupStats] = {}
    for q in quotes:
        summary.quotes += 1
        if q.guard_status == "blocked":
            summary.blocked_by_guard += 1
        key = (q.item_id, q.epoch, q.context_key)
        g = groups.get(key)
        if g is None:
            g = groups[key] = GroupStats(q.item_id, q.epoch, q.context_key)
        g.quotes += 1
        if q.list_price not in g.list_prices and len(g.list_prices) < 1000:
            g.list_prices[q.list_price] = q.quote_id
        g.final_min = min(g.final_min, q.final_price)
        g.final_max = max(g.final_max, q.final_price)
        g.list_by_tenure.setdefault(q.group.tenure, []).append(q.list_price)
        if q.blocked_price is not None:
            g.blocked_by_tenure.setdefault(q.group.tenure, []).append(q.blocked_price)
        if q.group.is_existing and (g.existing_max is None or q.list_price > g.existing_max[0]):
            g.existing_max = (q.list_price, q.quote_id)
        if q.group.is_new and (g.new_min is None or q.list_price < g.new_min[0]):
            g.new_min = (q.list_price, q.quote_id)
        _check_lines(q, programs, summary)
    for g in groups.values():
        summary.groups.append(g)
        if len(g.list_prices) > 1:
            prices = sorted(g.list_prices)
            summary.g3.append(
                Finding(
                    "G3",
                    g.item_id,
                    g.epoch,
                    g.context_key,
                    f"item {g.item_id!r} in epoch {g.epoch} and context {g.context_key} was quoted "
                    f"{len(prices)} different list prices to {g.quotes} quotes "
                    f"({', '.join(f'{p:.2f}' for p in prices[:6])}): every shopper must get the "
                    "same price (rule G3)",
                    tuple(g.list_prices[p] for p in prices[:max_examples]),
                )
            )
        if g.existing_max and g.new_min and g.existing_max[0] > g.new_min[0] + _CENT:
            summary.g4.append(
                Finding(
                    "G4",
                    g.item_id,
                    g.epoch,
                    g.context_key,
                    f"existing customers paid more than new ones for item {g.item_id!r} in epoch "
                    f"{g.epoch}: list price {g.existing_max[0]:.2f} (long-tenure or frequent "
                    f"shopper) against {g.new_min[0]:.2f} (new shopper) (rule G4)",
                    (g.existing_max[1], g.new_min[1]),
                )
            )
    summary.groups.sort(key=lambda s: (s.item_id, s.epoch, s.context_key))
    return summary


def _check_lines(q: Quote, programs: ProgramBook | None, summary: AuditSummary) -> None:
    total = 0.0
    for line in q.discount_lines:
        total += line.amount
        if line.amount < 0:
            summary.g4.append(
                _line_finding(
                    q,
                    f"quote {q.quote_id} carries a surcharge line {line.program_id!r} of "
                    f"{-line.amount:.2f}: programs may only lower a price (rule G4)",
                )
            )
        elif programs is not None and programs.get(line.program_id) is None:
            summary.g4.append(
                _line_finding(
                    q,
                    f"quote {q.quote_id} applies {line.program_id!r}, which is not a published "
                    "program (rule G4)",
                )
            )
    if abs(q.list_price - total - q.final_price) > _CENT:
        summary.g4.append(
            _line_finding(
                q,
                f"quote {q.quote_id}: final price {q.final_price:.2f} is not the list price "
                f"{q.list_price:.2f} minus its program lines ({total:.2f}); the difference is "
                "not explained by a published program (rule G4)",
            )
        )


def _line_finding(q: Quote, message: str) -> Finding:
    return Finding("G4", q.item_id, q.epoch, q.context_key, message, (q.quote_id,))
