"""Guardrail sets: resolution of the effective guardrail of an item, and enforcement.

Resolution ("the narrowest scope wins")
---------------------------------------
Each rule field is resolved on its own: the item's own guardrail, then its category from the
longest matching path to the shortest (``home/kitchen`` before ``home``), then the global
guardrail, then the built-in :data:`DEFAULTS`. The first scope that sets a field gives it.

Precedence when rules conflict
------------------------------
1. Static bounds first. Lower bounds are the floor, ``min_ratio * base_price`` and
   ``unit_cost * (1 + min_margin)``; upper bounds are the ceiling and ``max_ratio * base_price``.
   When a lower bound exceeds an upper bound, the one set by the narrower scope wins and the
   other is dropped (reason code ``GUARDRAIL_CONFLICT``); on a tie the upper bound wins,
   because it protects the shopper.
2. The 24 h change limit: the new price must lie within ``max_change_pct`` of every price in
   force during the last 24 h. When that band does not meet the static band (the pricing team
   just moved the bounds), the static band wins (``BAND_OVERRIDES_CHANGE_LIMIT``).
3. The price ending (e.g. ``.99``) is applied last, only inside the band left by 1 and 2; when no
   such price exists the ending is skipped (``ENDING_UNREACHABLE``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from fairshelf.errors import FailedPrecondition, NotFound
from pricing.guardrail_rules import RULE_FIELDS, SCOPE_RANK, Guardrail

# Applied underneath the global scope so an empty set still gives a bounded, sane price.
DEFAULTS: Final[Mapping[str, Any]] = MappingProxyType(
    {"min_ratio": 0.5, "max_ratio": 2.0, "min_margin": 0.0, "objective": "revenue"}
)
DEFAULT_SOURCE: Final[str] = "default"
_HUGE: Final[float] = 1e13
# Bounds that cross by less than this (a ten-millionth of a cent) touch within float error:
# a margin of 2e-11 on a cost equal to the ceiling is a band of one price, not a conflict that
# sets the margin aside. enforce() narrows bands to whole cents with the same slack (1e-7 cent).
_TOUCH: Final[float] = 1e-9
_SOURCE_RANK: Final[dict[str, int]] = {DEFAULT_SOURCE: -1, **SCOPE_RANK}


def _rank(scope_id: str) -> int:
    return _SOURCE_RANK[scope_id.split(":", 1)[0]]


@dataclass(frozen=True)
class EffectiveGuardrail:
    """The rules that apply to one item, with the scope each came from.

    ``scope`` is the narrowest scope that contributed any field; ``sources`` maps each field
    to ``"item:<id>"``, ``"category:<path>"``, ``"global"`` or ``"default"``.
    """

    item_id: str
    category: str
    version: int
    scope: str
    floor: float | None
    ceiling: float | None
    min_ratio: float | None
    max_ratio: float | None
    min_margin: float | None
    max_change_pct: float | None
    price_ending: float | None
    objective: str
    sources: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for ``guardrails show`` and the HTTP/gRPC adapters."""
        out: dict[str, Any] = {
            "item_id": self.item_id,
            "category": self.category,
            "version": self.version,
            "scope": self.scope,
        }
        out.update({f: getattr(self, f) for f in RULE_FIELDS})
        out["sources"] = dict(self.sources)
        return out


def _category_chain(category: str) -> list[str]:
    """``a/b/c`` -> ``["a/b/c", "a/b", "a"]`` (narrowest first)."""
    parts = [p for p in category.split("/") if p]
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


@dataclass(frozen=True)
class GuardrailSet:
    """One version of the whole guardrail configuration: at most one rule per scope."""

    version: int = 0
    rules: Mapping[str, Guardrail] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", MappingProxyType(dict(self.rules)))

    def get(self, scope: str, key: str = "") -> Guardrail:
        """The rule set at exactly this scope.

        Raises
        ------
        NotFound
            When no rule is set there.
        """
        scope_id = "global" if scope == "global" else f"{scope}:{key}"
        try:
            return self.rules[scope_id]
        except KeyError:
            raise NotFound(f"no guardrail at scope {scope_id!r}", field="scope") from None

    def with_rule(self, rule: Guardrail) -> GuardrailSet:
        """A new set (next version) where ``rule`` replaces its scope's rule; validated."""
        rules = dict(self.rules)
        rules[rule.scope_id] = rule
        new = GuardrailSet(self.version + 1, rules)
        new.check_consistent()
        return new

    def without(self, scope: str, key: str = "") -> GuardrailSet:
        """A new set (next version) without the rule at this scope."""
        self.get(scope, key)
        scope_id = "global" if scope == "global" else f"{scope}:{key}"
        return GuardrailSet(
            self.version + 1, {k: v for k, v in self.rules.items() if k != scope_id}
        )

    def effective(self, item_id: str, category: str) -> EffectiveGuardrail:
        """Resolve the guardrail of one item, narrowest scope first, field by field."""
        chain: list[Guardrail] = []
        item_rule = self.rules.get(f"item:{item_id}")
        if item_rule is not None:
            chain.append(item_rule)
        for path in _category_chain(category):
            rule = self.rules.get(f"category:{path}")
            if rule is not None:
                chain.append(rule)
        glob = self.rules.get("global")
        if glob is not None:
            chain.append(glob)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for name in RULE_FIELDS:
            for rule in chain:
                value = getattr(rule, name)
                if value is not None:
                    values[name], sources[name] = value, rule.scope_id
                    break
            else:
                values[name] = DEFAULTS.get(name)
                if name in DEFAULTS:
                    sources[name] = DEFAULT_SOURCE
        narrowest = max(sources.values(), key=_rank, default=DEFAULT_SOURCE)
        _settle_pair(values, sources, "floor", "ceiling")
        _settle_pair(values, sources, "min_ratio", "max_ratio")
        return EffectiveGuardrail(
            item_id=item_id,
            category=category,
            version=self.version,
            scope=narrowest,
            sources=MappingProxyType(sources),
            **values,
        )

    def check_consistent(self) -> None:
        """Refuse a set whose inherited absolute or relative bounds cross for some scope.

        Each category rule is merged with its ancestors and the global rule, each item rule
        with the global rule (an item's category is not known to the set), and the merged
        bounds are checked, naming the scope and field.

        Raises
        ------
        FailedPrecondition
            ``floor`` above ``ceiling`` or ``min_ratio`` above ``max_ratio`` after inheritance.
        """
        for scope_id, rule in self.rules.items():
            if rule.scope == "global":
                continue
            category = rule.key if rule.scope == "category" else ""
            item_id = rule.key if rule.scope == "item" else "\0"
            merged = self._merged_explicit(item_id, category)
            for lo, hi in (("floor", "ceiling"), ("min_ratio", "max_ratio")):
                lo_v, hi_v = merged.get(lo), merged.get(hi)
                if lo_v is not None and hi_v is not None and lo_v > hi_v:
                    # Valid on its own, refused for what another scope holds: a conflict
                    # with the stored set (409), not a malformed request.
                    raise FailedPrecondition(
                        f"guardrail {scope_id}: {lo} {lo_v} is above the inherited {hi} {hi_v}",
                        field=lo if getattr(rule, lo) is not None else hi,
                    )

    def _merged_explicit(self, item_id: str, category: str) -> dict[str, Any]:
        chain = [self.rules.get(f"item:{item_id}")]
        chain += [self.rules.get(f"category:{p}") for p in _category_chain(category)]
        chain.append(self.rules.get("global"))
        merged: dict[str, Any] = {}
        for rule in chain:
            if rule is None:
                continue
            for name, value in rule.rules().items():
                merged.setdefault(name, value)
        return merged

    def to_document(self) -> list[dict[str, Any]]:
        """The rules as a JSON-ready list sorted by scope id (the stored form)."""
        return [self.rules[k].to_dict() for k in sorted(self.rules)]

    @classmethod
    def from_document(cls, version: int, document: Sequence[Mapping[str, Any]]) -> GuardrailSet:
        """Rebuild a set from :meth:`to_document` output."""
        rules = [Guardrail.from_dict(dict(d)) for d in document]
        return cls(version, {r.scope_id: r for r in rules})


def _settle_pair(values: dict[str, Any], sources: dict[str, str], lo: str, hi: str) -> None:
    """When inherited bounds cross, the narrower scope's bound wins (tie: the upper one) and the
    other is set aside, its source naming the winner."""
    lo_v, hi_v = values.get(lo), values.get(hi)
    if lo_v is None or hi_v is None or lo_v <= hi_v:
        return
    loser, winner = (hi, lo) if _rank(sources[lo]) > _rank(sources[hi]) else (lo, hi)
    values[loser] = None
    sources[loser] = f"overridden by {sources[winner]}"


def diff_sets(old: GuardrailSet, new: GuardrailSet) -> list[dict[str, Any]]:
    """Field-level differences between two sets: ``{scope, field, old, new}`` rows."""
    out: list[dict[str, Any]] = []
    for scope_id in sorted(set(old.rules) | set(new.rules)):
        a, b = old.rules.get(scope_id), new.rules.get(scope_id)
        ra = a.rules() if a else {}
        rb = b.rules() if b else {}
        for name in RULE_FIELDS:
            if ra.get(name) != rb.get(name):
                out.append(
                    {"scope": scope_id, "field": name, "old": ra.get(name), "new": rb.get(name)}
                )
    return out


@dataclass(frozen=True)
class ItemBand:
    """An item's effective guardrail reduced to numbers for the quote hot path.

    ``lower``/``upper`` are the static bounds after conflict resolution (precedence step 1);
    ``notes`` are the reason codes that resolution produced.
    """

    lower: float
    upper: float
    max_change_pct: float | None
    ending_cents: int | None
    objective: str
    scope: str = DEFAULT_SOURCE
    notes: tuple[str, ...] = ()


def item_band(eff: EffectiveGuardrail, base_price: float, unit_cost: float | None) -> ItemBand:
    """Fold an effective guardrail and the item's base price and cost into an :class:`ItemBand`."""
    src = eff.sources
    lowers: list[tuple[float, int, str]] = []
    uppers: list[tuple[float, int, str]] = []
    if eff.floor is not None:
        lowers.append((eff.floor, _rank(src["floor"]), "floor"))
    if eff.min_ratio is not None:
        lowers.append((eff.min_ratio * base_price, _rank(src["min_ratio"]), "min_ratio"))
    if eff.min_margin is not None and unit_cost is not None and unit_cost > 0:
        lowers.append((unit_cost * (1 + eff.min_margin), _rank(src["min_margin"]), "min_margin"))
    if eff.ceiling is not None:
        uppers.append((eff.ceiling, _rank(src["ceiling"]), "ceiling"))
    if eff.max_ratio is not None:
        uppers.append((eff.max_ratio * base_price, _rank(src["max_ratio"]), "max_ratio"))
    notes: list[str] = []
    while lowers and uppers:
        lo = max(lowers)
        hi = min(uppers)
        if lo[0] <= hi[0] + _TOUCH:
            break
        notes.append("GUARDRAIL_CONFLICT")
        if lo[1] > hi[1]:
            uppers.remove(hi)
        else:
            lowers.remove(lo)
    lower = max((v for v, _, _ in lowers), default=0.01)
    upper = min((v for v, _, _ in uppers), default=math.inf)
    ending = None if eff.price_ending is None else round(eff.price_ending * 100)
    return ItemBand(
        lower=max(lower, 0.01),
        upper=upper,
        max_change_pct=eff.max_change_pct,
        ending_cents=ending,
        objective=eff.objective,
        scope=eff.scope,
        notes=tuple(dict.fromkeys(notes)),
    )


def enforce(target: float, band: ItemBand, recent: Sequence[float]) -> tuple[float, list[str]]:
    """Bring a proposed price inside an item's guardrails (precedence steps 2 and 3).

    Parameters
    ----------
    target:
        The policy's proposal.
    band:
        The item's static band (:func:`item_band`).
    recent:
        Every price in force for the item during the last 24 h (empty when there is none).

    Returns
    -------
    (price, reason_codes)
        The final price and why it differs from ``target``.
    """
    codes: list[str] = [*band.notes] if band.notes else []
    lo, hi = band.lower, band.upper
    c = band.max_change_pct
    if c is not None and recent:
        c_lo = max(recent) * (1.0 - c)
        c_hi = min(recent) * (1.0 + c)
        n_lo, n_hi = max(lo, c_lo), min(hi, c_hi)
        if n_lo <= n_hi:
            if not c_lo <= target <= c_hi:
                codes.append("CHANGE_LIMITED")
            lo, hi = n_lo, n_hi
        else:
            codes.append("BAND_OVERRIDES_CHANGE_LIMIT")
    if target < lo:
        codes.append("RAISED_TO_LOWER_BOUND")
        target = lo
    elif target > hi:
        codes.append("CAPPED_AT_UPPER_BOUND")
        target = hi
    # Integer cents keep every comparison exact; the band is narrowed inward to whole cents.
    lo_c = math.ceil(lo * 100 - 1e-7)
    hi_c = math.floor(hi * 100 + 1e-7) if hi < _HUGE else 10**15
    if lo_c > hi_c:
        codes.append("CENT_UNREACHABLE")
        return target, codes
    p_c = min(max(round(target * 100), lo_c), hi_c)
    e = band.ending_cents
    if e is not None:
        below = (p_c - e) // 100 * 100 + e
        above = below + 100
        below_ok = lo_c <= below <= hi_c
        above_ok = lo_c <= above <= hi_c
        if below_ok and above_ok:
            # Nearest ending; on a tie the lower price (the shopper's side).
            p_c = below if p_c - below <= above - p_c else above
        elif below_ok:
            p_c = below
        elif above_ok:
            p_c = above
        else:
            codes.append("ENDING_UNREACHABLE")
    return p_c / 100.0, codes
